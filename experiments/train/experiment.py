"""Train any model on any dataset with any optimizer and schedule, from a config.

Library half of ``python -m experiments.train.main``. The builders here
(:func:`build_data`, :func:`build_model`, :func:`build_optimizer`,
:func:`build_penalty`, :func:`num_steps_of`) are reused by the ``linear``,
``lr_find``, ``hparam_search`` and ``transfer`` experiments, so that every
experiment reads the same config fields the same way.

References:
  CS231n notes, "Neural networks 3: learning and evaluation"
  (https://cs231n.github.io/neural-networks-3/).
"""

from __future__ import annotations

import math
import pathlib
import time
from typing import Any, Callable, NamedTuple

import jax
import ml_collections
import numpy as np

from experiments import _common
from experiments._common import UsageError
from jax231 import losses, optimizers, pipelines, training

TFDS_DATASETS = ("mnist", "fashion_mnist", "kmnist", "cifar10", "cifar100", "svhn_cropped")
"""TFDS names accepted besides the offline ones (they download on first use; tests mock them)."""

PREPROCESS = ("none", "mean_image", "per_channel")
"""Preprocessing choices; fitted on the training split only (see :func:`build_data`)."""

SCHEDULES = optimizers.SCHEDULES.names
"""Learning-rate schedules selectable by name (see :func:`make_schedule`)."""

LOSSES = ("softmax", "svm")


class TrainRun(NamedTuple):
    """What :func:`run` produced.

    Attributes:
      fit: the :class:`jax231.training.FitResult` (final state, history, status).
      test: ``{'loss', 'accuracy'}`` of ``fit.state`` on the test split.
      val: ``{'loss', 'accuracy'}`` of ``fit.state`` on the validation split.
      num_steps: the number of updates the run was asked for.
      seconds: wall time of the run (data loading included).
    """

    fit: Any
    test: dict[str, float]
    val: dict[str, float]
    num_steps: int
    seconds: float


# ----------------------------------------------------------------------------- builders
def build_data(config: ml_collections.ConfigDict) -> _common.Splits:
    """Loads ``config.dataset`` into train/val/test arrays and preprocesses them.

    Reads ``dataset``, ``val_size``, ``train_size`` and ``test_size`` (0 = all) and
    ``preprocess`` (statistics fitted on the training split only, then applied to
    all three splits, as the notes insist).
    """
    _common.dataset_registry(extra=TFDS_DATASETS).check(config.dataset)
    _common.parse_choices("config.preprocess", [config.preprocess], PREPROCESS)
    splits = _common.load_splits(
        config.dataset,
        val_size=config.val_size,
        train_size=config.train_size or None,
        test_size=config.test_size or None,
        extra_datasets=TFDS_DATASETS,
    )
    if config.preprocess == "none":
        return splits
    stats = pipelines.fit_preprocessing(splits.train["image"], method=config.preprocess)

    def apply(arrays: dict) -> dict:
        return {**arrays, "image": np.asarray(pipelines.apply_preprocessing(stats, arrays["image"]))}

    return splits._replace(train=apply(splits.train), val=apply(splits.val), test=apply(splits.test))


def model_kwargs(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """The keyword arguments of the model factory: ``config.model_kwargs`` plus the short fields.

    ``norm`` ('' = none) and ``drop_rate`` (0 = none) are added only when set, so
    they reach only models that take them.
    """
    kwargs = dict(config.model_kwargs.to_dict()) if config.get("model_kwargs") else {}
    if config.get("norm"):
        kwargs["norm"] = config.norm
    if config.get("drop_rate"):
        kwargs["drop_rate"] = float(config.drop_rate)
    return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}


def build_model(config: ml_collections.ConfigDict, num_classes: int):
    """``jax231.models.get(config.model, num_classes=..., **model_kwargs(config))``.

    Raises:
      UsageError: for an unknown model name (listing the valid ones) or a kwarg the
        factory rejects.
    """
    registry = _common.model_registry(flag="model")
    registry.check(config.model)
    try:
        return registry.get(config.model, num_classes=num_classes, **model_kwargs(config))
    except (TypeError, ValueError) as err:
        raise UsageError(f"--config.model_kwargs: {config.model}: {err}") from None


