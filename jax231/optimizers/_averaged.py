"""Parameter averaging as a wrapper of any rule: the average is the point to evaluate.

References:
  Polyak and Juditsky, "Acceleration of stochastic approximation by
  averaging", SIAM J. Control Optim. 1992.
  CS231n notes, "Model Ensembles" (running average of the parameters):
  https://cs231n.github.io/neural-networks-3/#ensemble
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jax231.optimizers._base import GradientTransformation
from jax231.optimizers._transforms import ParamsAverage, ParamsAverageState
from jax231.types import Array, OptState, Params, Updates


class AveragedState(NamedTuple):
    """State of :func:`averaged`.

    Attributes:
      step: int32 scalar, number of updates made so far.
      inner_state: the wrapped rule's state (its hyperparameters stay settable).
      average: the running average of the parameters after each update (from
        update ``start_step`` on; before that it tracks the iterate itself).
    """

    step: Array
    inner_state: OptState
    average: ParamsAverageState


def averaged(inner: GradientTransformation, average: ParamsAverage, *, start_step: int = 0) -> GradientTransformation:
    """Runs ``inner`` unchanged and keeps a running average of the iterates in the state.

    .. math::
        \\theta_{t+1} = \\theta_t + \\Delta_{\\text{inner}}, \\qquad
        \\bar\\theta \\leftarrow \\mathrm{average}(\\bar\\theta, \\theta_{t+1})
        \\quad (t + 1 > s), \\qquad \\bar\\theta = \\theta_{t+1} \\quad (t + 1 \\le s)

    with ``s = start_step`` (Polyak's tail average starts after a burn-in) and
    ``average`` :func:`jax231.optimizers.polyak_average` (the arithmetic mean)
    or :func:`jax231.optimizers.ema`. The updates are those of ``inner``; the
    averaged parameters are ``eval_params(state, params)``.

    Args:
      inner: the rule that trains.
      average: how to average (``polyak_average()`` or ``ema(decay)``).
      start_step: number of updates before the averaging starts (a Python int >= 0).

    Returns:
      A :class:`GradientTransformation` with :class:`AveragedState` and
      ``eval_params``; ``update`` needs ``params`` and passes extras to ``inner``.

    Raises:
      ValueError: if ``start_step`` is not an int >= 0, or ``update`` gets ``params=None``.
    """
    if isinstance(start_step, bool) or not isinstance(start_step, int) or start_step < 0:
        raise ValueError(f"start_step: expected an int >= 0, got {start_step!r}")

    def init(params: Params) -> AveragedState:
        return AveragedState(jnp.zeros((), jnp.int32), inner.init(params), average.init(params))

    def update(
        grads: Updates, state: AveragedState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, AveragedState]:
        if params is None:
            raise ValueError("params: averaged needs the parameters to average, got None")
        updates, inner_state = inner.update(grads, state.inner_state, params, **extra)
        new_params = jax.tree_util.tree_map(lambda p, u: (p + u).astype(p.dtype), params, updates)
        t = state.step + 1
        folded, restarted = average.update(new_params, state.average), average.init(new_params)
        avg = jax.tree_util.tree_map(lambda a, b: jnp.where(t > start_step, a, b), folded, restarted)
        return updates, AveragedState(t, inner_state, avg)

    def eval_params(state: AveragedState, params: Params) -> Params:
        del params
        return state.average.average

    return GradientTransformation(
        init, update, needs_objective=getattr(inner, "needs_objective", False), eval_params=eval_params
    )
