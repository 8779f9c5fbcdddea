"""Library functions of the segmentation experiment: a U-Net trained by ``fit``, mean IoU, overlays."""

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
from jax231 import detection, models, optimizers, training

NUM_CLASSES = 11  # Background + 10 digits.


class SegmentationRun(NamedTuple):
    """What :func:`run` returns."""

    mean_iou: float
    per_class_iou: np.ndarray
    pixel_accuracy: float
    seconds: float
    fit: training.FitResult


def build(config: ml_collections.ConfigDict):
    if isinstance(config.num_steps, bool) or not isinstance(config.num_steps, int) or config.num_steps < 1:
        raise _common.UsageError(f"--config.num_steps: expected an int >= 1, got {config.num_steps!r}")
    try:
        model = models.unet(
            num_classes=NUM_CLASSES,
            widths=tuple(config.widths),
            convs_per_block=config.convs_per_block,
            decoder_convs=config.decoder_convs,
            skip=config.skip,
            norm_groups=config.norm_groups,
            coarse_scores=config.coarse_scores,
        )
        loss = functools.partial(
            detection.segmentation_loss, dice_weight=detection.check_dice_weight(config.dice_weight)
        )
    except ValueError as err:
        raise _common.UsageError(f"--config.{err}") from None
    schedule = optimizers.schedules.cosine_decay(config.learning_rate, decay_steps=config.num_steps)
    return model, optimizers.adam(learning_rate=schedule), loss


def predict_masks(model, state, images: np.ndarray, *, batch_size: int = 100) -> np.ndarray:
    apply = jax.jit(lambda p, s, x: model.apply(p, s, x, train=False)[0].argmax(-1))
    return np.concatenate(
        [
            np.asarray(apply(state.params, state.model_state, images[i : i + batch_size]))
            for i in range(0, len(images), batch_size)
        ]
    )


def run(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> SegmentationRun:
    """Trains the U-Net with ``fit`` (pixel cross-entropy + Dice), evaluates mean IoU on the test canvases."""
    workdir = pathlib.Path(workdir)
    train = load_split(config, "train", config.train_size)
    test = load_split(config, "test", config.test_size)
    model, optimizer, loss = build(config)
    start = time.monotonic()
    result = training.fit(
        model,
        optimizer,
        train={"image": train["image"], "label": train["label"]},
        loss=loss,
        num_steps=config.num_steps,
        batch_size=config.batch_size,
        eval_every=config.eval_every,
        seed=config.seed,
        progress=True,
        explosion_factor=None,
        max_seconds=config.max_seconds or None,
    )
    pred = predict_masks(model, result.state, test["image"])
    miou, per_class = detection.mean_iou(pred, test["label"], num_classes=NUM_CLASSES)
    acc = detection.pixel_accuracy(pred, test["label"])
    out = SegmentationRun(miou, per_class, acc, time.monotonic() - start, result)
    write_report(workdir, config, out, test, pred)
    return out


def write_report(workdir: pathlib.Path, config, out: SegmentationRun, test, pred) -> None:
    rows = [
        {"class": "background" if c == 0 else f"digit {c - 1}", "IoU": out.per_class_iou[c]} for c in range(NUM_CLASSES)
    ]
    _common.write_tables(
        workdir,
        "summary",
        rows,
        title="Per-class IoU on the test canvases",
        notes=f"mean IoU {out.mean_iou:.4f}, pixel accuracy {out.pixel_accuracy:.4f}, "
        f"{int(out.fit.state.step)} updates, {out.seconds:.0f} s",
    )
    _common.write_json(
        workdir / "results.json",
        {
            "config": config.to_dict(),
            "mean_iou": out.mean_iou,
            "pixel_accuracy": out.pixel_accuracy,
            "per_class_iou": out.per_class_iou,
            "seconds": out.seconds,
            "history": out.fit.history,
        },
    )
    h = out.fit.history
    series = {"total": "train_loss", "cross-entropy": "train_loss/cross_entropy", "dice": "train_loss/dice"}
    _common.plot_curves(
        workdir / "loss.png",
        {"training loss": {name: (h["step"], [h[key]]) for name, key in series.items() if key in h}},
        ylabel="loss (cross-entropy + weight x Dice)",
        logy=True,
    )
    n = min(config.num_overlays, len(test["image"]))
    overlays.draw_masks(
        workdir / "predictions.png",
        test["image"][:n],
        pred_masks=pred[:n],
        true_masks=test["label"][:n],
        title=f"mean IoU {out.mean_iou:.3f}",
    )
