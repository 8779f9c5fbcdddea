"""``--sweep``: every seed and learning rate of one (model, optimizer) in one vmapped program.

:func:`run_all_sweep` is a drop-in for :func:`run.run_all` (same specs in, same
:class:`run.RunResult` list out, in the same order) built on
:func:`jax231.parallel.run_sweep`, whose member ``k`` is ``fit(..., seed=seeds[k])``
with ``learning_rates[k]``:

* one ``run_sweep`` call per (model, optimizer) covering all its seeds x learning
  rates when ``config.schedule == 'constant'`` (the learning rate is then a value in
  the optimizer state); with a schedule the rate is recomputed from the schedule at
  every step and cannot be swept, so there is one call per learning rate (seeds only);
* L-BFGS (full batch, its line search needs ``value_fn``, which ``run_sweep`` does
  not pass) keeps the loop of :func:`run.run_all`.

Differences from the loop, all documented in the results:

* numbers equal the loop's up to float32 reassociation (XLA batches the K members'
  matrix products);
* ``fit``'s explosion guard runs inside the sweep's loop (the same core): a member
  whose update is bad is ``'diverged'`` and frozen at its last good state while the
  others go on; its history keeps the rows ``fit`` would keep (those up to its bad
  step) and its final metrics are those of the last good state, as ``fit``'s;
* the initial-loss warning (``fit``'s guard 1) is not run (every member's update-0
  loss is in ``run_sweep``'s result);
* times are shared by the K members of a call: ``seconds_per_step`` is the median
  sweep seconds per update divided by K and ``wall_seconds`` the call's wall time
  (compilation included) divided by K, i.e. the amortised cost of one run. L-BFGS
  runs are timed alone, so in sweep mode a ``seconds`` performance profile favours
  the swept optimizers; use ``--config.profile_cost=steps`` (or ``epochs``) to
  compare across modes.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable, Mapping, Sequence

import jax
import ml_collections
import numpy as np

from jax231 import parallel, training

from experiments import _common as common
from experiments.compare_optimizers import optim, run as run_lib

EXPLOSION_FACTOR = 3.0
"""``fit``'s default ``explosion_factor``, used by both paths."""


def sweep_groups(specs: Sequence[run_lib.RunSpec], *, schedule: str) -> list[list[int]]:
    """Indices of ``specs`` trained together: one group per (model, optimizer), split by
    learning rate unless ``schedule == 'constant'``; L-BFGS specs are left out."""
    groups: dict[tuple, list[int]] = {}
    for i, spec in enumerate(specs):
        if optim.is_full_batch(spec.optimizer):
            continue
        key = (spec.model, spec.optimizer) + (() if schedule == "constant" else (spec.learning_rate,))
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def _member_history(history: Mapping[str, np.ndarray], k: int, stop: int | None) -> dict[str, list]:
    """Member ``k``'s history as ``fit`` returns it (lists of floats), first ``stop`` rows."""
    out = {}
    for name, values in history.items():
        row = values[:stop] if values.ndim == 1 else values[k, :stop]
        out[name] = [float(v) for v in row]
    return out


def train_group(
    specs: Sequence[run_lib.RunSpec],
    *,
    problem: run_lib.Problem,
    splits: common.Splits,
    config: ml_collections.ConfigDict,
    cache: dict | None = None,
) -> list[run_lib.RunResult]:
    """Trains ``specs`` (one model, one minibatch optimizer) with one ``run_sweep`` call."""
    lrs = np.asarray([s.learning_rate for s in specs], np.float32)
    if not run_lib.lr_as_data(config) and len(set(lrs.tolist())) > 1:
        raise ValueError(
            f"specs: a schedule ({config.schedule!r}) allows one learning rate per sweep; "
            f"got {sorted(set(lrs.tolist()))}"
        )
    optimizer, _ = run_lib.optimizer_for(
        config, specs[0].optimizer, specs[0].learning_rate, {} if cache is None else cache
    )
    batch_size = min(config.batch_size, len(splits.train["label"]))
    start = time.monotonic()
    result = parallel.run_sweep(
        problem.model,
        optimizer,
        train=splits.train,
        val=splits.val,
        seeds=np.asarray([s.seed for s in specs], np.int32),
        batch_size=batch_size,
        hyperparams={"learning_rate": lrs} if run_lib.lr_as_data(config) else None,
        num_steps=config.num_steps,
        eval_every=config.eval_every,
        explosion_factor=EXPLOSION_FACTOR,
    )
    return results_from_sweep(
        specs, result, problem=problem, optimizer=optimizer, splits=splits, config=config, start=start
    )