def make_schedule(
    name: str, learning_rate: float, *, num_steps: int, kwargs: dict[str, Any] | None = None
) -> float | Callable:
    """:func:`jax231.optimizers.make_schedule` with the options of ``config.schedule_kwargs``.

    Args:
      name: one of :data:`SCHEDULES` (see :func:`jax231.optimizers.make_schedule`).
      learning_rate: the base (peak) learning rate.
      num_steps: the length of the run.
      kwargs: ``decay_rate``, ``step_size``, ``final_fraction``, ``warmup_fraction``.

    Raises:
      UsageError: an unknown name or option (listing the valid ones), or a bad value.
    """
    kwargs = dict(kwargs or {})
    _common.check_keywords(
        "--config.schedule_kwargs", kwargs, ("decay_rate", "step_size", "final_fraction", "warmup_fraction")
    )
    try:
        return optimizers.make_schedule(name, learning_rate, num_steps=max(num_steps, 1), **kwargs)
    except ValueError as err:
        raise UsageError(f"--config.schedule: {err}") from None


def build_optimizer(config: ml_collections.ConfigDict, *, num_steps: int, learning_rate: Any = None):
    """``jax231.optimizers.get(config.optimizer, learning_rate=<schedule>, **optimizer_kwargs)``.

    Args:
      config: reads ``optimizer``, ``learning_rate``, ``schedule``, ``schedule_kwargs``
        and ``optimizer_kwargs``.
      num_steps: the run length (for schedules).
      learning_rate: overrides ``config.learning_rate`` (a float or a schedule).
    """
    registry = _common.optimizer_registry(flag="optimizer")
    registry.check(config.optimizer)
    if learning_rate is None:
        if not config.learning_rate > 0:
            raise UsageError(f"--config.learning_rate: expected a positive number, got {config.learning_rate}")
        learning_rate = make_schedule(
            config.schedule,
            config.learning_rate,
            num_steps=num_steps,
            kwargs=config.get("schedule_kwargs", {}) and config.schedule_kwargs.to_dict(),
        )
    kwargs = dict(config.optimizer_kwargs.to_dict()) if config.get("optimizer_kwargs") else {}
    if config.optimizer == "lbfgs":
        return registry.get(config.optimizer, **kwargs)
    try:
        return registry.get(config.optimizer, learning_rate=learning_rate, **kwargs)
    except (TypeError, ValueError) as err:
        raise UsageError(f"--config.optimizer_kwargs: {config.optimizer}: {err}") from None


def build_penalty(config: ml_collections.ConfigDict, *, l2: float | None = None) -> Callable | None:
    """The L2 penalty ``l2 / 2 * sum(W**2)`` over weights (biases and norm params excluded), or None.

    The ``1/2`` is :func:`jax231.losses.l2_penalty`'s (assignment 2's) convention: its
    gradient is ``l2 * W``, plain weight decay with coefficient ``l2``.
    """
    strength = float(config.get("l2", 0.0) if l2 is None else l2)
    if strength < 0:
        raise UsageError(f"--config.l2: expected a strength >= 0, got {strength}")
    if strength == 0:
        return None
    return lambda params: losses.l2_penalty(params, strength=strength)


def num_steps_of(config: ml_collections.ConfigDict, num_train: int) -> int:
    """``config.num_steps``, or ``epochs * ceil(num_train / batch_size)`` when ``epochs`` > 0."""
    if config.get("epochs", 0) and config.epochs > 0:
        batch = config.batch_size or num_train
        return int(config.epochs * math.ceil(num_train / batch))
    if config.num_steps < 1:
        raise UsageError(f"--config.num_steps: expected >= 1 (or --config.epochs > 0), got {config.num_steps}")
    return int(config.num_steps)


def augment_fn(key: jax.Array, batch: dict) -> dict:
    """``fit``'s ``batch_fn``: random crops (pad 4) and flips of a training batch, on the device.

    ``fit`` calls it with ``key = fold_in(run_keys(seed).hook, step)``: the
    augmentation stream is a function of the global step, so a resumed run sees
    the same augmented batches as an uninterrupted one (bitwise resume).
    One module-level function, so the compiled programs are reused across runs.
    """
    return {**batch, "image": pipelines.augment_batch(key, batch["image"])}


