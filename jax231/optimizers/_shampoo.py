"""A block-diagonal Shampoo: Kronecker-factored AdaGrad per weight matrix (Gupta et al. 2018).

Simplifications against Distributed Shampoo (Anil et al. 2020; AlgoPerf's
external-tuning winner), each chosen so the rule stays one screen of exact
linear algebra:

1. blocks are the parameter leaves (one Kronecker block per weight matrix or
   conv kernel, read as ``(kh kw c_in, c_out)`` like Muon); a leaf with a side
   larger than ``max_dim``, and every vector or scalar, gets diagonal AdaGrad
   instead of being split into sub-blocks;
2. the inverse 4th roots come from an exact ``eigh`` at every step (no
   coupled Newton iteration, no ``precondition_every`` staleness); under
   ``vmap`` the ``eigh`` runs as a loop of unbatched calls (below);
3. the statistics are plain sums (AdaGrad) with ``eps * I`` added at the root,
   no exponential decay, no warm-up with a first-order rule;
4. AdaGrad grafting: each leaf's Shampoo direction is rescaled to the
   Frobenius norm of the diagonal-AdaGrad direction of the same gradient (the
   learning rate is then AdaGrad's), and heavy-ball momentum ``beta1`` is
   applied to the grafted direction.

Why ``vmap`` loops over the ``eigh`` (:func:`sequential_eigh`): a vmapped
``jnp.linalg.eigh`` is a batched LAPACK call that spreads its batch over XLA's
intra-op pool and blocks until it is done. In ``jax231.parallel.run_sweep``
(issue 11; jaxlib 0.10.2, related to jax-ml/jax#39292) that deadlocked on a
2-core CPU: both pool threads ``tf_XLAEigen`` sat in ``lapack_ssyevd_ffi ->
jax::ParallelBatchMap -> BlockingCounter::Wait``, each waiting for tasks
queued behind the other. Running the batched calls one at a time (one call per
factor side, chained by a data dependence) did not remove it at the MNIST-1D
MLP's size (3 members, 100 x 100 leaves; presumably another op blocking on
the pool suffices, not diagnosed); one call for all factors padded to the
largest side fixed a smaller case but was far slower (``O(F D^3)``) and
untested there. An unbatched
``eigh`` does not wait on the pool (one member always ran). The cost:
the ``K`` members' decompositions of a factor run one after the other, in
one thread, instead of spread over the pool.

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


@jax.custom_batching.custom_vmap
def sequential_eigh(matrix: Array) -> tuple[Array, Array]:
    """``(eigenvalues, eigenvectors)`` of a symmetric matrix; under ``vmap``, a loop of unbatched ``eigh``.

    ``jnp.linalg.eigh`` with a batch waits on XLA's intra-op thread pool and can
    deadlock there (module docstring); the ``vmap`` rule below maps the batch
    with ``lax.map`` instead, so every LAPACK call is unbatched. Same values.
    Not differentiable (``custom_vmap`` has no JVP rule here); the optimizer needs none.
    """
    values, vectors = jnp.linalg.eigh(matrix)
    return values, vectors


@sequential_eigh.def_vmap
def _sequential_eigh_vmap(axis_size: int, in_batched: list, matrix: Array) -> tuple:
    del axis_size
    if not in_batched[0]:
        return sequential_eigh(matrix), (False, False)
    return jax.lax.map(sequential_eigh, matrix), (True, True)


def inverse_root(matrix: ArrayLike, eps: ArrayLike, p: int = 4) -> Array:
    """``(A + eps I)^{-1/p}`` of a symmetric positive semi-definite ``A`` by ``eigh``."""
    a = jnp.asarray(matrix)
    values, vectors = sequential_eigh(a + eps * jnp.eye(a.shape[0], dtype=a.dtype))
    return (vectors * jnp.maximum(values, eps) ** (-1.0 / p)) @ vectors.T


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

    def leaf(g: Array, left: Array | None, right: Array | None, diag: Array, m: Array, hp: dict) -> tuple:
        eps = hp["eps"]
        g = g.astype(m.dtype)
        # 1. D <- D + g^2 ; A = g / (sqrt(D) + eps)  (the graft; the rule itself on diagonal leaves)
        diag = diag + g * g
        adagrad = g / (jnp.sqrt(diag) + eps)
        direction = adagrad
        if left is not None:
            # 2. L <- L + G G^T ; R <- R + G^T G ; P = L^{-1/4} G R^{-1/4}, rescaled to ||A||_F
            assert right is not None  # the two factors exist together (same matrix shape)
            g2 = g.reshape(left.shape[0], right.shape[0])
            left, right = left + g2 @ g2.T, right + g2.T @ g2
            p = (inverse_root(left, eps) @ g2 @ inverse_root(right, eps)).reshape(g.shape)
            direction = p * (jnp.linalg.norm(adagrad) / (jnp.linalg.norm(p) + 1e-30))
        # 3. m <- beta1 m + d
        m = (hp["beta1"] * m + direction).astype(m.dtype)
        return (-hp["learning_rate"] * m).astype(m.dtype), left, right, diag, m

    def update(
        grads: Updates, state: ShampooState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ShampooState]:
        del params, extra
        check_tree_match(grads, state.momentum, reference_name="state.momentum")
        hp = current_hyperparams(spec, state.hyperparams, state.step)
        treedef = jax.tree_util.tree_structure(grads)
        flat = [treedef.flatten_up_to(t) for t in (grads, state.left, state.right, state.diagonal, state.momentum)]  # type: ignore[attr-defined]  # missing from the stubs
        out = [leaf(*args, hp) for args in zip(*flat)]  # type: ignore[call-arg]  # args: 5-tuples
        updates, left, right, diag, m = (jax.tree_util.tree_unflatten(treedef, list(col)) for col in zip(*out))
        return updates, ShampooState(state.step + 1, left, right, diag, m, hp)

    return GradientTransformation(init, update)
