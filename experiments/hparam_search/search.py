"""Coarse-to-fine random search in log space, as the CS231n notes recommend.

The notes ("Neural networks 3: hyperparameter optimization"): search the learning
rate and the regularization strength *randomly* (not on a grid) and on a *log* scale,
first coarsely over several orders of magnitude with short runs, then finely around
the best region. Trials whose loss explodes are stopped early by the caller (``fit``'s
explosion guard) and reported with ``status='diverged'``; they never steer the fine
stage.

The search itself is plain NumPy and knows nothing about training: ``objective``
maps a dict of hyperparameters and the stage name (``'coarse'`` or ``'fine'``, so
coarse trials can be shorter) to a dict of results with at least ``'val_accuracy'``
and ``'status'``.

References:
  Bergstra & Bengio, "Random search for hyper-parameter optimization", JMLR 2012.
  CS231n notes, https://cs231n.github.io/neural-networks-3/#hyper
"""

from __future__ import annotations

import math
import pathlib
import time
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np

from experiments._common import UsageError
from jax231 import training

LogRanges = Mapping[str, tuple[float, float]]
"""``name -> (low, high)``: a positive interval searched uniformly in log10 space."""


class Trial(NamedTuple):
    """One evaluated point of the search.

    Attributes:
      index: position in the order of evaluation (0-based).
      stage: ``'coarse'`` or ``'fine'``.
      hparams: the sampled hyperparameters.
      result: what ``objective`` returned (``'val_accuracy'``, ``'status'``, ...).
      seconds: wall time of the objective call.
    """

    index: int
    stage: str
    hparams: dict[str, float]
    result: dict[str, Any]
    seconds: float


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
            raise UsageError(f"--config.{field}.{name}: expected 0 < low <= high (log-space search); "
                             f"got ({low}, {high})")
        checked[name] = (low, high)
    return checked


def sample_log_uniform(rng: np.random.Generator, ranges: LogRanges, num: int) -> list[dict[str, float]]:
    """``num`` points, each coordinate ``10 ** Uniform(log10 low, log10 high)``."""
    points = []
    for _ in range(num):
        points.append({name: float(10 ** rng.uniform(math.log10(lo), math.log10(hi)))
                       for name, (lo, hi) in ranges.items()})
    return points


def _score(trial: Trial) -> float:
    """Sort key: validation accuracy; diverged or non-finite trials rank last."""
    value = trial.result.get("val_accuracy", math.nan)
    if trial.result.get("status") == "diverged" or value is None or not math.isfinite(value):
        return -math.inf
    return float(value)


def rank(trials: Sequence[Trial]) -> list[Trial]:
    """Trials sorted by validation accuracy, best first (diverged last, then by index)."""
    return sorted(trials, key=lambda t: (-_score(t), t.index))


def refine_ranges(trials: Sequence[Trial], ranges: LogRanges, *, top_k: int, shrink: float
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
        fine[name] = (10 ** new_lo, 10 ** new_hi)
    return fine


def coarse_to_fine(objective: Callable[[dict[str, float], str], dict[str, Any]] | None, ranges: LogRanges, *,
                   num_coarse: int, num_fine: int, seed: int, top_k: int = 3, shrink: float = 0.25,
                   log: Callable[[str], None] | None = None,
                   batch_objective: Callable[[list[dict[str, float]], str], list[dict[str, Any]]] | None = None,
                   ) -> tuple[list[Trial], dict[str, tuple[float, float]]]:
    """Runs ``num_coarse`` random trials over ``ranges`` then ``num_fine`` over the refined ranges.

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

    Returns:
      ``(trials in evaluation order, fine ranges)``.
    """
    ranges = check_ranges(ranges)
    if num_coarse < 1 or num_fine < 0:
        raise UsageError(f"--config.num_coarse/num_fine: expected >= 1 and >= 0; got {num_coarse}, {num_fine}")
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

    def evaluate(stage: str, points: list[dict[str, float]]) -> None:
        for hparams, result, seconds in timed(stage, points):
            trial = Trial(len(trials), stage, hparams, result, seconds)
            trials.append(trial)
            if log is not None:
                shown = ", ".join(f"{k}={v:.3g}" for k, v in hparams.items())
                log(f"[{stage} {trial.index:3d}] {shown}: val_accuracy={result.get('val_accuracy', math.nan):.4f} "
                    f"status={result.get('status')} ({trial.seconds:.1f} s)")

    evaluate("coarse", sample_log_uniform(rng, ranges, num_coarse))
    fine_ranges = refine_ranges(trials, ranges, top_k=top_k, shrink=shrink)
    evaluate("fine", sample_log_uniform(rng, fine_ranges, num_fine))
    return trials, fine_ranges


def trial_rows(trials: Sequence[Trial], columns: Sequence[str] = ("val_accuracy", "val_loss", "train_accuracy",
                                                                 "status", "best_step")) -> list[dict[str, Any]]:
    """Flat rows for a table, sorted by validation accuracy (best first)."""
    rows = []
    for trial in rank(trials):
        row: dict[str, Any] = {"rank": len(rows) + 1, "trial": trial.index, "stage": trial.stage}
        row.update({name: float(f"{value:.4g}") for name, value in trial.hparams.items()})
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
        metrics = {f"trial/{k}": v for k, v in t.result.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        training.write_tensorboard(pathlib.Path(workdir) / "tensorboard" / f"{prefix}{t.stage}_{t.index:03d}", {},
                                   hparams={**t.hparams, "stage": t.stage, "status": str(t.result.get("status"))},
                                   metrics=metrics)