# ------------------------------------------------------------------------------ run
def fit_kwargs(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """The optional ``fit`` keywords read from the config (0 means off)."""
    return {
        "eval_every": config.eval_every,
        "early_stopping_patience": config.get("early_stopping_patience", 0) or None,
        "max_seconds": config.get("max_seconds", 0) or None,
        "explosion_factor": config.get("explosion_factor", 3.0),
        "progress": config.get("progress", False),
    }


def validate(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """``config`` if it can run, checked before any data is read or anything trains.

    Checks the names (loss, model, optimizer, dataset, schedule), the numbers (finite,
    in range: :func:`experiments._common.check_config_numbers`) and the loop options;
    the batch size against the dataset is checked by :func:`run` once its size is known.

    Raises:
      UsageError: naming the first bad field.
    """
    _common.check_config_numbers(config)
    _common.parse_choices("config.loss", [config.loss], LOSSES)
    _common.model_registry(flag="config.model").check(config.model)
    _common.optimizer_registry(flag="config.optimizer").check(config.optimizer)
    _common.dataset_registry(flag="config.dataset", extra=TFDS_DATASETS).check(config.dataset)
    _common.parse_choices("config.schedule", [config.schedule], SCHEDULES)
    if config.batch_size < 0:
        raise UsageError(f"--config.batch_size: expected an int >= 0 (0 = full batch), got {config.batch_size}")
    for field in ("eval_every", "checkpoint_every", "early_stopping_patience", "max_seconds"):
        if config.get(field, 0) < 0 or (field == "eval_every" and config[field] < 1):
            raise UsageError(
                f"--config.{field}: expected {'>= 1' if field == 'eval_every' else '>= 0 (0 = off)'}, "
                f"got {config[field]}"
            )
    return config


def run(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> TrainRun:
    """Trains ``config.model`` on ``config.dataset`` and evaluates on val and test.

    ``fit`` writes its checkpoints and CSV/JSON logs into ``workdir`` (and resumes from
    them); this function adds ``results.json``, ``report.md`` and ``curves.png``.
    """
    start = time.perf_counter()
    workdir = pathlib.Path(workdir)
    validate(config)
    splits = build_data(config)
    model = build_model(config, splits.num_classes)
    num_train = len(splits.train["label"])
    batch_size = config.batch_size or None
    if batch_size is not None and not 0 < batch_size <= num_train:
        raise UsageError(f"--config.batch_size: expected 1..{num_train} (0 = full batch), got {batch_size}")
    num_steps = num_steps_of(config, num_train)
    optimizer = build_optimizer(config, num_steps=num_steps)
    batch_fn = augment_fn if config.get("augment", False) else None
    files = training.Checkpointing(
        str(workdir),
        config.get("checkpoint_every", 0) or None,
        allow_config_change=bool(config.get("allow_config_change", False)),
    )
    # L2 as fit's data argument (not a penalty closure): recorded with the checkpoints, so a resume
    # with another strength is refused, and one compiled program serves every strength.
    build_penalty(config)  # validates the strength
    result = training.fit(
        model,
        optimizer,
        train=splits.train,
        val=splits.val,
        loss=config.loss,
        l2=float(config.get("l2", 0.0)) or None,
        num_steps=num_steps,
        batch_size=batch_size,
        seed=config.seed,
        checkpointing=files,
        batch_fn=batch_fn,
        **fit_kwargs(config),
    )
    eval_step = training.make_eval_step(model, loss=config.loss)
    eval_batch = min(1000, len(splits.test["label"]))
    val = {
        k: float(v) for k, v in training.evaluate(eval_step, result.state, splits.val, batch_size=eval_batch).items()
    }
    test = {
        k: float(v) for k, v in training.evaluate(eval_step, result.state, splits.test, batch_size=eval_batch).items()
    }
    seconds = time.perf_counter() - start
    write_report(workdir, config, result, val=val, test=test, num_steps=num_steps, seconds=seconds)
    return TrainRun(result, test, val, num_steps, seconds)


def write_report(
    workdir: pathlib.Path,
    config: ml_collections.ConfigDict,
    result: Any,
    *,
    val: dict[str, float],
    test: dict[str, float],
    num_steps: int,
    seconds: float,
) -> None:
    """``results.json``, ``report.md`` and ``curves.png`` (loss and accuracy against step)."""
    history = result.history
    summary = {
        "dataset": config.dataset,
        "model": config.model,
        "model_kwargs": model_kwargs(config),
        "optimizer": config.optimizer,
        "learning_rate": config.learning_rate,
        "schedule": config.schedule,
        "loss": config.loss,
        "l2": config.get("l2", 0.0),
        "batch_size": config.batch_size,
        "num_steps": num_steps,
        "seed": config.seed,
        "status": result.status,
        "message": result.message,
        "best_step": result.best_step,
        "val_loss": val["loss"],
        "val_accuracy": val["accuracy"],
        "test_loss": test["loss"],
        "test_accuracy": test["accuracy"],
        "seconds": seconds,
    }
    _common.write_json(workdir / "results.json", summary)
    steps = history.get("step", [])
    if steps:
        panels = {
            "loss": {"train": (steps, [history["train_loss"]]), "val": (steps, [history["val_loss"]])},
            "accuracy": {"train": (steps, [history["train_accuracy"]]), "val": (steps, [history["val_accuracy"]])},
        }
        _common.plot_curves(
            workdir / "curves.png",
            panels,
            ylabel="value",
            title=f"{config.model} on {config.dataset} ({config.optimizer})",
        )
    rows = [{"field": k, "value": v} for k, v in summary.items()]
    _common.write_tables(workdir, "report", rows, title=f"{config.model} on {config.dataset}")
