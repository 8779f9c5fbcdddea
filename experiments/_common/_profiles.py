"""Performance profiles (Dolan & Moré 2002), as AlgoPerf scores training algorithms.

For solvers :math:`o` on problems :math:`p` with costs :math:`t_{o,p}` (seconds or
steps to reach a target; :math:`\\infty` when never reached), the performance ratio
is :math:`r_{o,p} = t_{o,p} / \\min_{o'} t_{o',p}` and the profile is

.. math::  \\rho_o(\\tau) = \\frac{1}{|P|}\\,\\big|\\{p : r_{o,p} \\le \\tau\\}\\big|,

the fraction of problems solver :math:`o` solves within :math:`\\tau` times the best
solver's cost. :math:`\\rho_o(1)` is how often :math:`o` is the fastest; the right
end is how often it reaches the target at all. AlgoPerf summarises a profile by its
normalised area :math:`\\frac{1}{\\tau_{max}-1}\\int_1^{\\tau_{max}} \\rho_o(\\tau)\\,d\\tau`.

References:
  Dolan & Moré, "Benchmarking optimization software with performance profiles", 2002.
  Dahl et al., "Benchmarking Neural Network Training Algorithms" (AlgoPerf), 2023, §4.5.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import numpy as np


class Profile(NamedTuple):
    """A performance profile evaluated on a grid of ``tau``.

    Attributes:
      solvers: solver names, in the order of ``rho``'s rows.
      taus: the grid of performance-ratio thresholds, shape ``(T,)``, from 1.
      rho: ``rho[i, j]`` = fraction of problems solver ``i`` solves within ``taus[j]``
        times the fastest, shape ``(len(solvers), T)``.
      ratios: the performance ratios ``r[i, p]`` (``inf`` where unsolved or where no
        solver reached the target on problem ``p``), shape ``(len(solvers), P)``.
      scores: AlgoPerf's normalised area under each profile over ``[1, taus[-1]]``.
    """

    solvers: tuple[str, ...]
    taus: np.ndarray
    rho: np.ndarray
    ratios: np.ndarray
    scores: np.ndarray


def performance_ratios(costs: np.ndarray) -> np.ndarray:
    """``costs[i, p] / min_i costs[i, p]`` with ``inf`` for unsolved entries.

    Args:
      costs: ``(solvers, problems)`` costs; ``inf`` or ``nan`` means "target not reached".

    Raises:
      ValueError: when ``costs`` is not 2-D or holds a cost <= 0.
    """
    costs = np.asarray(costs, dtype=np.float64)
    if costs.ndim != 2:
        raise ValueError(f"costs: expected shape (solvers, problems); got {costs.shape}")
    costs = np.where(np.isnan(costs), np.inf, costs)
    if np.any(costs <= 0):
        raise ValueError(f"costs: expected positive costs (a cost of 0 has no ratio); got min {costs.min()}")
    best = costs.min(axis=0, keepdims=True)
    with np.errstate(invalid="ignore"):
        ratios = costs / best  # inf / inf = nan where no solver solved the problem
    return np.where(np.isfinite(ratios), ratios, np.inf)


def performance_profile(costs: Mapping[str, Sequence[float]], *, tau_max: float = 4.0, num_taus: int = 200) -> Profile:
    """Evaluates every solver's performance profile on a log grid ``tau ∈ [1, tau_max]``.

    Args:
      costs: ``solver -> costs over the same problems`` (``inf``/``nan`` = unsolved).
      tau_max: largest ratio drawn and integrated over (AlgoPerf uses 4).
      num_taus: grid size (log-spaced, always including 1 and ``tau_max``).

    Returns:
      A :class:`Profile`.

    Raises:
      ValueError: for ``tau_max <= 1``, an empty ``costs``, or solvers with different
        numbers of problems.
    """
    if not tau_max > 1:
        raise ValueError(f"tau_max: expected a value > 1; got {tau_max}")
    if not costs:
        raise ValueError("costs: expected at least one solver; got none")
    lengths = {name: len(values) for name, values in costs.items()}
    if len(set(lengths.values())) != 1 or 0 in lengths.values():
        raise ValueError(f"costs: expected the same (non-zero) number of problems per solver; got {lengths}")
    solvers = tuple(costs)
    ratios = performance_ratios(np.stack([np.asarray(costs[s], dtype=np.float64) for s in solvers]))
    taus = np.geomspace(1.0, tau_max, num_taus)
    rho = (ratios[:, :, None] <= taus[None, None, :]).mean(axis=1)
    # AlgoPerf's score: the area under rho on [1, tau_max] (linear tau), normalised to [0, 1].
    # rho is a mean of steps 1[r_p <= tau], so the area is exact: mean_p (tau_max - r_p)^+.
    scores = np.mean(np.clip(tau_max - ratios, 0.0, None), axis=1) / (tau_max - 1.0)
    return Profile(solvers=solvers, taus=taus, rho=rho, ratios=ratios, scores=scores)


def profile_rows(profile: Profile, *, at: Sequence[float] = (1.0, 1.5, 2.0, 4.0)) -> list[dict]:
    """Table rows ``{'optimizer', 'rho(1)', ..., 'score'}`` for the report.

    ``rho`` at each threshold is computed exactly from the ratios (not read off the grid).
    """
    rows = []
    for i, solver in enumerate(profile.solvers):
        row = {"optimizer": solver}
        for tau in at:
            row[f"rho({tau:g})"] = round(float(np.mean(profile.ratios[i] <= tau)), 3)
        row["solved"] = f"{int(np.isfinite(profile.ratios[i]).sum())}/{profile.ratios.shape[1]}"
        row["score"] = round(float(profile.scores[i]), 3)
        rows.append(row)
    return rows
