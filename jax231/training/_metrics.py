"""Norms and the update/weight ratio of the notes (a healthy ratio is about 1e-3)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jax231.types import Array, Params, PyTree, Updates

_EPS = 1e-12  # keeps the ratio finite for all-zero parameters (e.g. freshly zeroed biases)


def global_norm(tree: PyTree) -> Array:
    """The Euclidean norm of all the leaves of ``tree`` taken as one vector.

    .. math:: \\|x\\| = \\sqrt{\\textstyle\\sum_{\\text{leaves}} \\sum_i x_i^2}

    Computed in float32, or in the widest floating dtype of the leaves when that
    is wider (float64 under x64). The leaves are raveled and concatenated into
    one vector and reduced once: XLA:CPU compiles one reduction per leaf into
    its own small fusion otherwise, which costs more than the copy.
    """
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        return jnp.zeros((), jnp.float32)
    dtype = functools.reduce(jnp.promote_types, (jnp.result_type(x) for x in leaves), jnp.float32)
    flat = jnp.concatenate([jnp.ravel(x).astype(dtype) for x in leaves])
    return jnp.sqrt(jnp.sum(jnp.square(flat)))


def _path_name(path) -> str:
    parts = []
    for entry in path:
        if isinstance(entry, jax.tree_util.DictKey):
            parts.append(str(entry.key))
        elif isinstance(entry, jax.tree_util.SequenceKey):
            parts.append(str(entry.idx))
        elif isinstance(entry, jax.tree_util.GetAttrKey):
            parts.append(entry.name)
        else:
            parts.append(str(entry))
    return "/".join(parts)


def update_ratios(params: Params, updates: Updates) -> dict[str, Array]:
    """The update/weight ratio of every parameter array.

    .. math:: r_\\ell = \\frac{\\|\\Delta w_\\ell\\|}{\\|w_\\ell\\| + \\epsilon}

    with ``w_l`` a leaf of ``params`` (before the update) and ``Delta w_l`` the
    matching leaf of ``updates``. The notes suggest ``r`` around ``1e-3``: much
    smaller means the learning rate is too low, much larger too high.

    Args:
      params: parameters before the update.
      updates: the optimizer's updates (same structure).

    Returns:
      A dict from the ``/``-joined path of each leaf (``'dense1/w'``) to a
      float32 scalar.
    """
    flat_params = jax.tree_util.tree_flatten_with_path(params)[0]
    flat_updates = jax.tree_util.tree_leaves(updates)
    if len(flat_params) != len(flat_updates):
        raise ValueError(
            f"updates: expected the structure of params ({len(flat_params)} leaves), got {len(flat_updates)} leaves"
        )
    return {
        _path_name(path): (global_norm(u) / (global_norm(w) + _EPS)).astype(jnp.float32)
        for (path, w), u in zip(flat_params, flat_updates)
    }


def update_ratio(params: Params, updates: Updates) -> Array:
    """The global update/weight ratio ``||Delta|| / (||w|| + eps)`` over all leaves."""
    return (global_norm(updates) / (global_norm(params) + _EPS)).astype(jnp.float32)
