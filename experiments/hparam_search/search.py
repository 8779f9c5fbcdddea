"""Coarse-to-fine random (or grid) search in log space, as the CS231n notes recommend.

The notes ("Neural networks 3: hyperparameter optimization"): search the learning
rate and the regularization strength *randomly* (not on a grid) and on a *log* scale,
first coarsely over several orders of magnitude with short runs, then finely around
the best region. Trials whose loss explodes are stopped early by the caller (``fit``'s
explosion guard) and reported with ``status='diverged'``; they never steer the fine
stage.

Beside random search, ``strategy='grid'`` evaluates the Cartesian product of
``grid_size`` log-spaced values per range and every categorical choice (the
baseline Bergstra & Bengio beat); categorical hyperparameters (optimizer,
schedule, architecture) are drawn uniformly from their choices; the fine stage
may be repeated for ``rounds`` rounds, each shrinking the ranges (and the
choices) around the best trials so far.

The search itself is plain NumPy and knows nothing about training: ``objective``
maps a dict of hyperparameters and the stage name (``'coarse'`` or ``'fine'``, so
coarse trials can be shorter) to a dict of results with at least ``'val_accuracy'``
and ``'status'``.

References:
  Bergstra & Bengio, "Random search for hyper-parameter optimization", JMLR 2012.
  CS231n notes, https://cs231n.github.io/neural-networks-3/#hyper
"""

from __future__ import annotations

import itertools
import math
import pathlib
import time
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np

from experiments._common import UsageError
from jax231 import training

LogRanges = Mapping[str, tuple[float, float]]
"""``name -> (low, high)``: a positive interval searched uniformly in log10 space."""

Choices = Mapping[str, Sequence[Any]]
"""``name -> (choice, ...)``: a categorical hyperparameter, drawn uniformly."""

STRATEGIES = ("random", "grid")


class Trial(NamedTuple):
    """One evaluated point of the search.

    Attributes:
      index: position in the order of evaluation (0-based).
      stage: ``'coarse'`` or ``'fine'``.
      hparams: the sampled hyperparameters.
      result: what ``objective`` returned (``'val_accuracy'``, ``'status'``, ...).
      seconds: wall time of the objective call.
      round: 0 for the coarse stage, ``r`` for the ``r``-th fine round.
    """

    index: int
    stage: str
    hparams: dict[str, Any]
    result: dict[str, Any]
    seconds: float
    round: int = 0


def check_ranges(ranges: LogRanges, *, field: str = "ranges") -> dict[str, tuple[float, float]]:
    """Validates ``0 < low <= high`` for every range; raises ``UsageError`` naming ``field``."""
    checked = {}
    if not ranges:
        raise UsageError(f"--config.{field}: expected at least one 'name: (low, high)' range; got nothing")
    for name, bounds in ranges.items():
        try:
            low, high = (float(b) for b in bounds)
        except (TypeError, ValueError):
            raise UsageError(f"--config.{field}.{name}: expected (low, high); got {bounds!r}") from None
        if not 0 < low <= high or not math.isfinite(high):
            raise UsageError(
                f"--config.{field}.{name}: expected 0 < low <= high (log-space search); got ({low}, {high})"
            )
        checked[name] = (low, high)
    return checked


def sample_log_uniform(rng: np.random.Generator, ranges: LogRanges, num: int) -> list[dict[str, float]]:
    """``num`` points, each coordinate ``10 ** Uniform(log10 low, log10 high)``."""
    points = []
    for _ in range(num):
        points.append(
            {name: float(10 ** rng.uniform(math.log10(lo), math.log10(hi))) for name, (lo, hi) in ranges.items()}
        )
    return points


def check_choices(
    choices: Choices, *, valid: Mapping[str, Sequence[Any]] | None = None, field: str = "choices"
) -> dict[str, tuple]:
    """Validates non-empty choice lists (and names in ``valid[name]`` when given); ``UsageError`` otherwise."""
    checked = {}
    for name, options in (choices or {}).items():
        options = (options,) if isinstance(options, str) else tuple(options)
        if not options:
            raise UsageError(f"--config.{field}.{name}: expected at least one choice; got ()")
        known = (valid or {}).get(name)
        unknown = [o for o in options if known is not None and o not in known]
        if unknown:
            raise UsageError(
                f"--config.{field}.{name}: unknown category {unknown[0]!r}; valid: {', '.join(map(str, known))}"
            )
        checked[name] = options
    return checked


def sample_categorical(rng: np.random.Generator, choices: Choices, num: int) -> list[dict[str, Any]]:
    """``num`` points, each coordinate drawn uniformly from its choices."""
    return [{name: options[int(rng.integers(len(options)))] for name, options in choices.items()} for _ in range(num)]