def results_from_sweep(
    specs: Sequence[run_lib.RunSpec],
    result: Any,
    *,
    problem: run_lib.Problem,
    optimizer: Any,
    splits: common.Splits,
    config: ml_collections.ConfigDict,
    start: float,
) -> list[run_lib.RunResult]:
    """One :class:`run.RunResult` per member of a ``run_sweep`` result (``specs[k]`` = member ``k``).

    Final metrics are every member's on train / val / test with fit's eval step (at
    ``eval_params`` where the optimizer has them); ``start`` is the ``time.monotonic()``
    before the sweep, so that ``wall_seconds`` is the call's wall time (compilation and
    final evaluation included) divided by the number of members.
    """
    num_train = len(splits.train["label"])
    batch_size = min(config.batch_size, num_train)
    finals = _final_metrics(problem, optimizer, result.state, splits)
    wall = time.monotonic() - start
    k = len(specs)
    per_step = run_lib.seconds_per_step({"step": result.history["step"], "time": result.history["time"]}) / k
    out = []
    for i, spec in enumerate(specs):
        diverged = result.status[i] == "diverged"
        kept = int(np.sum(result.history["step"] <= result.first_bad_step[i])) if diverged else None
        history = _member_history(result.history, i, kept)
        history["time"] = [t / k for t in history["time"]]
        message = result.messages[i] if diverged else f"completed {config.num_steps} steps (run_sweep, {k} members)"
        final = {split: {m: float(v[i]) for m, v in metrics.items()} for split, metrics in finals.items()}
        steps = run_lib.time_to_target(history, problem.target)
        out.append(
            run_lib.RunResult(
                spec=spec,
                status=str(result.status[i]),
                message=message,
                history=history,
                epochs_per_step=batch_size / num_train,
                final_train_loss=final["train"]["loss"],
                final_train_accuracy=final["train"]["accuracy"],
                val_accuracy=final["val"]["accuracy"],
                test_accuracy=final["test"]["accuracy"],
                steps_to_target=steps,
                seconds_per_step=per_step,
                seconds_to_target=steps * per_step,
                wall_seconds=wall / k,
            )
        )
    return out


@functools.lru_cache(maxsize=None)
def _members_eval(model: Any) -> Any:
    """``jit(vmap(eval_step))`` over members' ``(params, model_state)`` for one model.

    Keyed on the model only (the optimizer's evaluation point is applied before), so
    every optimizer of a model shares one program per split shape.
    """
    eval_step = training.make_eval_step(model)

    def one(params, model_state, data):
        return eval_step(training.TrainState(params, model_state, None, None, None), data)

    return jax.jit(jax.vmap(one, in_axes=(0, 0, None)))


def _final_metrics(
    problem: run_lib.Problem, optimizer: Any, states: Any, splits: common.Splits
) -> dict[str, dict[str, np.ndarray]]:
    """Every member's final ``{'loss', 'accuracy'}`` on train/val/test.

    fit's eval step (:func:`jax231.training.make_eval_step`, inference mode) at the
    optimizer's evaluation point (``eval_params``, e.g. schedule-free's average),
    vmapped over the members and over each whole split at once.
    """
    view = jax.vmap(lambda state: training.eval_view(optimizer, state))(states)
    evaluate = _members_eval(problem.model)
    out = {}
    for split, data in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
        metrics = evaluate(view.params, view.model_state, {"image": data["image"], "label": data["label"]})
        out[split] = {m: np.asarray(metrics[m]) for m in ("loss", "accuracy")}
    return out


def run_all_sweep(
    specs: Sequence[run_lib.RunSpec],
    *,
    problems: Mapping[str, run_lib.Problem],
    splits: common.Splits,
    config: ml_collections.ConfigDict,
    log: Callable[[str], None] | None = print,
    optimizers: dict[tuple[str, float], Any] | None = None,
) -> list[run_lib.RunResult]:
    """:func:`run.run_all` with one ``run_sweep`` per group of :func:`sweep_groups`.

    Args:
      specs: the runs.
      problems: models by name.
      splits: the data.
      config: the experiment config (``schedule`` decides whether learning rates share a call).
      log: called with one line per finished run (None: silent).
      optimizers: optimizer cache shared with the loop (see :func:`run.optimizer_for`).

    Returns:
      One :class:`run.RunResult` per spec, in the order of ``specs``.
    """
    results: list[run_lib.RunResult | None] = [None] * len(specs)
    optimizers = {} if optimizers is None else optimizers
    for group in sweep_groups(specs, schedule=config.schedule):
        members = [specs[i] for i in group]
        for i, result in zip(
            group,
            train_group(members, problem=problems[members[0].model], splits=splits, config=config, cache=optimizers),
        ):
            results[i] = result
            if log is not None:
                _log_line(log, result)
    rest = [i for i, r in enumerate(results) if r is None]
    if rest:
        for i, result in zip(
            rest,
            run_lib.run_all(
                [specs[i] for i in rest],
                problems=problems,
                splits=splits,
                config=config,
                log=log,
                optimizers=optimizers,
            ),
        ):
            results[i] = result
    return results


def _log_line(log: Callable[[str], None], r: run_lib.RunResult) -> None:
    s = r.spec
    log(
        f"{s.model:>8s} {s.optimizer:>9s} lr={s.learning_rate:<8.3g} seed={s.seed} "
        f"{r.status:>9s}  train loss {r.final_train_loss:.4f}  val acc {r.val_accuracy:.3f}  "
        f"test acc {r.test_accuracy:.3f}  target@{r.steps_to_target:g} steps  "
        f"({r.wall_seconds:.1f} s amortised, sweep)"
    )


__all__ = ["results_from_sweep", "run_all_sweep", "sweep_groups", "train_group"]
