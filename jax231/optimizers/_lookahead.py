"""Lookahead: k fast steps forward, one step back towards the slow weights (Zhang et al. 2019).

References:
  Zhang, Lucas, Hinton, Ba, "Lookahead Optimizer: k steps forward, 1 step
  back", NeurIPS 2019.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jax231.optimizers import _tree_math as tm
from jax231.optimizers._base import (
    GradientTransformation,
    check_tree_match,
    check_unit_interval,
    current_hyperparams,
    init_hyperparams,
)
from jax231.types import Array, OptState, Params, ScalarOrSchedule, Updates


class LookaheadState(NamedTuple):
    """State of :func:`lookahead`.

    Attributes:
      step: int32 scalar, number of (fast) updates made so far.
      slow: the slow weights ``phi`` (parameter dtypes), last synchronised point.
      inner_state: the state of the wrapped (fast) rule; its hyperparameters
        stay reachable by :func:`set_hyperparams` (e.g. ``learning_rate``).
      hyperparams: ``{'slow_step_size': scalar}``.
    """

    step: Array
    slow: Params
    inner_state: OptState
    hyperparams: dict[str, Array]


def lookahead(
    inner: GradientTransformation,
    *,
    sync_period: int = 5,
    slow_step_size: ScalarOrSchedule = 0.5,
) -> GradientTransformation:
    """Wraps any rule: every ``k`` of its steps, pull the slow weights towards the fast ones.

    .. math::
        \\theta &\\leftarrow \\theta + \\Delta_{\\text{inner}} \\quad \\text{(every step)} \\\\
        \\text{every } k \\text{ steps:}\\quad
        \\phi &\\leftarrow \\phi + \\alpha (\\theta - \\phi), \\qquad \\theta \\leftarrow \\phi

    with ``k = sync_period``, ``alpha = slow_step_size``, ``theta`` the fast
    weights (the parameters the training loop holds) and ``phi`` the slow
    weights (held in the state). The returned update does both in one step on
    a synchronisation step, so ``apply_updates`` is the only change of the
    parameters. Equals ``optax.lookahead(inner, sync_period, slow_step_size)``
    (whose parameters are ``LookaheadParams(fast, slow)``: here ``fast`` are
    the parameters and ``slow`` lives in the state).

    The point to evaluate (``eval_params``) is the slow weights ``phi``, as
    Algorithm 1 of the paper returns them: they are the average-like point of
    the method, and after a synchronisation step they equal the parameters.
    The wrapped rule's own ``eval_params`` (e.g. schedule-free) is not applied
    on top: wrap such a rule only with that in mind.

    Args:
      inner: the fast rule, any :class:`GradientTransformation`.
      sync_period: ``k`` >= 1, a Python int (it fixes the program, like a shape).
      slow_step_size: ``alpha`` in [0, 1) (or a schedule); ``alpha`` 1 would
        make the wrapper a no-op.

    Returns:
      A :class:`GradientTransformation` with :class:`LookaheadState`;
      ``update`` needs ``params``, passes keyword extras on to ``inner`` and
      has ``inner``'s ``needs_objective``.

    Raises:
      ValueError: if ``sync_period`` is not an int >= 1 or ``slow_step_size``
        is outside [0, 1), or when ``update`` gets ``params=None``.
    """
    if isinstance(sync_period, bool) or not isinstance(sync_period, int) or sync_period < 1:
        raise ValueError(f"sync_period: expected an int >= 1, got {sync_period!r}")
    check_unit_interval("slow_step_size", slow_step_size)
    spec = {"slow_step_size": slow_step_size}

    def init(params: Params) -> LookaheadState:
        return LookaheadState(
            step=jnp.zeros((), jnp.int32),
            slow=jax.tree_util.tree_map(jnp.array, params),
            inner_state=inner.init(params),
            hyperparams=init_hyperparams(spec),
        )

    def update(
        grads: Updates, state: LookaheadState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, LookaheadState]:
        if params is None:
            raise ValueError("params: lookahead needs the (fast) parameters, got None")
        check_tree_match(grads, state.slow, reference_name="state.slow")
        hp = current_hyperparams(spec, state.hyperparams, state.step)
        alpha = hp["slow_step_size"]
        # 1. the fast step: theta' = theta + Delta_inner
        inner_updates, inner_state = inner.update(grads, state.inner_state, params, **extra)
        fast = jax.tree_util.tree_map(lambda p, u: (p + u).astype(p.dtype), params, inner_updates)
        # 2. on every k-th step: phi <- phi + alpha (theta' - phi) and theta <- phi
        sync = (state.step + 1) % sync_period == 0
        pulled = jax.tree_util.tree_map(lambda s, f: (s + alpha * (f - s)).astype(s.dtype), state.slow, fast)
        slow = jax.tree_util.tree_map(lambda n, s: jnp.where(sync, n, s), pulled, state.slow)
        new_params = jax.tree_util.tree_map(lambda n, f: jnp.where(sync, n, f), pulled, fast)
        updates = tm.sub(new_params, params)
        return updates, LookaheadState(state.step + 1, slow, inner_state, hp)

    def eval_params(state: LookaheadState, params: Params) -> Params:
        del params
        return state.slow

    return GradientTransformation(
        init, update, needs_objective=getattr(inner, "needs_objective", False), eval_params=eval_params
    )
