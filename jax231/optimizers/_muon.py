"""Muon: momentum orthogonalised by a Newton-Schulz iteration (Jordan et al. 2024).

References:
  Jordan et al., "Muon: An optimizer for hidden layers in neural networks",
  2024, https://kellerjordan.github.io/posts/muon/ (and modded-nanogpt, airbench).
  Bernstein and Newhouse, "Old Optimizer, New Norm: An Anthology", 2024.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

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
from jax231.optimizers._nadam import nadam_direction
from jax231.types import Array, ArrayLike, Params, ScalarOrSchedule, Updates

NS_COEFFS = (3.4445, -4.7750, 2.0315)
"""``(a, b, c)`` of the quintic ``X <- a X + b (X X^T) X + c (X X^T)^2 X`` (Jordan's)."""


def newton_schulz(g: ArrayLike, *, steps: int = 5, eps: ArrayLike = 1e-8) -> Array:
    """Approximately orthogonalises a matrix: ``U S V^T -> U S' V^T`` with ``S'`` near 1.

    .. math::
        X_0 = G / (\\|G\\|_F + \\epsilon), \\qquad
        A = X X^T, \\quad X \\leftarrow a X + (b A + c A^2) X

    run ``steps`` times with ``(a, b, c) =`` :data:`NS_COEFFS` on the wide
    orientation (a tall ``G`` is transposed and back, since ``f(X^T) =
    f(X)^T``). The coefficients maximise the slope at 0, so the singular values
    land in about [0.7, 1.2] rather than exactly at 1 (Jordan: no loss in
    practice).

    Args:
      g: a 2-D array ``(m, n)``.
      steps: number of iterations (5 in Muon).
      eps: ``epsilon`` > 0 in the normalisation.

    Returns:
      An array of the shape and dtype of ``g``.

    Raises:
      ValueError: if ``g`` is not 2-D.
    """
    g = jnp.asarray(g)
    if g.ndim != 2:
        raise ValueError(f"g: expected a 2-D array, got shape {g.shape}")
    a, b, c = NS_COEFFS
    tall = g.shape[0] > g.shape[1]
    x = g.T if tall else g
    x = x / (jnp.linalg.norm(x) + eps)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x.T if tall else x).astype(g.dtype)


def _is_matrix(x: Any) -> bool:
    return jnp.ndim(x) >= 2


def _orthogonalised(m_hat: Array, steps: int, eps: ArrayLike) -> Array:
    """Newton-Schulz on ``m_hat`` as a ``(fan_in, fan_out)`` matrix, scaled by ``sqrt(max(1, out/in))``.

    A convolution kernel ``(kh, kw, c_in, c_out)`` (HWIO) is the matrix
    ``(kh kw c_in, c_out)``: the last axis is the output, the others reduce.
    """
    fan_out = m_hat.shape[-1]
    fan_in = math.prod(m_hat.shape[:-1])
    o = newton_schulz(m_hat.reshape(fan_in, fan_out), steps=steps, eps=eps)
    return (math.sqrt(max(1.0, fan_out / fan_in)) * o).reshape(m_hat.shape)


class MuonState(NamedTuple):
    """State of :func:`muon`.

    Attributes:
      step: int32 scalar ``t``, number of updates made so far.
      momentum: ``m``, moving average of gradients (parameter dtypes), every leaf.
      second_moment: ``v`` of the NAdamW part; meaningful on the non-matrix
        leaves only (zeros on matrices, which do not use it).
      hyperparams: ``{'learning_rate', 'beta', 'eps', 'weight_decay',
        'adam_beta1', 'adam_beta2', 'adam_weight_decay'}`` scalars, plus
        ``'adam_learning_rate'`` when it was given.
    """

    step: Array
    momentum: Updates
    second_moment: Updates
    hyperparams: dict[str, Array]


