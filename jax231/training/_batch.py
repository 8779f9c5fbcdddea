"""What a training batch is: ``{'image': inputs, 'label': targets}`` with pytree values.

Both values may be pytrees whose leaves share the leading axis ``N`` (the
examples): ``image`` an ``(N, ...)`` array or a dict of them, ``label`` int
class labels ``(N,)``, a dict such as ``{'boxes': (N, 4), 'classes': (N,)}``,
caption tokens ``(N, T)``, or absent (an unsupervised model: the loss then gets
``labels=None`` and the model's ``apply`` returns what it needs, e.g. a dict of
per-example terms). Every training path (the loop core, the steps, ``fit``)
gathers, pads and checks batches through these functions.

Accuracy is reported only where it is defined, ``argmax(logits) == labels`` for
array logits ``(N, C)`` and integer labels ``(N,)``; for any other output or
target it is NaN (so the metrics, the history keys and the checkpoints keep one
structure for every model).
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jax231.types import Array, PyTree

KEYS = ("image", "label")
"""The keys of a training batch (``'label'`` is optional; an eval batch may add ``'mask'``)."""


def leading_sizes(tree: PyTree) -> list[int]:
    """The leading-axis size of every leaf of ``tree``."""
    return [int(np.shape(leaf)[0]) if np.ndim(leaf) else 0 for leaf in jax.tree_util.tree_leaves(tree)]


def num_examples(batch: Mapping[str, Any]) -> int:
    """``N``, the leading axis of the first leaf of ``batch['image']``."""
    return leading_sizes(batch["image"])[0]


def check(name: str, batch: Any) -> int:
    """Checks a batch and returns ``N`` (one-line ``ValueError`` naming ``name``).

    ``batch`` must be a dict with ``'image'`` (a non-empty pytree of arrays) and
    optionally ``'label'``, every leaf of both with the same leading axis.
    """
    if not isinstance(batch, Mapping) or "image" not in batch:
        raise ValueError(
            f"{name}: expected a dict with 'image' and 'label' arrays, got {type(batch).__name__}"
            + (f" with keys {sorted(batch)}" if isinstance(batch, Mapping) else "")
        )
    images = leading_sizes(batch["image"])
    if not images:
        raise ValueError(f"{name}: expected 'image' to hold at least one array, got {batch['image']!r}")
    labels = leading_sizes(batch.get("label"))
    if set(images + labels) != {images[0]}:
        raise ValueError(
            f"{name}: expected as many labels as images (one leading axis), got "
            f"{images[0] if len(set(images)) == 1 else images} images and "
            f"{labels[0] if len(set(labels)) == 1 else labels} labels"
        )
    return images[0]


def to_device(batch: Mapping[str, Any]) -> dict[str, PyTree]:
    """``{'image', 'label'}`` as device arrays; integer label leaves become int32 (class indices)."""

    def label_leaf(y):
        y = jnp.asarray(y)
        return y.astype(jnp.int32) if jnp.issubdtype(y.dtype, jnp.integer) else y

    out = {"image": jax.tree_util.tree_map(jnp.asarray, batch["image"])}
    if batch.get("label") is not None:
        out["label"] = jax.tree_util.tree_map(label_leaf, batch["label"])
    return out


def take(tree: PyTree, idx: Array) -> PyTree:
    """``tree[idx]`` along the leading axis of every leaf."""
    return jax.tree_util.tree_map(lambda a: jnp.take(a, idx, axis=0), tree)


def head(tree: PyTree, n: int) -> PyTree:
    """The first ``n`` examples of every leaf."""
    return jax.tree_util.tree_map(lambda a: a[:n], tree)


def broadcast(tree: PyTree, k: int) -> PyTree:
    """Every leaf with a new leading axis of size ``k`` (the members of a sweep)."""
    return jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (k,) + a.shape), tree)


def pad_batches(tree: PyTree, num_batches: int, batch_size: int) -> PyTree:
    """Every leaf zero-padded to ``num_batches * batch_size`` examples and reshaped ``(num_batches, batch_size, ...)``."""

    def leaf(a):
        pad = num_batches * batch_size - a.shape[0]
        a = jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)])
        return a.reshape((num_batches, batch_size) + a.shape[1:])

    return jax.tree_util.tree_map(leaf, tree)


def has_accuracy(logits: PyTree, labels: PyTree) -> bool:
    """Whether accuracy is defined: array logits ``(N, C)`` and integer labels ``(N,)`` (static)."""
    return (
        isinstance(logits, jax.Array | np.ndarray)
        and isinstance(labels, jax.Array | np.ndarray)
        and logits.ndim == 2
        and labels.ndim == 1
        and jnp.issubdtype(labels.dtype, jnp.integer)
    )


def correct(logits: PyTree, labels: PyTree) -> Array:
    """Per-example ``argmax(logits) == labels`` as float32 ``(N,)``; NaN where accuracy is undefined."""
    if has_accuracy(logits, labels):
        return (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    n = leading_sizes(logits)[0]
    return jnp.full((n,), jnp.nan, jnp.float32)


def spec(tree: PyTree) -> PyTree:
    """``(shape, dtype)`` of every leaf (for the one-line messages about hooks)."""
    return jax.tree_util.tree_map(
        lambda a: (tuple(np.shape(a)), str(a.dtype if hasattr(a, "dtype") else np.asarray(a).dtype)), tree
    )
