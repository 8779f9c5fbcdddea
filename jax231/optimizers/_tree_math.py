"""Tree arithmetic so that update rules read like the equations of the notes.

Every function maps over matching leaves of pytrees. Results keep the dtype of
the first tree argument unless stated otherwise, so that bfloat16 parameters
stay bfloat16 when multiplied by float32 hyperparameters.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jax231.types import Array, ArrayLike, PyTree

_map = jax.tree_util.tree_map


def _like(x: Array, ref: Array) -> Array:
    return x.astype(jnp.result_type(ref))


def zeros_like(tree: PyTree) -> PyTree:
    """Zeros with the structure, shapes and dtypes of ``tree``."""
    return _map(jnp.zeros_like, tree)


def add(a: PyTree, b: PyTree) -> PyTree:
    """``a + b`` leaf by leaf."""
    return _map(lambda x, y: _like(x + y, x), a, b)


def sub(a: PyTree, b: PyTree) -> PyTree:
    """``a - b`` leaf by leaf."""
    return _map(lambda x, y: _like(x - y, x), a, b)


def scale(s: ArrayLike, a: PyTree) -> PyTree:
    """``s * a`` for a scalar ``s``."""
    return _map(lambda x: _like(s * x, x), a)


def add_scale(a: PyTree, s: ArrayLike, b: PyTree) -> PyTree:
    """``a + s * b`` for a scalar ``s`` (axpy)."""
    return _map(lambda x, y: _like(x + s * y, x), a, b)


def mul(a: PyTree, b: PyTree) -> PyTree:
    """``a * b`` leaf by leaf."""
    return _map(lambda x, y: _like(x * y, x), a, b)


def vdot(a: PyTree, b: PyTree) -> Array:
    """``sum_i <a_i, b_i>`` over all leaves, accumulated in at least float32."""
    leaves = [
        jnp.vdot(x, y, preferred_element_type=jnp.promote_types(jnp.result_type(x), jnp.float32))
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b))
    ]
    return sum(leaves) if leaves else jnp.zeros(())


def norm(a: PyTree) -> Array:
    """The Euclidean norm of all leaves stacked into one vector."""
    return jnp.sqrt(vdot(a, a))


def moment(g: PyTree, m: PyTree, decay: ArrayLike, order: int) -> PyTree:
    """Exponential moving average ``decay * m + (1 - decay) * g**order``."""
    return _map(lambda gi, mi: _like(decay * mi + (1 - decay) * gi**order, mi), g, m)


def bias_correction(m: PyTree, decay: ArrayLike, step: ArrayLike) -> PyTree:
    """``m / (1 - decay**step)``, Adam's correction of a zero-initialised average."""
    correction = 1 - decay ** jnp.asarray(step, jnp.result_type(decay))
    return _map(lambda x: _like(x / correction, x), m)


def cast_like(a: PyTree, ref: PyTree) -> PyTree:
    """Casts each leaf of ``a`` to the dtype of the matching leaf of ``ref``."""
    return _map(lambda x, r: x.astype(jnp.result_type(r)), a, ref)


def index(stacked: PyTree, i: ArrayLike) -> PyTree:
    """Row ``i`` of every leaf of a tree of stacked leaves (a ring buffer)."""
    return _map(lambda x: jax.lax.dynamic_index_in_dim(x, i, keepdims=False), stacked)


def set_index(stacked: PyTree, i: ArrayLike, value: PyTree) -> PyTree:
    """Writes ``value`` into row ``i`` of every leaf of ``stacked``."""
    return _map(lambda x, v: jax.lax.dynamic_update_index_in_dim(x, v.astype(x.dtype), i, 0), stacked, value)