def muon(
    learning_rate: ScalarOrSchedule = 0.02,
    *,
    beta: ScalarOrSchedule = 0.95,
    ns_steps: int = 5,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    adam_learning_rate: ScalarOrSchedule | None = None,
    adam_beta1: ScalarOrSchedule = 0.9,
    adam_beta2: ScalarOrSchedule = 0.999,
    adam_weight_decay: ScalarOrSchedule = 0.0,
    bias_correction: bool = True,
) -> GradientTransformation:
    """Muon on matrix and convolution weights, NAdamW on every other leaf.

    On a leaf with ``ndim >= 2`` (a dense ``(in, out)`` weight, or a conv
    kernel ``(kh, kw, in, out)`` read as the matrix ``(kh kw in, out)``):

    .. math::
        m &\\leftarrow \\beta m + (1 - \\beta) g \\\\
        \\hat m &= \\beta \\frac{m}{1 - \\beta^{t+1}} + (1 - \\beta) \\frac{g}{1 - \\beta^t}
        \\quad \\text{(Nesterov)} \\\\
        \\Delta &= -\\alpha \\left(\\sqrt{\\max(1, n_{out}/n_{in})}\\;
                   \\mathrm{NS}_5(\\hat m) + \\lambda \\theta\\right)

    with ``NS_5`` :func:`newton_schulz`, ``alpha = learning_rate``, ``beta``,
    ``lambda = weight_decay``. Orthogonalising the momentum makes the step
    move every singular direction equally (steepest descent in the spectral
    norm). Biases, scales and scalars get :func:`jax231.optimizers.nadamw`'s
    update with ``adam_learning_rate`` (default: ``learning_rate``),
    ``adam_beta1``, ``adam_beta2``, ``eps`` and ``adam_weight_decay``.

    Equals ``optax.contrib.muon(alpha, beta=beta, ns_steps=ns_steps, eps=eps,
    weight_decay=lambda, adam_b1=..., adam_b2=..., adam_weight_decay=...)``
    with ``muon_weight_dimension_numbers`` giving every ``ndim >= 2`` leaf
    its last axis as output (optax's default sends non-2-D leaves to Adam), with the default
    ``bias_correction=True`` (optax always corrects).

    Args:
      learning_rate: ``alpha`` for the matrices (a float, array or schedule).
      beta: momentum decay in [0, 1).
      ns_steps: Newton-Schulz iterations, a Python int >= 1.
      eps: ``epsilon`` > 0 (Newton-Schulz normalisation and Adam denominator).
      weight_decay: decoupled ``lambda`` >= 0 on the matrices.
      adam_learning_rate: learning rate of the NAdamW leaves; ``None`` shares
        ``learning_rate`` (then sweeping ``learning_rate`` moves both).
      adam_beta1: NAdamW's first-moment decay in [0, 1).
      adam_beta2: NAdamW's second-moment decay in [0, 1).
      adam_weight_decay: NAdamW's decoupled weight decay >= 0.
      bias_correction: ``False`` drops the two ``1 - beta^k`` divisors on the matrices:
        :math:`\\hat m = \\beta m + (1 - \\beta) g = (1 - \\beta)(g + \\beta b)` with ``b`` the
        summed buffer :math:`b \\leftarrow \\beta b + g` -- the PyTorch Muon of airbench94_muon
        and modded-nanogpt (Nesterov on a plain momentum buffer; Newton-Schulz removes the
        factor :math:`1 - \\beta`). A Python bool (static).

    Returns:
      A :class:`GradientTransformation` with :class:`MuonState`; ``update``
      ignores unknown keyword extras and needs ``params`` when a weight decay
      is used.

    Raises:
      ValueError: on a bad hyperparameter.
    """
    if isinstance(ns_steps, bool) or not isinstance(ns_steps, int) or ns_steps < 1:
        raise ValueError(f"ns_steps: expected an int >= 1, got {ns_steps!r}")
    if not isinstance(bias_correction, bool):
        raise ValueError(f"bias_correction: expected True or False, got {bias_correction!r}")
    check_non_negative("learning_rate", learning_rate)
    check_unit_interval("beta", beta)
    check_positive("eps", eps)
    check_non_negative("weight_decay", weight_decay)
    check_unit_interval("adam_beta1", adam_beta1)
    check_unit_interval("adam_beta2", adam_beta2)
    check_non_negative("adam_weight_decay", adam_weight_decay)
    spec = {
        "learning_rate": learning_rate,
        "beta": beta,
        "eps": eps,
        "weight_decay": weight_decay,
        "adam_beta1": adam_beta1,
        "adam_beta2": adam_beta2,
        "adam_weight_decay": adam_weight_decay,
    }
    if adam_learning_rate is not None:
        check_non_negative("adam_learning_rate", adam_learning_rate)
        spec["adam_learning_rate"] = adam_learning_rate

    def init(params: Params) -> MuonState:
        return MuonState(jnp.zeros((), jnp.int32), tm.zeros_like(params), tm.zeros_like(params), init_hyperparams(spec))

    def matrix_update(g: Array, m: Array, p: Array, t: Array, hp: dict[str, Array]) -> tuple[Array, Array]:
        beta = hp["beta"]
        m = (beta * m + (1 - beta) * g).astype(m.dtype)
        if bias_correction:
            m_hat = beta * m / (1 - beta ** (t + 1)) + (1 - beta) * g / (1 - beta**t)
        else:
            m_hat = beta * m + (1 - beta) * g
        direction = _orthogonalised(m_hat.astype(m.dtype), ns_steps, hp["eps"]) + hp["weight_decay"] * p
        return (-hp["learning_rate"] * direction).astype(m.dtype), m

    def adam_update(
        g: Array, m: Array, v: Array, p: Array, t: Array, hp: dict[str, Array]
    ) -> tuple[Array, Array, Array]:
        b1, b2 = hp["adam_beta1"], hp["adam_beta2"]
        lr = hp.get("adam_learning_rate", hp["learning_rate"])
        m = (b1 * m + (1 - b1) * g).astype(m.dtype)
        v = (b2 * v + (1 - b2) * g * g).astype(v.dtype)
        direction = nadam_direction(g, m, v, t, b1, b2, hp["eps"]) + hp["adam_weight_decay"] * p
        return (-lr * direction).astype(m.dtype), m, v

    def update(
        grads: Updates, state: MuonState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, MuonState]:
        del extra
        check_tree_match(grads, state.momentum, reference_name="state.momentum")
        hp = current_hyperparams(spec, state.hyperparams, state.step)
        t = state.step + 1
        params = tm.zeros_like(state.momentum) if params is None else params

        def leaf(g: Array, m: Array, v: Array, p: Array) -> tuple[Array, Array, Array]:
            if _is_matrix(g):
                u, m = matrix_update(g, m, p, t, hp)
                return u, m, v
            return adam_update(g, m, v, p, t, hp)

        out = jax.tree_util.tree_map(leaf, grads, state.momentum, state.second_moment, params)
        treedef = jax.tree_util.tree_structure(grads)
        updates, momentum, second_moment = (
            jax.tree_util.tree_unflatten(treedef, [o[i] for o in treedef.flatten_up_to(out)])  # type: ignore[attr-defined]  # missing from the stubs
            for i in range(3)
        )
        return updates, MuonState(t, momentum, second_moment, hp)

    return GradientTransformation(init, update)