def grid_points(ranges: LogRanges, choices: Choices, grid_size: int) -> list[dict[str, Any]]:
    """The Cartesian product of ``grid_size`` log-spaced values per range and every choice.

    Each range ``(lo, hi)`` gives ``10 ** linspace(log10 lo, log10 hi, grid_size)``
    (one value, the geometric midpoint, when ``grid_size`` is 1 or ``lo == hi``).
    """
    if not isinstance(grid_size, int) or grid_size < 1:
        raise UsageError(
            f"--config.grid_size: expected an integer >= 1 (an empty grid has no trial); got {grid_size!r}"
        )
    axes: dict[str, list] = {}
    for name, (lo, hi) in ranges.items():
        if grid_size == 1 or lo == hi:
            axes[name] = [float(math.sqrt(lo * hi))]
        else:
            axes[name] = [float(v) for v in np.logspace(math.log10(lo), math.log10(hi), grid_size)]
    for name, options in choices.items():
        axes[name] = list(options)
    if not axes or any(not values for values in axes.values()):
        raise UsageError("--config.ranges/choices: expected at least one non-empty axis for the grid; got none")
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def refine_choices(trials: Sequence[Trial], choices: Choices, *, top_k: int) -> dict[str, tuple]:
    """The categories of the ``top_k`` best finite trials (all of ``choices`` when none is finite)."""
    best = [t for t in rank(trials)[:top_k] if _score(t) > -math.inf]
    if not best:
        return dict(choices)
    return {
        name: tuple(o for o in options if any(t.hparams[name] == o for t in best)) for name, options in choices.items()
    }


def _score(trial: Trial) -> float:
    """Sort key: validation accuracy; diverged or non-finite trials rank last."""
    value = trial.result.get("val_accuracy", math.nan)
    if trial.result.get("status") == "diverged" or value is None or not math.isfinite(value):
        return -math.inf
    return float(value)


def rank(trials: Sequence[Trial]) -> list[Trial]:
    """Trials sorted by validation accuracy, best first (diverged last, then by index)."""
    return sorted(trials, key=lambda t: (-_score(t), t.index))


def refine_ranges(
    trials: Sequence[Trial], ranges: LogRanges, *, top_k: int, shrink: float
) -> dict[str, tuple[float, float]]:
    """The fine-stage ranges: the log-span of the ``top_k`` best trials, padded, inside ``ranges``.

    Each coordinate's new range is ``[min, max]`` of the best trials' values (in
    log10), widened on both sides by ``shrink`` times the coarse range's width in
    decades (so a single best trial still yields a range), and clipped to the coarse
    range. Falls back to ``ranges`` when no trial is finite.
    """
    best = [t for t in rank(trials)[:top_k] if _score(t) > -math.inf]
    if not best:
        return dict(ranges)
    fine = {}
    for name, (lo, hi) in ranges.items():
        logs = [math.log10(t.hparams[name]) for t in best]
        pad = shrink * (math.log10(hi) - math.log10(lo)) / 2
        new_lo = max(math.log10(lo), min(logs) - pad)
        new_hi = min(math.log10(hi), max(logs) + pad)
        fine[name] = (10**new_lo, 10**new_hi)
    return fine


