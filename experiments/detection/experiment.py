"""Library functions of the detection experiment: data, model, training, evaluation, report.

``config.model`` picks the single-stage grid detector (``'yolo'``) or the two-stage one
(``'two_stage'``: ``jax231.detection.two_stage_detector``, whose forward pass receives the
ground truth in training to sample anchors and RoIs, so ``fit`` feeds it
``{'image', 'boxes', 'classes'}``).
"""

from __future__ import annotations

import functools
import pathlib
import time
from typing import Any, NamedTuple

import jax
import ml_collections
import numpy as np

from experiments import _common
from experiments.detection import overlays
from jax231 import detection, models, optimizers, pipelines

IMAGE_KEYS = ("image", "boxes", "classes")


class DetectionRun(NamedTuple):
    """What :func:`run` returns: COCO metrics, VOC AP@0.5, timing and the training result."""

    coco: detection.CocoResult
    voc_ap50: float
    voc_ap50_11pt: float
    seconds: float
    train: detection.TrainResult


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _common.UsageError(f"--config.{name}: expected an int >= {minimum}, got {value!r}")
    return value


def load_split(config: ml_collections.ConfigDict, split: str, size: int) -> dict[str, np.ndarray]:
    """The canvases of ``split`` (the first ``size``, or all when 0)."""
    try:
        data = pipelines.load_arrays(config.dataset, split if size == 0 else f"{split}[:{size}]")
    except (ValueError, FileNotFoundError) as err:
        raise _common.UsageError(f"--config.dataset: {err}") from None
    if "boxes" not in data:
        raise _common.UsageError(f"--config.dataset: expected a canvas dataset with boxes, got {config.dataset!r}")
    return data


MODELS = ("yolo", "two_stage")
"""``config.model``: the single-stage grid detector or the two-stage (RPN + RoI align) one."""


def _check_model(config: ml_collections.ConfigDict) -> str:
    if config.get("model", "yolo") not in MODELS:
        raise _common.UsageError(f"--config.model: expected one of {MODELS}, got {config.model!r}")
    return config.get("model", "yolo")


def two_stage_spec(config: ml_collections.ConfigDict) -> detection.TwoStageSpec:
    """The :class:`jax231.detection.TwoStageSpec` of ``config.two_stage`` (tuples restored)."""
    fields = {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in config.two_stage.to_dict().items()}
    unknown = sorted(set(fields) - set(detection.TwoStageSpec._fields))
    if unknown:
        raise _common.UsageError(f"--config.two_stage: expected fields of TwoStageSpec, got unknown {unknown}")
    return detection.TwoStageSpec(num_classes=10, widths=tuple(config.widths), **fields)


def check_config(config: ml_collections.ConfigDict) -> None:
    """The checks that need no data (run before loading it): one-line ``UsageError`` naming the field."""
    _check_int("num_steps", config.num_steps, 1)
    if _check_model(config) == "two_stage":
        spec = two_stage_spec(config)
        try:
            for name in ("rpn_positive_iou", "rpn_negative_iou", "rpn_nms_iou", "foreground_iou"):
                detection.check_iou_threshold(f"two_stage.{name}", getattr(spec, name))
            detection.two_stage_detector(spec)
        except ValueError as err:
            raise _common.UsageError(f"--config.{err}") from None


def build(config: ml_collections.ConfigDict, image_size: int):
    """The model, optimizer and loss of ``config``."""
    check_config(config)
    kind = _check_model(config)
    try:
        detection.check_iou_threshold("iou_threshold", config.iou_threshold)
        if kind == "two_stage":
            model = detection.two_stage_detector(two_stage_spec(config))
            loss = detection.two_stage_loss
        else:
            _check_int("boxes_per_cell", config.boxes_per_cell, 1)
            model = models.grid_detector(
                num_classes=10, boxes_per_cell=config.boxes_per_cell, widths=tuple(config.widths)
            )
            loss = functools.partial(_loss, image_size=image_size, boxes_per_cell=config.boxes_per_cell)
    except ValueError as err:
        raise _common.UsageError(f"--config.{err}") from None
    schedule = optimizers.schedules.cosine_decay(config.learning_rate, decay_steps=config.num_steps)
    return model, optimizers.adam(learning_rate=schedule), loss


def _loss(outputs, batch, *, image_size: int, boxes_per_cell: int):
    return detection.yolo_loss(
        outputs, batch["boxes"], batch["classes"], image_size=image_size, boxes_per_cell=boxes_per_cell, num_classes=10
    )


def _detect(model, config: ml_collections.ConfigDict, image_size: int):
    """``(params, state, images) -> DetectionOutput`` of ``config.model`` (jitted)."""
    options = dict(
        iou_threshold=config.iou_threshold, score_threshold=config.score_threshold, max_detections=config.max_detections
    )
    if _check_model(config) == "two_stage":

        def fn(p, s, x):
            out = model.apply(p, s, x, train=False)[0]
            return detection.detect_rois(
                out["proposals"], out["class_logits"], out["box_offsets"], image_size=image_size, **options
            )

    else:

        def fn(p, s, x):
            raw = model.apply(p, s, x, train=False)[0]
            return detection.detect(
                raw, image_size=image_size, boxes_per_cell=config.boxes_per_cell, num_classes=10, **options
            )

    return jax.jit(fn)


