"""Training runs of compare_optimizers: one (model, optimizer, learning rate, seed) at a time.

:func:`train_one` trains one run with :func:`jax231.training.fit` on on-device arrays
and measures it; :func:`run_all` is the loop over runs. ``fit`` caches its compiled
programs per (model, optimizer) object, so :func:`run_all` builds each model and
optimizer once and reuses them: the seed and (with a constant schedule) the
learning rate enter as data (``fit(hyperparams={'learning_rate': lr})``), so each
(model, optimizer) compiles once, whatever the number of seeds (with a schedule, once
per learning rate). The default (tuned) main job uses this loop only for the
full-batch rules (L-BFGS); every minibatch optimizer is tuned in one vmapped sweep
(:mod:`experiments.compare_optimizers.tune`). With ``--notune --sweep``
:func:`experiments.compare_optimizers.sweep.run_all_sweep` replaces :func:`run_all`
(same specs in, same :class:`RunResult` out).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import ml_collections
import numpy as np

from jax231 import training

from experiments import _common as common
from experiments.compare_optimizers import optim


class RunSpec(NamedTuple):
    """What one run trains.

    Attributes:
      model: model name (a key of ``config.model_configs`` or any jax231 model).
      optimizer: optimizer name.
      learning_rate: the (peak) learning rate.
      seed: seed of the initialisation and of the data order.
    """

    model: str
    optimizer: str
    learning_rate: float
    seed: int


class RunResult(NamedTuple):
    """What one run produced (all floats; ``inf`` = target never reached).

    Attributes:
      spec: the :class:`RunSpec`.
      status: ``fit``'s status (``'completed'``, ``'diverged'``, ...).
      message: ``fit``'s message (the initial-loss verdict when it failed, said once).
      history: ``fit``'s history (one entry per evaluation).
      epochs_per_step: passes over the training set per update (batch / N; 1 for L-BFGS).
      final_train_loss: data loss of the final parameters on the whole train split
        (inference mode).
      final_train_accuracy: accuracy of the final parameters on the train split.
      val_accuracy: accuracy of the final parameters on val.
      test_accuracy: accuracy of the final parameters on the test split.
      steps_to_target: first evaluated step whose val accuracy >= the model's target.
      seconds_per_step: median over evaluation intervals (the first one, which holds
        compilation, excluded when there are others) of wall seconds per update.
      seconds_to_target: ``steps_to_target * seconds_per_step`` (compilation excluded).
      wall_seconds: wall time of the whole ``fit`` call (compilation included).
    """

    spec: RunSpec
    status: str
    message: str
    history: dict[str, list]
    epochs_per_step: float
    final_train_loss: float
    final_train_accuracy: float
    val_accuracy: float
    test_accuracy: float
    steps_to_target: float
    seconds_per_step: float
    seconds_to_target: float
    wall_seconds: float


def target_for(config: ml_collections.ConfigDict, model: str) -> float:
    """The val accuracy target of ``model`` (``config.target_accuracy`` or the default)."""
    return float(config.target_accuracy.get(model, config.default_target_accuracy))


def time_to_target(history: Mapping[str, Sequence[float]], target: float) -> float:
    """First evaluated ``step`` whose ``val_accuracy >= target`` (``inf`` if none)."""
    for step, acc in zip(history["step"], history["val_accuracy"]):
        if acc is not None and math.isfinite(acc) and acc >= target:
            return float(step)
    return math.inf


def seconds_per_step(history: Mapping[str, Sequence[float]]) -> float:
    """Median wall seconds per update between evaluations (see :class:`RunResult`)."""
    steps = np.asarray([0.0, *history["step"]], np.float64)
    times = np.asarray([0.0, *history["time"]], np.float64)
    if len(steps) < 2:
        return math.nan
    rates = np.diff(times) / np.maximum(np.diff(steps), 1.0)
    return float(np.median(rates[1:] if len(rates) > 1 else rates))


class Problem(NamedTuple):
    """A model built once for a dataset (the key of fit's compile cache).

    Attributes:
      name: the model name.
      model: the ``Model(init, apply)``.
      target: the val accuracy target.
    """

    name: str
    model: Any
    target: float


def build_problems(config: ml_collections.ConfigDict, models: Sequence[str], num_classes: int) -> dict[str, Problem]:
    """Builds every model once (``config.model_configs[name]`` + ``num_classes``)."""
    registry = common.model_registry()
    problems = {}
    for name in models:
        kwargs = dict(config.model_configs.get(name, {}))
        model = registry.get(name, num_classes=num_classes, **kwargs)
        problems[name] = Problem(name, model, target_for(config, name))
    return problems


def make_optimizer(config: ml_collections.ConfigDict, name: str, learning_rate: float):
    """The optimizer of a run, with the config's schedule and run length."""
    full_batch = optim.is_full_batch(name)
    return optim.build_optimizer(
        name,
        learning_rate=learning_rate,
        schedule=config.schedule,
        num_steps=config.lbfgs_steps if full_batch else config.num_steps,
        warmup_steps=config.warmup_steps,
        lbfgs_history=config.lbfgs_history,
    )


def lr_as_data(config: ml_collections.ConfigDict) -> bool:
    """Whether the learning rate can be a value in the optimizer state (no schedule rewrites it)."""
    return config.schedule == "constant"


def optimizer_for(
    config: ml_collections.ConfigDict, spec_optimizer: str, learning_rate: float, cache: dict
) -> tuple[Any, dict | None]:
    """``(optimizer, hyperparams)`` of a run: one object per optimizer, the rate as data when it can be.

    ``cache`` maps ``(name,)`` (constant schedule) or ``(name, lr)`` to the built object.
    """
    key = (spec_optimizer,) if lr_as_data(config) else (spec_optimizer, learning_rate)
    if key not in cache:
        cache[key] = make_optimizer(config, spec_optimizer, learning_rate)
    return cache[key], ({"learning_rate": learning_rate} if lr_as_data(config) else None)


def train_one(
    spec: RunSpec,
    *,
    problem: Problem,
    optimizer: Any,
    splits: common.Splits,
    config: ml_collections.ConfigDict,
    hyperparams: Mapping[str, float] | None = None,
) -> RunResult:
    """Trains one run with :func:`jax231.training.fit` and measures it.

    Args:
      spec: what to train (``spec.model`` must be ``problem.name``).
      problem: the model built by :func:`build_problems` (reuse it across seeds).
      optimizer: the run's optimizer (reuse the same object: ``fit``'s compile
        cache is keyed on it).
      splits: train / val / test arrays.
      config: the experiment config (batch size, steps, evaluation cadence).
      hyperparams: values written into the optimizer state (the learning rate as data).

    Returns:
      A :class:`RunResult`.
    """
    full_batch = bool(optimizer.needs_objective)
    num_train = len(splits.train["label"])
    batch_size = None if full_batch else min(config.batch_size, num_train)
    start = time.monotonic()
    result = training.fit(
        problem.model,
        optimizer,
        train=splits.train,
        val=splits.val,
        num_steps=config.lbfgs_steps if full_batch else config.num_steps,
        batch_size=batch_size,
        eval_every=config.lbfgs_eval_every if full_batch else config.eval_every,
        seed=spec.seed,
        check_initial_loss=True,
        hyperparams=hyperparams,
    )
    wall = time.monotonic() - start
    final = {
        name: result.evaluate(data)
        for name, data in (("train", splits.train), ("val", splits.val), ("test", splits.test))
    }
    steps = time_to_target(result.history, problem.target)
    per_step = seconds_per_step(result.history)
    return RunResult(
        spec=spec,
        status=result.status,
        message=result.message,
        history=result.history,
        epochs_per_step=1.0 if batch_size is None else batch_size / num_train,
        final_train_loss=final["train"]["loss"],
        final_train_accuracy=final["train"]["accuracy"],
        val_accuracy=final["val"]["accuracy"],
        test_accuracy=final["test"]["accuracy"],
        steps_to_target=steps,
        seconds_per_step=per_step,
        seconds_to_target=steps * per_step,
        wall_seconds=wall,
    )


def run_all(
    specs: Sequence[RunSpec],
    *,
    problems: Mapping[str, Problem],
    splits: common.Splits,
    config: ml_collections.ConfigDict,
    log: Callable[[str], None] | None = print,
    optimizers: dict[tuple[str, float], Any] | None = None,
) -> list[RunResult]:
    """Trains every spec, building each (optimizer, learning rate) once and reusing it.

    This is the loop a vmapped sweep (all seeds and learning rates of one optimizer in
    one program) can replace: same specs in, same results out.

    Args:
      specs: the runs.
      problems: models by name (:func:`build_problems`).
      splits: the data.
      config: the experiment config.
      log: called with one line per finished run (None: silent).
      optimizers: optimizer cache of :func:`optimizer_for`, shared between calls (the
        learning-rate search and the final runs), so that ``fit`` compiles once per
        (model, optimizer).
    """
    optimizers = {} if optimizers is None else optimizers
    results = []
    for spec in specs:
        optimizer, hyperparams = optimizer_for(config, spec.optimizer, spec.learning_rate, optimizers)
        result = train_one(
            spec,
            problem=problems[spec.model],
            optimizer=optimizer,
            splits=splits,
            config=config,
            hyperparams=hyperparams,
        )
        results.append(result)
        if log is not None:
            log(
                f"{spec.model:>8s} {spec.optimizer:>9s} lr={spec.learning_rate:<8.3g} seed={spec.seed} "
                f"{result.status:>9s}  train loss {result.final_train_loss:.4f}  val acc "
                f"{result.val_accuracy:.3f}  test acc {result.test_accuracy:.3f}  "
                f"target@{result.steps_to_target:g} steps  ({result.wall_seconds:.1f} s)"
            )
    return results
