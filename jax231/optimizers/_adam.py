"""Adam and AdamW (Adam with decoupled weight decay).

References:
  CS231n notes, "Adam": https://cs231n.github.io/neural-networks-3/#ada
  Kingma and Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
  Loshchilov and Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, TypeVar

import jax
import jax.numpy as jnp

from jax231.optimizers import _tree_math as tm
from jax231.optimizers._base import (
    GradientTransformation,
    check_non_negative,
    check_positive,
    check_tree_match,
    check_unit_interval,
    current_hyperparams,
    init_hyperparams,
)
from jax231.types import Array, ArrayLike, Params, ScalarOrSchedule, Updates


class AdamState(NamedTuple):
    """State of :func:`adam` and :func:`adamw`.

    Attributes:
      step: int32 scalar ``t``, number of updates made so far.
      first_moment: ``m``, moving average of gradients (parameter dtypes).
      second_moment: ``v``, moving average of squared gradients (parameter dtypes).
      hyperparams: ``{'learning_rate', 'beta1', 'beta2', 'eps'}`` scalars, plus
        ``'weight_decay'`` for :func:`adamw`.
    """

    step: Array
    first_moment: Updates
    second_moment: Updates
    hyperparams: dict[str, Array]


def adam_direction(
    grads: Updates, m: Updates, v: Updates, t: Array, b1: ArrayLike, b2: ArrayLike, eps: ArrayLike
) -> Updates:
    """Adam's direction from the already-updated moments at step ``t`` (>= 1).

    .. math:: \\hat m = m / (1 - \\beta_1^t), \\quad \\hat v = v / (1 - \\beta_2^t), \\quad
              d = \\hat m / (\\sqrt{\\hat v} + \\epsilon)
    """
    del grads
    m_hat = tm.bias_correction(m, b1, t)
    v_hat = tm.bias_correction(v, b2, t)
    return jax.tree_util.tree_map(lambda mh, vh: (mh / (jnp.sqrt(vh) + eps)).astype(mh.dtype), m_hat, v_hat)


Direction = Callable[[Updates, Updates, Updates, Array, ArrayLike, ArrayLike, ArrayLike], Updates]
MomentState = TypeVar("MomentState", bound=tuple)


def moment_rule(
    spec: dict[str, Any],
    *,
    decoupled_decay: bool,
    name: str,
    state_type: Callable[..., MomentState],
    direction: Direction,
) -> GradientTransformation:
    """The Adam family's rule (Adam, AdamW, NAdam, NAdamW): two moments and a direction.

    Per update: 1. ``t <- t + 1``; 2. ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``;
    3. ``d = direction(g, m, v, t, b1, b2, eps)``; 4. ``Delta = -alpha (d [+ lambda theta])``.
    ``state_type`` is the rule's own state NamedTuple ``(step, first_moment,
    second_moment, hyperparams)``; ``name`` is the decoupled rule's name (messages).
    """
    check_non_negative("learning_rate", spec["learning_rate"])
    check_unit_interval("beta1", spec["beta1"])
    check_unit_interval("beta2", spec["beta2"])
    check_positive("eps", spec["eps"])
    if decoupled_decay:
        check_non_negative("weight_decay", spec["weight_decay"])

    def init(params: Params) -> MomentState:
        return state_type(
            step=jnp.zeros((), jnp.int32),
            first_moment=tm.zeros_like(params),
            second_moment=tm.zeros_like(params),
            hyperparams=init_hyperparams(spec),
        )

    def update(grads: Updates, state: Any, params: Params | None = None, **extra: Any) -> tuple[Updates, MomentState]:
        del extra
        check_tree_match(grads, state.first_moment, reference_name="state.first_moment")
        if decoupled_decay and params is None:
            raise ValueError(f"params: {name} needs the parameters for its weight decay, got None")
        hp = current_hyperparams(spec, state.hyperparams, state.step)
        alpha, b1, b2, eps = hp["learning_rate"], hp["beta1"], hp["beta2"], hp["eps"]
        # 1. t <- t + 1
        t = state.step + 1
        # 2. m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
        m = tm.moment(grads, state.first_moment, b1, order=1)
        v = tm.moment(grads, state.second_moment, b2, order=2)
        # 3. the rule's direction (Adam: m_hat / (sqrt(v_hat) + eps))
        d = direction(grads, m, v, t, b1, b2, eps)
        # 4. Delta = -alpha * d   [ - alpha * lambda * theta ]
        if decoupled_decay:
            d = tm.add_scale(d, hp["weight_decay"], tm.cast_like(params, d))
        updates = tm.scale(-alpha, d)
        return updates, state_type(step=t, first_moment=m, second_moment=v, hyperparams=hp)

    return GradientTransformation(init, update)


def _adam_rule(spec: dict[str, Any], decoupled_decay: bool) -> GradientTransformation:
    return moment_rule(
        spec, decoupled_decay=decoupled_decay, name="adamw", state_type=AdamState, direction=adam_direction
    )


def adam(
    learning_rate: ScalarOrSchedule = 1e-3,
    *,
    beta1: ScalarOrSchedule = 0.9,
    beta2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
) -> GradientTransformation:
    """Adam: momentum on the gradient, RMSProp on its square, both bias-corrected.

    .. math::
        t &\\leftarrow t + 1 \\\\
        m &\\leftarrow \\beta_1 m + (1 - \\beta_1) g, \\quad
        v \\leftarrow \\beta_2 v + (1 - \\beta_2) g^2 \\\\
        \\hat m &= m / (1 - \\beta_1^t), \\quad \\hat v = v / (1 - \\beta_2^t) \\\\
        \\Delta &= -\\alpha\\, \\hat m / (\\sqrt{\\hat v} + \\epsilon)

    with ``alpha = learning_rate``, ``beta1``, ``beta2`` and ``epsilon = eps``.
    Equals ``optax.adam(alpha, b1=beta1, b2=beta2, eps=epsilon)``.

    Args:
      learning_rate: ``alpha``: a float, an array, or a schedule ``step -> lr``.
      beta1: decay of the first moment, in [0, 1).
      beta2: decay of the second moment, in [0, 1).
      eps: ``epsilon`` > 0, outside the square root.

    Returns:
      A :class:`GradientTransformation` with :class:`AdamState`; ``update``
      ignores unknown keyword extras.

    Raises:
      ValueError: if ``learning_rate`` < 0, a beta is outside [0, 1) or ``eps`` <= 0.
    """
    spec = {"learning_rate": learning_rate, "beta1": beta1, "beta2": beta2, "eps": eps}
    return _adam_rule(spec, decoupled_decay=False)


def adamw(
    learning_rate: ScalarOrSchedule = 1e-3,
    *,
    beta1: ScalarOrSchedule = 0.9,
    beta2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
) -> GradientTransformation:
    """AdamW: Adam plus weight decay applied to the parameters, not the gradient.

    .. math::
        \\Delta = -\\alpha \\left(\\hat m / (\\sqrt{\\hat v} + \\epsilon)
                  + \\lambda \\theta\\right)

    with ``lambda = weight_decay``, ``theta`` the parameters and the rest as in
    :func:`adam`. As in optax (and PyTorch) the decay is scaled by the learning
    rate; equals ``optax.adamw(alpha, b1=beta1, b2=beta2, eps=epsilon,
    weight_decay=lambda)``. ``update`` needs ``params``.

    Args:
      learning_rate: ``alpha``: a float, an array, or a schedule ``step -> lr``.
      beta1: decay of the first moment, in [0, 1).
      beta2: decay of the second moment, in [0, 1).
      eps: ``epsilon`` > 0, outside the square root.
      weight_decay: ``lambda`` >= 0.

    Returns:
      A :class:`GradientTransformation` with :class:`AdamState`; ``update``
      ignores unknown keyword extras.

    Raises:
      ValueError: on a bad hyperparameter (as :func:`adam`, and ``weight_decay`` < 0),
        or when ``update`` gets ``params=None``.
    """
    spec = {
        "learning_rate": learning_rate,
        "beta1": beta1,
        "beta2": beta2,
        "eps": eps,
        "weight_decay": weight_decay,
    }
    return _adam_rule(spec, decoupled_decay=True)