def predict(model, state, images: np.ndarray, config: ml_collections.ConfigDict, *, batch_size: int = 100):
    """Detections of ``images`` (jitted decode + class-wise NMS), as one list entry per image."""
    apply = _detect(model, config, images.shape[1])
    out = []
    for start in range(0, len(images), batch_size):
        d = jax.device_get(apply(state.params, state.model_state, images[start : start + batch_size]))
        for b, s, c, v in zip(d.boxes, d.scores, d.labels, d.valid):
            out.append(detection.Detections(b[v], s[v], c[v]))
    return out


def ground_truths(data: dict[str, np.ndarray]) -> list[detection.GroundTruth]:
    return [detection.GroundTruth(b[c >= 0], c[c >= 0]) for b, c in zip(data["boxes"], data["classes"])]


def run(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> DetectionRun:
    """Trains the grid detector, evaluates COCO mAP and VOC AP on the test canvases, writes the report."""
    workdir = pathlib.Path(workdir)
    check_config(config)
    train = load_split(config, "train", config.train_size)
    test = load_split(config, "test", config.test_size)
    model, optimizer, loss = build(config, train["image"].shape[1])
    start = time.monotonic()
    result = detection.train_multitask(
        model,
        optimizer,
        loss,
        {k: train[k] for k in IMAGE_KEYS},
        num_steps=config.num_steps,
        batch_size=config.batch_size,
        seed=config.seed,
        eval_every=config.eval_every,
        progress=True,
        max_seconds=config.max_seconds or None,
        model_inputs=IMAGE_KEYS if _check_model(config) == "two_stage" else ("image",),
    )
    dets, gts = predict(model, result.state, test["image"], config), ground_truths(test)
    coco = detection.coco_map(dets, gts)
    voc, _ = detection.voc_map(dets, gts, method="all_point")
    voc11, _ = detection.voc_map(dets, gts, method="11_point")
    seconds = time.monotonic() - start
    out = DetectionRun(coco, voc, voc11, seconds, result)
    write_report(workdir, config, out, test, dets)
    if _check_model(config) == "two_stage":
        draw_proposals(workdir / "proposals.png", model, result.state, test["image"][: config.num_overlays])
    return out


def draw_proposals(path: pathlib.Path, model, state, images: np.ndarray, *, top: int = 8) -> str:
    """The ``top`` first proposals of the RPN on each image (labelled by rank; score = sigmoid of the logit)."""
    fn = jax.jit(lambda p, s, x: model.apply(p, s, x, train=False)[0]["proposals"])
    props = jax.device_get(fn(state.params, state.model_state, images))
    keep = [v[:top] for v in props.valid]
    return overlays.draw_detections(
        path,
        images,
        pred_boxes=[b[:top][k] for b, k in zip(props.boxes, keep)],
        pred_labels=[np.arange(top)[k] for k in keep],
        pred_scores=[1.0 / (1.0 + np.exp(-s[:top][k])) for s, k in zip(props.scores, keep)],
        title=f"first {top} RPN proposals after NMS (rank:objectness)",
    )


def write_report(workdir: pathlib.Path, config, out: DetectionRun, test, dets) -> None:
    rows = [
        {"metric": "COCO mAP@[.5:.95]", "value": out.coco.map},
        {"metric": "COCO AP@0.5", "value": out.coco.ap50},
        {"metric": "COCO AP@0.75", "value": out.coco.ap75},
        {"metric": "VOC AP@0.5 (all-point)", "value": out.voc_ap50},
        {"metric": "VOC AP@0.5 (11-point)", "value": out.voc_ap50_11pt},
    ]
    _common.write_tables(
        workdir,
        "summary",
        rows,
        title="Detection on the test canvases",
        notes=f"{len(test['image'])} test canvases, {out.train.history['step'][-1]} updates, {out.seconds:.0f} s",
    )
    _common.write_json(
        workdir / "results.json",
        {
            "config": config.to_dict(),
            "coco_map": out.coco.map,
            "ap50": out.coco.ap50,
            "ap75": out.coco.ap75,
            "per_threshold": out.coco.per_threshold,
            "voc_ap50": out.voc_ap50,
            "voc_ap50_11pt": out.voc_ap50_11pt,
            "seconds": out.seconds,
            "history": out.train.history,
        },
    )
    h = out.train.history
    _common.plot_curves(
        workdir / "loss.png",
        {"training loss": {config.get("model", "yolo"): (h["step"], [h["loss"]])}},
        ylabel="loss",
        logy=True,
    )
    n = min(config.num_overlays, len(test["image"]))
    overlays.draw_detections(
        workdir / "predictions.png",
        test["image"][:n],
        pred_boxes=[d.boxes for d in dets[:n]],
        pred_labels=[d.labels for d in dets[:n]],
        pred_scores=[d.scores for d in dets[:n]],
        true_boxes=[b[c >= 0] for b, c in zip(test["boxes"][:n], test["classes"][:n])],
        title="predicted (solid, class:score) vs true (dashed)",
    )
