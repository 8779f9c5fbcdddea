"""Library functions of the localization experiment: multi-task training, box IoU and accuracy."""

from __future__ import annotations

import functools
import pathlib
import time
from typing import NamedTuple

import jax
import ml_collections
import numpy as np

from experiments import _common
from experiments.detection import overlays
from experiments.detection.experiment import load_split
from jax231 import detection, models, optimizers


class LocalizationRun(NamedTuple):
    """What :func:`run` returns."""

    mean_iou: float
    accuracy: float
    seconds: float
    train: detection.TrainResult


def build(config: ml_collections.ConfigDict, image_size: int):
    if isinstance(config.num_steps, bool) or not isinstance(config.num_steps, int) or config.num_steps < 1:
        raise _common.UsageError(f"--config.num_steps: expected an int >= 1, got {config.num_steps!r}")
    if config.box_loss not in detection.BOX_LOSSES:
        raise _common.UsageError(f"--config.box_loss: expected one of {detection.BOX_LOSSES}, got {config.box_loss!r}")
    try:
        model = models.localizer(
            num_classes=10, widths=tuple(config.widths), hidden=config.hidden, convs_per_block=config.convs_per_block
        )
    except ValueError as err:
        raise _common.UsageError(f"--config.{err}") from None
    schedule = optimizers.schedules.cosine_decay(config.learning_rate, decay_steps=config.num_steps)
    loss = functools.partial(_loss, image_size=image_size, box_weight=config.box_weight, box_loss=config.box_loss)
    return model, optimizers.adam(learning_rate=schedule), loss


def _loss(outputs, batch, *, image_size: int, box_weight: float, box_loss: str):
    return detection.localization_loss(
        outputs, batch["label"], batch["box"], image_size=image_size, box_weight=box_weight, box_loss=box_loss
    )


def single_object(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{'image', 'label': class, 'box': xyxy}`` of the first (only) object of each canvas."""
    return {"image": data["image"], "label": data["classes"][:, 0], "box": data["boxes"][:, 0]}


def predict(model, state, images: np.ndarray, *, batch_size: int = 100):
    apply = jax.jit(lambda p, s, x: model.apply(p, s, x, train=False)[0])
    outs = [
        jax.device_get(apply(state.params, state.model_state, images[i : i + batch_size]))
        for i in range(0, len(images), batch_size)
    ]
    logits = np.concatenate([o["logits"] for o in outs])
    boxes = np.concatenate([np.asarray(detection.predicted_boxes(o, image_size=images.shape[1])) for o in outs])
    return logits, boxes


def run(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> LocalizationRun:
    """Trains the localizer, evaluates box mean IoU and class accuracy on the test canvases."""
    workdir = pathlib.Path(workdir)
    train = single_object(load_split(config, "train", config.train_size))
    test = single_object(load_split(config, "test", config.test_size))
    model, optimizer, loss = build(config, train["image"].shape[1])
    start = time.monotonic()
    result = detection.train_multitask(
        model,
        optimizer,
        loss,
        train,
        num_steps=config.num_steps,
        batch_size=config.batch_size,
        seed=config.seed,
        eval_every=config.eval_every,
        progress=True,
        max_seconds=config.max_seconds or None,
    )
    logits, boxes = predict(model, result.state, test["image"])
    ious = np.asarray(detection.matched_iou(boxes, test["box"]))
    accuracy = float(np.mean(logits.argmax(-1) == test["label"]))
    out = LocalizationRun(float(ious.mean()), accuracy, time.monotonic() - start, result)
    write_report(workdir, config, out, test, logits, boxes, ious)
    return out


def write_report(workdir: pathlib.Path, config, out: LocalizationRun, test, logits, boxes, ious) -> None:
    rows = [
        {"metric": "box mean IoU", "value": out.mean_iou},
        {"metric": "class accuracy", "value": out.accuracy},
        {"metric": "boxes with IoU >= 0.5", "value": float(np.mean(ious >= 0.5))},
        {
            "metric": "correct class and IoU >= 0.5",
            "value": float(np.mean((ious >= 0.5) & (logits.argmax(-1) == test["label"]))),
        },
    ]
    _common.write_tables(
        workdir,
        "summary",
        rows,
        title="Classification + localization on the test canvases",
        notes=f"{len(ious)} test canvases, {out.train.history['step'][-1]} updates, {out.seconds:.0f} s",
    )
    _common.write_json(
        workdir / "results.json",
        {
            "config": config.to_dict(),
            "mean_iou": out.mean_iou,
            "accuracy": out.accuracy,
            "seconds": out.seconds,
            "history": out.train.history,
        },
    )
    h = out.train.history
    _common.plot_curves(
        workdir / "loss.png",
        {"training loss": {name: (h["step"], [h[name]]) for name in ("loss", "class", "box")}},
        ylabel="loss",
        logy=True,
    )
    n = min(config.num_overlays, len(ious))
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs = probs / probs.sum(-1, keepdims=True)
    overlays.draw_detections(
        workdir / "predictions.png",
        test["image"][:n],
        pred_boxes=boxes[:n, None],
        pred_labels=logits[:n].argmax(-1)[:, None],
        pred_scores=probs[:n].max(-1)[:, None],
        true_boxes=test["box"][:n, None],
        title=f"box mean IoU {out.mean_iou:.3f}",
    )
