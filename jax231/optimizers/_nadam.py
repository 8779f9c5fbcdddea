"""NAdam and NAdamW: Adam with Nesterov momentum (Dozat 2016).

References:
  Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop.
  Loshchilov and Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
  CS231n notes, "Adam" and "Nesterov momentum": https://cs231n.github.io/neural-networks-3/#update
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jax231.optimizers import _tree_math as tm
from jax231.optimizers._adam import moment_rule
from jax231.optimizers._base import GradientTransformation
from jax231.types import Array, ArrayLike, ScalarOrSchedule, Updates


class NadamState(NamedTuple):
    """State of :func:`nadam` and :func:`nadamw`.

    Attributes:
      step: int32 scalar ``t``, number of updates made so far.
      first_moment: ``m``, moving average of gradients (parameter dtypes).
      second_moment: ``v``, moving average of squared gradients (parameter dtypes).
      hyperparams: ``{'learning_rate', 'beta1', 'beta2', 'eps'}`` scalars, plus
        ``'weight_decay'`` for :func:`nadamw`.
    """

    step: Array
    first_moment: Updates
    second_moment: Updates
    hyperparams: dict[str, Array]


def nadam_direction(
    grads: Updates, m: Updates, v: Updates, t: Array, b1: ArrayLike, b2: ArrayLike, eps: ArrayLike
) -> Updates:
    """NAdam's direction from the already-updated moments ``m``, ``v`` at step ``t`` (>= 1).

    .. math::
        \\hat m = \\beta_1 \\frac{m}{1 - \\beta_1^{t+1}} + (1 - \\beta_1) \\frac{g}{1 - \\beta_1^t},
        \\qquad d = \\hat m / (\\sqrt{v / (1 - \\beta_2^t)} + \\epsilon)

    (the first moment looked one step ahead, as Nesterov momentum does).
    """
    m_next = tm.bias_correction(m, b1, t + 1)
    g_now = tm.bias_correction(tm.cast_like(grads, m), b1, t)
    m_hat = jax.tree_util.tree_map(lambda a, g: (b1 * a + (1 - b1) * g).astype(a.dtype), m_next, g_now)
    v_hat = tm.bias_correction(v, b2, t)
    return jax.tree_util.tree_map(lambda mh, vh: (mh / (jnp.sqrt(vh) + eps)).astype(mh.dtype), m_hat, v_hat)


def _nadam_rule(spec: dict[str, Any], decoupled_decay: bool) -> GradientTransformation:
    """Adam's rule (:func:`jax231.optimizers._adam.moment_rule`) with NAdam's look-ahead direction."""
    return moment_rule(
        spec, decoupled_decay=decoupled_decay, name="nadamw", state_type=NadamState, direction=nadam_direction
    )


def nadam(
    learning_rate: ScalarOrSchedule = 1e-3,
    *,
    beta1: ScalarOrSchedule = 0.9,
    beta2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
) -> GradientTransformation:
    """NAdam: Adam whose first moment looks one step ahead (Nesterov momentum).

    .. math::
        m &\\leftarrow \\beta_1 m + (1 - \\beta_1) g, \\quad
        v \\leftarrow \\beta_2 v + (1 - \\beta_2) g^2 \\\\
        \\hat m &= \\beta_1 \\frac{m}{1 - \\beta_1^{t+1}} + (1 - \\beta_1)\\frac{g}{1 - \\beta_1^{t}},
        \\quad \\hat v = \\frac{v}{1 - \\beta_2^t} \\\\
        \\Delta &= -\\alpha\\, \\hat m / (\\sqrt{\\hat v} + \\epsilon)

    with ``alpha = learning_rate``. Equals ``optax.nadam(alpha, b1=beta1,
    b2=beta2, eps=epsilon)`` (which, like most implementations, omits the extra
    ``beta2`` factor of Dozat's Algorithm 2 and his momentum schedule).

    Args:
      learning_rate: ``alpha``: a float, an array, or a schedule ``step -> lr``.
      beta1: decay of the first moment, in [0, 1).
      beta2: decay of the second moment, in [0, 1).
      eps: ``epsilon`` > 0, outside the square root.

    Returns:
      A :class:`GradientTransformation` with :class:`NadamState`; ``update``
      ignores unknown keyword extras.

    Raises:
      ValueError: if ``learning_rate`` < 0, a beta is outside [0, 1) or ``eps`` <= 0.
    """
    spec = {"learning_rate": learning_rate, "beta1": beta1, "beta2": beta2, "eps": eps}
    return _nadam_rule(spec, decoupled_decay=False)


def nadamw(
    learning_rate: ScalarOrSchedule = 1e-3,
    *,
    beta1: ScalarOrSchedule = 0.9,
    beta2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
) -> GradientTransformation:
    """NAdamW: NAdam plus decoupled weight decay (AlgoPerf's baseline).

    .. math:: \\Delta = -\\alpha \\left(\\hat m / (\\sqrt{\\hat v} + \\epsilon) + \\lambda \\theta\\right)

    with ``hat m``, ``hat v`` as in :func:`nadam` and ``lambda = weight_decay``
    (scaled by the learning rate, as optax and PyTorch do). Equals
    ``optax.nadamw(alpha, b1=beta1, b2=beta2, eps=epsilon, weight_decay=lambda)``.
    ``update`` needs ``params``.

    Args:
      learning_rate: ``alpha``: a float, an array, or a schedule ``step -> lr``.
      beta1: decay of the first moment, in [0, 1).
      beta2: decay of the second moment, in [0, 1).
      eps: ``epsilon`` > 0, outside the square root.
      weight_decay: ``lambda`` >= 0.

    Returns:
      A :class:`GradientTransformation` with :class:`NadamState`; ``update``
      ignores unknown keyword extras.

    Raises:
      ValueError: on a bad hyperparameter, or when ``update`` gets ``params=None``.

    References:
      Dahl et al., "Benchmarking Neural Network Training Algorithms" (AlgoPerf), 2023.
    """
    spec = {
        "learning_rate": learning_rate,
        "beta1": beta1,
        "beta2": beta2,
        "eps": eps,
        "weight_decay": weight_decay,
    }
    return _nadam_rule(spec, decoupled_decay=True)
