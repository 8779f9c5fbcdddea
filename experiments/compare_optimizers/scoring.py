"""AlgoPerf's scoring, small: time-to-target, the two tuning rulesets, profiles and the benchmark score.

The rules (MLCommons AlgoPerf, ``DOCUMENTATION.md`` of ``mlcommons/algorithmic-efficiency``;
Dahl et al. 2023, §4), as this module applies them to tables of trials:

* **time to target** of one run: the first evaluation at which the validation metric
  reaches the workload's target (``>=`` for accuracy, ``<=`` for a loss), in steps or in
  seconds; ``inf`` when the run never reaches it within its budget (:func:`time_to_target`).
* **external tuning**: each optimizer gets ``N`` trials (hyperparameters drawn from its
  search space) in each of ``S`` studies; a study's time is that of its fastest trial
  that reaches the target; the optimizer's time on the workload is the **median over
  studies** (:func:`external_tuning_time`; with ``S = 2`` the median is the mean of the
  two, so one failed study makes it ``inf``).
* **self-tuning**: no tuning, the optimizer's defaults, ``S`` runs (seeds) with a longer
  budget (1.5x here; the first AlgoPerf rules tripled it); the median over the runs
  (:func:`self_tuning_time`).
* **performance profile** over workloads ``w`` for optimizers ``s``: ratios
  :math:`r_{s,w} = t_{s,w} / \\min_{s'} t_{s',w}` and
  :math:`\\rho_s(\\tau) = \\frac{1}{n} |\\{w : r_{s,w} \\le \\tau\\}|` for
  :math:`\\tau \\in [1, 4]`; **benchmark score**
  :math:`B_s = \\frac{1}{r_{max} - 1} \\int_1^{r_{max}} \\rho_s(\\tau) d\\tau \\in [0, 1]` with
  :math:`r_{max} = 4` (:func:`benchmark`, built on ``experiments._common.performance_profile``,
  which integrates the step function exactly: :math:`B_s = \\frac{1}{n} \\sum_w
  (4 - r_{s,w})^+ / 3`; AlgoPerf's code uses the trapezoid rule on a grid).

Not reproduced: held-out workload variants, the test-set targets, and compilation time
inside the time to target (AlgoPerf counts it; here seconds are steady-state seconds per
step times steps, see ``algoperf.py``).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from experiments import _common as common

TAU_MAX = 4.0
"""AlgoPerf's upper integration limit :math:`r_{max}`."""


def reached(value: float, target: float, mode: str) -> bool:
    """Whether ``value`` meets ``target`` (``mode='max'``: ``>=``; ``'min'``: ``<=``); NaN never does."""
    if value is None or not math.isfinite(value):
        return False
    return value >= target if mode == "max" else value <= target


def time_to_target(times: Sequence[float], values: Sequence[float], *, target: float, mode: str) -> float:
    """``times[i]`` of the first evaluation ``i`` whose ``values[i]`` meets ``target`` (``inf`` if none).

    Args:
      times: cost at each evaluation (steps or seconds), increasing.
      values: the validation metric at each evaluation.
      target: the workload's target.
      mode: ``'max'`` (accuracy) or ``'min'`` (loss).

    Raises:
      ValueError: when the sequences differ in length or ``mode`` is unknown.
    """
    if len(times) != len(values):
        raise ValueError(f"values: expected one per evaluation ({len(times)}), got {len(values)}")
    if mode not in ("max", "min"):
        raise ValueError(f"mode: expected 'max' or 'min', got {mode!r}")
    for t, v in zip(times, values):
        if reached(float(v), target, mode):
            return float(t)
    return math.inf


def study_times(trial_times: np.ndarray) -> np.ndarray:
    """``(S,)`` time of each study: its fastest trial (``inf`` when no trial reached the target).

    Args:
      trial_times: ``(S, N)`` time to target of trial ``n`` of study ``s`` (``inf``: not reached).
    """
    trial_times = np.asarray(trial_times, np.float64)
    if trial_times.ndim != 2 or 0 in trial_times.shape:
        raise ValueError(f"trial_times: expected a non-empty (studies, trials) table, got shape {trial_times.shape}")
    return np.min(np.where(np.isnan(trial_times), np.inf, trial_times), axis=1)


def external_tuning_time(trial_times: np.ndarray) -> float:
    """The median over studies of each study's fastest trial (AlgoPerf's external-tuning time)."""
    return float(np.median(study_times(trial_times)))


def self_tuning_time(run_times: Sequence[float]) -> float:
    """The median over the ``S`` default-hyperparameter runs (AlgoPerf's self-tuning time)."""
    runs = np.asarray(run_times, np.float64)
    if runs.ndim != 1 or runs.size == 0:
        raise ValueError(f"run_times: expected a non-empty (S,) sequence, got shape {runs.shape}")
    return float(np.median(np.where(np.isnan(runs), np.inf, runs)))


def benchmark(times: Mapping[str, Sequence[float]], *, tau_max: float = TAU_MAX) -> common.Profile:
    """Performance profiles and benchmark scores of ``optimizer -> time per workload``.

    Args:
      times: for each optimizer, its time on every workload in one order (``inf``: not reached).
      tau_max: :math:`r_{max}`.

    Returns:
      A :class:`experiments._common.Profile` (``scores`` = AlgoPerf's benchmark score).
    """
    return common.performance_profile({name: list(values) for name, values in times.items()}, tau_max=tau_max)


def ranking_rows(profiles: Mapping[str, common.Profile]) -> list[dict]:
    """One row per optimizer with a score column per profile (``'external, steps'`` ...), best first.

    Rows are sorted by the first profile's score (ties: the next ones).
    """
    names = list(profiles)
    solvers = profiles[names[0]].solvers
    rows = []
    for i, solver in enumerate(solvers):
        row: dict = {"optimizer": solver}
        for name in names:
            profile = profiles[name]
            row[f"score ({name})"] = round(float(profile.scores[i]), 3)
            row[f"reached ({name})"] = f"{int(np.isfinite(profile.ratios[i]).sum())}/{profile.ratios.shape[1]}"
        rows.append(row)
    rows.sort(key=lambda r: tuple(-r[f"score ({name})"] for name in names))
    return rows


__all__ = [
    "TAU_MAX",
    "benchmark",
    "external_tuning_time",
    "ranking_rows",
    "reached",
    "self_tuning_time",
    "study_times",
    "time_to_target",
]
