"""A block-diagonal Shampoo: Kronecker-factored AdaGrad per weight matrix (Gupta et al. 2018).

Simplifications against Distributed Shampoo (Anil et al. 2020; AlgoPerf's
external-tuning winner), each chosen so the rule stays one screen of exact
linear algebra:

1. blocks are the parameter leaves (one Kronecker block per weight matrix or
   conv kernel, read as ``(kh kw c_in, c_out)`` like Muon); a leaf with a side
   larger than ``max_dim``, and every vector or scalar, gets diagonal AdaGrad
   instead of being split into sub-blocks;
2. the inverse 4th roots come from an exact ``eigh`` at every step (no
   coupled Newton iteration, no ``precondition_every`` staleness), batched over
   the factors of equal side, one ``eigh`` call at a time (:func:`inverse_roots`);
3. the statistics are plain sums (AdaGrad) with ``eps * I`` added at the root,
   no exponential decay, no warm-up with a first-order rule;
4. AdaGrad grafting: each leaf's Shampoo direction is rescaled to the
   Frobenius norm of the diagonal-AdaGrad direction of the same gradient (the
   learning rate is then AdaGrad's), and heavy-ball momentum ``beta1`` is
   applied to the grafted direction.

Why the ``eigh`` calls run one at a time: with one independent ``eigh`` per
factor, ``vmap`` over sweep members (``jax231.parallel.run_sweep``) deadlocked
on a 2-core CPU (issue 11; jaxlib 0.10.2, related to jax-ml/jax#39292). Each
vmapped ``eigh`` is a batched LAPACK call that spreads its batch over XLA's
intra-op pool and waits; XLA ran two of them at once (left and right factors,
or two leaves), one per pool thread, each waiting for work queued behind the
other. Stack of both ``tf_XLAEigen`` threads: ``lapack_ssyevd_ffi ->
jax::ParallelBatchMap -> BlockingCounter::Wait``. :func:`inverse_roots` makes
one batched call per distinct factor side, chained by a data dependence. The
cost: the calls no longer overlap (a few per step: one per distinct side). One
call for all factors, each padded to the largest side ``D`` as
``diag(A + eps I, I)``, was tried first and also fixes the hang, but costs
``O(F D^3)`` for ``F`` factors instead of ``sum_i O(n_i^3)``: on the tiny
``algoperf_mini`` CIFAR-10 CNN (a ``1024 x 1024`` factor, the others at most
``75 x 75``) a 6-member run had not finished after 5 CPU-minutes.

References:
  Gupta, Koren, Singer, "Shampoo: Preconditioned Stochastic Tensor
  Optimization", ICML 2018.
  Anil et al., "Scalable Second Order Optimization for Deep Learning", 2020.
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
from jax231.types import Array, ArrayLike, Params, ScalarOrSchedule, Updates


class ShampooState(NamedTuple):
    """State of :func:`shampoo`.

    Attributes:
      step: int32 scalar, number of updates made so far.
      left: ``L = sum_t G_t G_t^T`` per matrix leaf, ``(fan_in, fan_in)``; ``None`` on diagonal leaves.
      right: ``R = sum_t G_t^T G_t`` per matrix leaf, ``(fan_out, fan_out)``; ``None`` on diagonal leaves.
      diagonal: ``sum_t g_t^2`` of every leaf (the grafting AdaGrad; the rule itself on diagonal leaves).
      momentum: heavy-ball buffer of the grafted direction (parameter dtypes).
      hyperparams: ``{'learning_rate', 'beta1', 'eps'}`` scalars.
    """

    step: Array
    left: Any
    right: Any
    diagonal: Updates
    momentum: Updates
    hyperparams: dict[str, Array]


def _matrix_shape(x: Any, max_dim: int) -> tuple[int, int] | None:
    """``(fan_in, fan_out)`` of a leaf preconditioned by Kronecker factors, or ``None``."""
    if jnp.ndim(x) < 2:
        return None
    shape = (math.prod(jnp.shape(x)[:-1]), jnp.shape(x)[-1])
    return shape if max(shape) <= max_dim else None


def inverse_root(matrix: ArrayLike, eps: ArrayLike, p: int = 4) -> Array:
    """``(A + eps I)^{-1/p}`` of a symmetric positive semi-definite ``A`` by ``eigh``."""
    return inverse_roots([matrix], eps, p)[0]


def inverse_roots(matrices: list[ArrayLike], eps: ArrayLike, p: int = 4) -> list[Array]:
    """``(A_i + eps I)^{-1/p}`` of every square ``A_i``, one batched ``eigh`` at a time.

    The matrices are grouped by side; each group is one batched ``eigh``, and
    the groups run one after the other: an ``optimization_barrier`` makes each
    group's input wait for the previous group's eigenvalues, so XLA never runs
    two ``eigh`` calls at once (the deadlock in the module docstring). Eigenvalues
    are clamped at ``eps`` (the roundoff of ``eigh`` can push them below it).

    Args:
      matrices: symmetric positive semi-definite ``(n_i, n_i)`` arrays.
      eps: ``epsilon`` > 0 added to each diagonal.
      p: the root (4 for Shampoo's two-sided preconditioner).

    Returns:
      The ``(n_i, n_i)`` roots in order, at least float32 (LAPACK has no 16-bit ``eigh``).
    """
    mats = [jnp.asarray(a) for a in matrices]
    dtype = jnp.promote_types(jnp.result_type(*mats), jnp.float32) if mats else jnp.float32
    roots: list[Array | None] = [None] * len(mats)
    previous: Array | None = None
    for side in sorted({a.shape[-1] for a in mats}):
        group = [i for i, a in enumerate(mats) if a.shape[-1] == side]
        batch = jnp.stack([mats[i].astype(dtype) for i in group]) + eps * jnp.eye(side, dtype=dtype)
        if previous is not None:
            previous, batch = jax.lax.optimization_barrier((previous, batch))
        values, vectors = jnp.linalg.eigh(batch)
        previous = values
        group_roots = (vectors * jnp.maximum(values, eps)[:, None, :] ** (-1.0 / p)) @ jnp.swapaxes(vectors, -1, -2)
        for j, i in enumerate(group):
            roots[i] = group_roots[j]
    return [r for r in roots if r is not None]


def shampoo(
    learning_rate: ScalarOrSchedule = 0.1,
    *,
    beta1: ScalarOrSchedule = 0.9,
    eps: float = 1e-6,
    max_dim: int = 1024,
) -> GradientTransformation:
    """Block-diagonal Shampoo with AdaGrad grafting and momentum (simplifications in the module docstring).

    On a matrix leaf ``G`` of shape ``(fan_in, fan_out)``:

    .. math::
        L &\\leftarrow L + G G^T, \\quad R \\leftarrow R + G^T G, \\quad
        D \\leftarrow D + G \\odot G \\\\
        P &= (L + \\epsilon I)^{-1/4}\\, G\\, (R + \\epsilon I)^{-1/4}, \\quad
        A = G / (\\sqrt{D} + \\epsilon) \\\\
        d &= P\\, \\|A\\|_F / \\|P\\|_F, \\quad m \\leftarrow \\beta_1 m + d, \\quad
        \\Delta = -\\alpha m

    and ``d = A`` on vectors, scalars and matrices with a side above ``max_dim``.

    Args:
      learning_rate: ``alpha`` (AdaGrad's scale, through the grafting).
      beta1: heavy-ball momentum in [0, 1).
      eps: ``epsilon`` > 0, added to the factors before the root and to AdaGrad's root.
      max_dim: largest side preconditioned by a Kronecker factor (Python int).

    Returns:
      A :class:`GradientTransformation` with :class:`ShampooState`; ``update``
      ignores unknown keyword extras.

    Raises:
      ValueError: on a bad hyperparameter.
    """
    check_non_negative("learning_rate", learning_rate)
    check_unit_interval("beta1", beta1)
    check_positive("eps", eps)
    if isinstance(max_dim, bool) or not isinstance(max_dim, int) or max_dim < 1:
        raise ValueError(f"max_dim: expected an int >= 1, got {max_dim!r}")
    spec = {"learning_rate": learning_rate, "beta1": beta1, "eps": eps}

    def factor(x: Array, side: int) -> Array | None:
        shape = _matrix_shape(x, max_dim)
        return None if shape is None else jnp.zeros((shape[side],) * 2, jnp.result_type(x))

    def init(params: Params) -> ShampooState:
        return ShampooState(
            step=jnp.zeros((), jnp.int32),
            left=jax.tree_util.tree_map(lambda x: factor(x, 0), params),
            right=jax.tree_util.tree_map(lambda x: factor(x, 1), params),
            diagonal=tm.zeros_like(params),
            momentum=tm.zeros_like(params),
            hyperparams=init_hyperparams(spec),
        )

    def statistics(g: Array, left: Array | None, right: Array | None, diag: Array, m: Array) -> tuple:
        # 1. D <- D + g^2 ; L <- L + G G^T ; R <- R + G^T G  (on matrix leaves)
        g = g.astype(m.dtype)
        if left is None:
            return g, left, right, diag + g * g
        assert right is not None  # the two factors exist together (same matrix shape)
        g2 = g.reshape(left.shape[0], right.shape[0])
        return g, left + g2 @ g2.T, right + g2.T @ g2, diag + g * g

    def leaf(g: Array, roots: tuple | None, diag: Array, m: Array, hp: dict) -> Array:
        # 2. A = g / (sqrt(D) + eps) ; on matrix leaves P = L^{-1/4} G R^{-1/4}, rescaled to ||A||_F
        adagrad = g / (jnp.sqrt(diag) + hp["eps"])
        direction = adagrad
        if roots is not None:
            left_root, right_root = roots
            p = (left_root @ g.reshape(left_root.shape[0], right_root.shape[0]) @ right_root).reshape(g.shape)
            direction = p * (jnp.linalg.norm(adagrad) / (jnp.linalg.norm(p) + 1e-30))
        # 3. m <- beta1 m + d
        return (hp["beta1"] * m + direction).astype(m.dtype)

    def all_roots(left: list, right: list, eps: Array) -> list[tuple | None]:
        # One batched eigh per factor side, one after the other (the deadlock note in the module docstring).
        factors = [f for pair in zip(left, right) if pair[0] is not None for f in pair]
        roots = iter(inverse_roots(factors, eps) if factors else [])
        return [None if a is None else (next(roots), next(roots)) for a in left]

    def update(
        grads: Updates, state: ShampooState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ShampooState]:
        del params, extra
        check_tree_match(grads, state.momentum, reference_name="state.momentum")
        hp = current_hyperparams(spec, state.hyperparams, state.step)
        treedef = jax.tree_util.tree_structure(grads)
        flat = [treedef.flatten_up_to(t) for t in (grads, state.left, state.right, state.diagonal, state.momentum)]  # type: ignore[attr-defined]  # missing from the stubs
        g, left, right, diag = (list(col) for col in zip(*(statistics(*args) for args in zip(*flat))))
        roots = all_roots(left, right, hp["eps"])
        m = [leaf(*args, hp) for args in zip(g, roots, diag, flat[4])]
        updates = [(-hp["learning_rate"] * mi).astype(mi.dtype) for mi in m]
        left_t, right_t, diag_t, m_t, updates_t = (
            jax.tree_util.tree_unflatten(treedef, col) for col in (left, right, diag, m, updates)
        )
        return updates_t, ShampooState(state.step + 1, left_t, right_t, diag_t, m_t, hp)

    return GradientTransformation(init, update)
