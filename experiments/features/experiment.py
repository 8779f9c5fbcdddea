"""Linear SVM and two-layer net on HOG + HSV features (CS231n assignment 1, "features").

Library half of ``python -m experiments.features.main``; see ``config.py`` for the command
and the measured results.

References:
  CS231n assignment 1, "Image features exercise"; Dalal & Triggs 2005 (HOG).
"""

from __future__ import annotations

import functools
import itertools
import pathlib
import time
from typing import Any, NamedTuple

import ml_collections

from experiments import _common
from experiments._common import UsageError
from experiments.train import experiment as train_exp
from jax231 import features, losses, models, optimizers, training


class FeaturesRun(NamedTuple):
    """What :func:`run` produced.

    Attributes:
      rows: one row per trained (model, learning rate, l2) with val/test accuracy.
      best: ``model -> best row`` (by validation accuracy).
      num_features: the feature dimension.
      seconds: wall time.
      skipped: why nothing ran ('' when it ran).
    """

    rows: list[dict[str, Any]]
    best: dict[str, dict[str, Any]]
    num_features: int
    seconds: float
    skipped: str = ""


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Rejects bad settings before any data is read (``UsageError`` naming the field)."""
    for field in ("pixels_per_cell", "cells_per_block", "orientations", "hue_bins", "batch_size", "num_evals"):
        if not isinstance(config[field], int) or config[field] < 1:
            raise UsageError(f"--config.{field}: expected an int >= 1, got {config[field]!r}")
    if config.block_norm and config.block_norm not in features.BLOCK_NORMS:
        raise UsageError(
            f"--config.block_norm: expected one of {features.BLOCK_NORMS} or '', got {config.block_norm!r}"
        )
    for model in ("svm", "net"):
        for field in ("learning_rates", "l2s"):
            if not config[model][field] or min(config[model][field]) < 0:
                raise UsageError(
                    f"--config.{model}.{field}: expected non-negative numbers, got {config[model][field]!r}"
                )
        if config[model].num_steps < 1:
            raise UsageError(f"--config.{model}.num_steps: expected >= 1, got {config[model].num_steps}")


def _hog_of(config: ml_collections.ConfigDict, image):
    grey = features.rgb_to_gray(image) if image.shape[-1] == 3 else image[..., 0]
    return features.hog(
        grey,
        orientations=config.orientations,
        pixels_per_cell=config.pixels_per_cell,
        cells_per_block=config.cells_per_block,
        block_norm=config.block_norm or None,
    )


def feature_fns(config: ml_collections.ConfigDict, channels: int) -> list:
    """HOG of the grey image, plus the hue histogram for RGB images."""
    fns = [functools.partial(_hog_of, config)]
    if channels == 3:
        fns.append(functools.partial(features.color_histogram_hsv, num_bins=config.hue_bins))
    return fns


def build_features(config: ml_collections.ConfigDict, splits: _common.Splits) -> dict[str, dict]:
    """Standardised features of the three splits: ``{'train'|'val'|'test': {'image', 'label'}}``."""
    height, width, channels = splits.input_shape
    if height % config.pixels_per_cell or width % config.pixels_per_cell:
        raise UsageError(
            f"--config.pixels_per_cell: expected a size dividing the image ({height}, {width}), "
            f"got {config.pixels_per_cell}"
        )
    fns = feature_fns(config, channels)
    raw = [features.extract_features(s["image"], fns) for s in (splits.train, splits.val, splits.test)]
    train, val, test = features.standardize_features(*raw)
    return {
        name: {"image": x, "label": s["label"]}
        for name, x, s in zip(("train", "val", "test"), (train, val, test), (splits.train, splits.val, splits.test))
    }


def _train_one(
    kind: str, config: ml_collections.ConfigDict, data: dict, num_classes: int, learning_rate: float, l2: float
) -> tuple[dict[str, Any], dict]:
    """One fit of the SVM (``kind='svm'``) or the net (``'net'``); returns its row and history."""
    settings = config[kind]
    num_steps = int(settings.num_steps)
    if kind == "svm":
        model, loss, lr = models.linear(num_classes=num_classes), "svm", learning_rate
    else:
        model = models.two_layer_net(hidden_size=settings.hidden_size, num_classes=num_classes)
        loss = "softmax"
        lr = train_exp.make_schedule("step", learning_rate, num_steps=num_steps)
    penalty = (lambda params: losses.l2_penalty(params, strength=l2)) if l2 > 0 else None
    result = training.fit(
        model,
        optimizers.sgd(learning_rate=lr),
        train=data["train"],
        val=data["val"],
        loss=loss,
        penalty=penalty,
        num_steps=num_steps,
        batch_size=min(config.batch_size, len(data["train"]["label"])),
        eval_every=max(1, num_steps // config.num_evals),
        seed=config.seed,
        check_initial_loss=False,
    )
    eval_step = training.make_eval_step(model, loss=loss)
    scores = {
        split: float(
            training.evaluate(eval_step, result.state, data[split], batch_size=min(1000, len(data[split]["label"])))[
                "accuracy"
            ]
        )
        for split in ("val", "test")
    }
    row = {
        "model": "linear SVM" if kind == "svm" else "two-layer net",
        "learning_rate": learning_rate,
        "l2": l2,
        "status": result.status,
        "val_accuracy": scores["val"],
        "test_accuracy": scores["test"],
    }
    return row, result.history


def run(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> FeaturesRun:
    """Extracts the features, trains both grids, writes ``features.md/.csv``, ``results.json``, ``curves.png``.

    When the dataset is the shared CIFAR-10 copy and it is absent, nothing is trained and
    the returned run says why (``skipped``).
    """
    start = time.perf_counter()
    workdir = pathlib.Path(workdir)
    validate_config(config)
    try:
        splits = _common.load_splits(
            config.dataset,
            val_size=config.val_size,
            train_size=config.train_size or None,
            test_size=config.test_size or None,
        )
    except FileNotFoundError as err:
        return FeaturesRun([], {}, 0, time.perf_counter() - start, skipped=" ".join(str(err).split()))
    data = build_features(config, splits)
    rows, curves = [], {}
    for kind in ("svm", "net"):
        for lr, l2 in itertools.product(config[kind].learning_rates, config[kind].l2s):
            row, history = _train_one(kind, config, data, splits.num_classes, float(lr), float(l2))
            rows.append(row)
            curves.setdefault(row["model"], {})[f"lr={lr:g} l2={l2:g}"] = (history["step"], [history["val_accuracy"]])
    best = {}
    for row in rows:
        if row["model"] not in best or row["val_accuracy"] > best[row["model"]]["val_accuracy"]:
            best[row["model"]] = row
    seconds = time.perf_counter() - start
    num_features = int(data["train"]["image"].shape[1])
    _common.write_tables(
        workdir,
        "features",
        rows,
        title=f"HOG + HSV features on {config.dataset}",
        notes=f"{num_features} features per image; best by validation accuracy: "
        + "; ".join(f"{m}: {r['val_accuracy']:.1%} val / {r['test_accuracy']:.1%} test" for m, r in best.items()),
    )
    _common.write_json(
        workdir / "results.json",
        {"dataset": config.dataset, "num_features": num_features, "rows": rows, "best": best, "seconds": seconds},
    )
    _common.plot_curves(
        workdir / "curves.png",
        curves,
        ylabel="validation accuracy",
        title=f"Classifiers on HOG + HSV features ({config.dataset})",
    )
    return FeaturesRun(rows, best, num_features, seconds)