def coarse_to_fine(
    objective: Callable[[dict[str, float], str], dict[str, Any]] | None,
    ranges: LogRanges,
    *,
    num_coarse: int,
    num_fine: int,
    seed: int,
    top_k: int = 3,
    shrink: float = 0.25,
    log: Callable[[str], None] | None = None,
    batch_objective: Callable[[list[dict[str, float]], str], list[dict[str, Any]]] | None = None,
    rounds: int = 1,
    strategy: str = "random",
    choices: Choices | None = None,
    grid_size: int = 3,
) -> tuple[list[Trial], dict[str, tuple[float, float]]]:
    """Runs ``num_coarse`` random trials over ``ranges`` then ``rounds`` x ``num_fine`` over refined ranges.

    Round ``r >= 1`` refines the ranges of round ``r - 1`` around the ``top_k``
    best trials so far (:func:`refine_ranges`, clipped to the previous ranges, so
    they only shrink) and keeps the categories of those trials
    (:func:`refine_choices`). With ``strategy='grid'`` each round evaluates
    :func:`grid_points` of its ranges instead (``num_coarse``/``num_fine`` unused).

    Args:
      objective: ``(hparams, stage) -> result`` with ``result['val_accuracy']`` and ``result['status']``
        (``'diverged'`` for trials stopped by the explosion guard); None when ``batch_objective`` is given.
      batch_objective: ``(points, stage) -> results``, one result per point, evaluating a
        whole stage at once (``--sweep``: one vmapped program); each trial's ``seconds``
        is then the stage's wall time divided by its number of points.
      ranges: coarse ``name -> (low, high)`` log-space ranges.
      num_coarse: number of coarse trials (>= 1).
      num_fine: number of fine trials (>= 0).
      seed: seed of the NumPy generator drawing the points (same seed, same points).
      top_k: how many best coarse trials define the fine ranges.
      shrink: padding of the fine ranges, as a fraction of the coarse width (see
        :func:`refine_ranges`).
      log: optional ``print``-like callback, one line per trial.
      rounds: fine rounds (>= 0; 1 is the classic coarse-then-fine).
      strategy: ``'random'`` or ``'grid'``.
      choices: categorical ``name -> options`` (searched beside ``ranges``).
      grid_size: values per range on the grid.

    Returns:
      ``(trials in evaluation order, ranges of the last round)``.
    """
    ranges = check_ranges(ranges)
    choices = check_choices(choices or {})
    if num_coarse < 1 or num_fine < 0:
        raise UsageError(f"--config.num_coarse/num_fine: expected >= 1 and >= 0; got {num_coarse}, {num_fine}")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise UsageError(f"--config.rounds: expected an integer >= 0; got {rounds!r}")
    if strategy not in STRATEGIES:
        raise UsageError(f"--config.strategy: expected one of {', '.join(STRATEGIES)}; got {strategy!r}")
    if (objective is None) == (batch_objective is None):
        raise ValueError("coarse_to_fine: expected exactly one of objective and batch_objective")
    rng = np.random.default_rng(seed)
    trials: list[Trial] = []

    def timed(stage: str, points: list[dict[str, float]]):
        if batch_objective is not None:
            start = time.perf_counter()
            results = list(batch_objective(points, stage)) if points else []
            seconds = (time.perf_counter() - start) / max(len(points), 1)
            yield from ((hparams, dict(result), seconds) for hparams, result in zip(points, results))
            return
        for hparams in points:
            start = time.perf_counter()
            result = dict(objective(hparams, stage))
            yield hparams, result, time.perf_counter() - start

    def evaluate(stage: str, points: list[dict[str, float]], round_: int = 0) -> None:
        for hparams, result, seconds in timed(stage, points):
            trial = Trial(len(trials), stage, hparams, result, seconds, round_)
            trials.append(trial)
            if log is not None:
                shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in hparams.items())
                log(
                    f"[{stage} {trial.index:3d}] {shown}: val_accuracy={result.get('val_accuracy', math.nan):.4f} "
                    f"status={result.get('status')} ({trial.seconds:.1f} s)"
                )

    def points(current: LogRanges, options: Choices, num: int) -> list[dict[str, Any]]:
        if strategy == "grid":
            return grid_points(current, options, grid_size)
        numeric = sample_log_uniform(rng, current, num)
        return [p | c for p, c in zip(numeric, sample_categorical(rng, options, num))]

    evaluate("coarse", points(ranges, choices, num_coarse))
    for round_ in range(1, rounds + 1):
        ranges = refine_ranges(trials, ranges, top_k=top_k, shrink=shrink)
        choices = refine_choices(trials, choices, top_k=top_k)
        evaluate("fine", points(ranges, choices, num_fine), round_)
    return trials, ranges


def trial_rows(
    trials: Sequence[Trial],
    columns: Sequence[str] = ("val_accuracy", "val_loss", "train_accuracy", "status", "best_step"),
) -> list[dict[str, Any]]:
    """Flat rows for a table, sorted by validation accuracy (best first)."""
    rows = []
    for trial in rank(trials):
        row: dict[str, Any] = {"rank": len(rows) + 1, "trial": trial.index, "stage": trial.stage, "round": trial.round}
        row.update(
            {
                name: float(f"{value:.4g}") if isinstance(value, float) else str(value)
                for name, value in trial.hparams.items()
            }
        )
        row.update({name: trial.result.get(name) for name in columns})
        row["seconds"] = round(trial.seconds, 2)
        rows.append(row)
    return rows


def write_tensorboard(workdir: Any, trials: Sequence[Trial], *, prefix: str = "") -> None:
    """Every trial as a TensorBoard HParams trial under ``workdir/tensorboard/<prefix><stage>_<index>``.

    The sampled hyperparameters (and the stage) are the trial's HParams; its
    numeric results (validation accuracy and loss, steps run) its metrics, so
    TensorBoard's HParams table view compares the trials.
    """
    for t in trials:
        metrics = {
            f"trial/{k}": v for k, v in t.result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        training.write_tensorboard(
            pathlib.Path(workdir) / "tensorboard" / f"{prefix}{t.stage}_{t.index:03d}",
            {},
            hparams={
                **{k: v if isinstance(v, (int, float, str)) else str(v) for k, v in t.hparams.items()},
                "round": t.round,
                "stage": t.stage,
                "status": str(t.result.get("status")),
            },
            metrics=metrics,
        )
