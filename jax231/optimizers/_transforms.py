"""Gradient transforms to chain before a rule, and parameter averaging.

References:
  CS231n notes, "Parameter updates" and "Model ensembles" (running average of
  parameters): https://cs231n.github.io/neural-networks-3/
  Polyak and Juditsky, "Acceleration of stochastic approximation by
  averaging", SIAM J. Control Optim. 30(4), 1992.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jax231.optimizers import _tree_math as tm
from jax231.optimizers._base import (
    GradientTransformation,
    apply_updates,
    check_non_negative,
    check_positive,
    check_tree_match,
    check_unit_interval,
    current_hyperparams,
    init_hyperparams,
)
from jax231.types import Array, Params, ScalarOrSchedule, Updates


class ClipByGlobalNormState(NamedTuple):
    """State of :func:`clip_by_global_norm`.

    Attributes:
      step: int32, updates made.
      hyperparams: ``{'max_norm': scalar}``.
    """

    step: Array
    hyperparams: dict[str, Array]


def clip_by_global_norm(max_norm: ScalarOrSchedule) -> GradientTransformation:
    """Rescales the whole gradient tree so that its global norm is at most ``max_norm``.

    .. math:: g \\leftarrow g \\cdot \\min(1, c / \\|g\\|_2)

    with ``c = max_norm`` and the norm over all leaves. Equals
    ``optax.clip_by_global_norm(c)``.

    Raises:
      ValueError: if ``max_norm`` <= 0.
    """
    check_positive("max_norm", max_norm)
    spec = {"max_norm": max_norm}

    def init(params: Params) -> ClipByGlobalNormState:
        del params
        return ClipByGlobalNormState(jnp.zeros((), jnp.int32), init_hyperparams(spec))

    def update(
        grads: Updates, state: ClipByGlobalNormState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ClipByGlobalNormState]:
        del params, extra
        hp = current_hyperparams(spec, state.hyperparams, state.step)
        g_norm = tm.norm(grads)
        factor = jnp.where(g_norm > hp["max_norm"], hp["max_norm"] / g_norm, 1.0)
        return tm.scale(factor, grads), ClipByGlobalNormState(state.step + 1, hp)

    return GradientTransformation(init, update)


class AddWeightDecayState(NamedTuple):
    """State of :func:`add_weight_decay`.

    Attributes:
      step: int32, updates made.
      hyperparams: ``{'weight_decay': scalar}``.
    """

    step: Array
    hyperparams: dict[str, Array]


def add_weight_decay(weight_decay: ScalarOrSchedule) -> GradientTransformation:
    """L2 regularisation as a transform: adds the gradient of ``lambda/2 ||theta||^2``.

    .. math:: g \\leftarrow g + \\lambda \\theta

    with ``lambda = weight_decay``. Chained before a rule (``chain(add_weight_decay(l),
    sgd(lr))``) it is classic L2 weight decay; equals
    ``optax.add_decayed_weights(l)``. ``update`` needs ``params``.

    Raises:
      ValueError: if ``weight_decay`` < 0, or ``update`` gets ``params=None``.
    """
    check_non_negative("weight_decay", weight_decay)
    spec = {"weight_decay": weight_decay}

    def init(params: Params) -> AddWeightDecayState:
        del params
        return AddWeightDecayState(jnp.zeros((), jnp.int32), init_hyperparams(spec))

    def update(
        grads: Updates, state: AddWeightDecayState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, AddWeightDecayState]:
        del extra
        if params is None:
            raise ValueError("params: add_weight_decay needs the parameters, got None")
        check_tree_match(grads, params, reference_name="params")
        hp = current_hyperparams(spec, state.hyperparams, state.step)
        return tm.add_scale(grads, hp["weight_decay"], params), AddWeightDecayState(state.step + 1, hp)

    return GradientTransformation(init, update)


# ------------------------------------------------------------- parameter averaging


class ParamsAverage(NamedTuple):
    """A running average of parameters: two pure functions.

    Attributes:
      init: ``init(params) -> ParamsAverageState`` (the average starts at ``params``).
      update: ``update(params, state) -> state``, folds in the new parameters.
    """

    init: Callable[[Params], "ParamsAverageState"]
    update: Callable[[Params, "ParamsAverageState"], "ParamsAverageState"]


class ParamsAverageState(NamedTuple):
    """State of :func:`ema` and :func:`polyak_average`.

    Attributes:
      step: int32, number of parameter sets averaged (1 after ``init``).
      average: the averaged parameters (parameter dtypes); evaluate with these.
      hyperparams: ``{'decay': scalar}`` for :func:`ema`, ``{}`` for Polyak.
    """

    step: Array
    average: Params
    hyperparams: dict[str, Array]


def ema(decay: ScalarOrSchedule = 0.999) -> ParamsAverage:
    """Exponential moving average of the parameters.

    .. math:: \\bar\\theta \\leftarrow \\beta \\bar\\theta + (1 - \\beta)\\, \\theta

    with ``beta = decay``, starting from ``bar theta = theta_0``.

    Raises:
      ValueError: if ``decay`` is outside [0, 1).
    """
    check_unit_interval("decay", decay)
    spec = {"decay": decay}

    def init(params: Params) -> ParamsAverageState:
        return ParamsAverageState(jnp.ones((), jnp.int32), params, init_hyperparams(spec))

    def update(params: Params, state: ParamsAverageState) -> ParamsAverageState:
        check_tree_match(params, state.average, name="params", reference_name="state.average")
        hp = current_hyperparams(spec, state.hyperparams, state.step - 1)
        average = tm.moment(params, state.average, hp["decay"], order=1)
        return ParamsAverageState(state.step + 1, average, hp)

    return ParamsAverage(init, update)


def polyak_average() -> ParamsAverage:
    """Polyak(-Ruppert) averaging: the arithmetic mean of all parameters seen.

    .. math:: \\bar\\theta_n = \\bar\\theta_{n-1} + (\\theta_n - \\bar\\theta_{n-1}) / n

    with ``n`` the number of parameter sets averaged (``init`` counts as the first).
    """

    def init(params: Params) -> ParamsAverageState:
        return ParamsAverageState(jnp.ones((), jnp.int32), params, {})

    def update(params: Params, state: ParamsAverageState) -> ParamsAverageState:
        check_tree_match(params, state.average, name="params", reference_name="state.average")
        n = state.step + 1
        average = jax.tree_util.tree_map(
            lambda a, p: (a + (p - a) / n.astype(jnp.result_type(float))).astype(a.dtype),
            state.average,
            params,
        )
        return ParamsAverageState(n, average, {})

    return ParamsAverage(init, update)


def average_params(average: ParamsAverage | None = None) -> GradientTransformation:
    """Parameter averaging as a transformation: updates pass through, the average lives in the state.

    Chained LAST (``chain(momentum(0.1), average_params(ema(0.999)))``), its
    ``update(u, s, w)`` folds the new iterate ``w + u`` into the average held in
    its state (a :class:`ParamsAverageState`) and returns ``u`` unchanged; its
    ``eval_params(s, w)`` returns the average. So ``fit``, ``run_sweep`` and
    the checkpoints carry the average with the optimizer state, and ``fit``
    evaluates the averaged parameters (the notes' "running average of the
    parameters" used at test time). The EMA's ``decay`` is a hyperparameter in
    the state (``set_hyperparams`` / a sweep can change it).

    Args:
      average: :func:`ema` (default ``ema(0.999)``) or :func:`polyak_average`.

    Returns:
      A :class:`GradientTransformation` with ``eval_params``; ``update`` needs ``params``.

    Raises:
      ValueError: if ``update`` gets ``params=None``.
    """
    average = ema(0.999) if average is None else average

    def init(params: Params) -> ParamsAverageState:
        return average.init(params)

    def update(
        updates: Updates, state: ParamsAverageState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ParamsAverageState]:
        del extra
        if params is None:
            raise ValueError("params: average_params needs the parameters, got None")
        return updates, average.update(apply_updates(params, updates), state)

    def eval_params(state: ParamsAverageState, params: Params) -> Params:
        del params
        return state.average

    return GradientTransformation(init, update, eval_params=eval_params)  # type: ignore[arg-type]  # first param: `updates`, not `grads`
