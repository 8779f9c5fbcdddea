"""Per-group optimizers: a different transformation, or learning-rate scale, per parameter group.

Transfer learning trains parameter groups differently (CS231n notes, "Transfer
Learning": fine-tune the later layers, freeze or slow down the earlier ones).
Groups are named by a *labels* tree: a tree of strings with the structure of
the parameters (see :func:`jax231.models.group_labels`), or a function
``params -> labels``.

* :func:`multi_transform` runs one transformation per label on that label's
  leaves (optax's ``multi_transform`` protocol, written out);
* :func:`set_to_zero` gives exactly zero updates (a frozen group);
* :func:`scale_by_group` multiplies each group's updates by a factor held in
  ``state.hyperparams['scale_<label>']``: chained after a rule it gives
  differential learning rates, settable and vmappable like every hyperparameter.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp

from jax231.optimizers._base import (
    GradientTransformation,
    check_non_negative,
    init_hyperparams,
)
from jax231.types import Array, OptState, Params, PyTree, Updates

Labels = PyTree | Callable[[Params], PyTree]


class MultiTransformState(NamedTuple):
    """State of :func:`multi_transform`.

    Attributes:
      inner_states: one state per label (labels sorted), each over that label's leaves only.
    """

    inner_states: tuple[OptState, ...]


class SetToZeroState(NamedTuple):
    """State of :func:`set_to_zero` (empty)."""


class ScaleByGroupState(NamedTuple):
    """State of :func:`scale_by_group`.

    Attributes:
      hyperparams: ``{'scale_<label>': scalar}`` for every label.
    """

    hyperparams: dict[str, Array]


def _label_leaves(labels: Labels, params: Params) -> tuple[list[str], Any]:
    """The flat list of labels (one per parameter leaf) and the parameters' treedef."""
    tree = labels(params) if callable(labels) else labels
    treedef = jax.tree_util.tree_structure(params)
    names = treedef.flatten_up_to(tree)  # type: ignore[attr-defined]  # missing from the jax stubs
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f"labels: expected a string per parameter leaf, got {name!r}")
    return names, treedef


def _only(treedef: Any, leaves: list, names: list[str], label: str) -> PyTree:
    """The tree with the leaves of other labels replaced by ``None`` (an empty subtree)."""
    return treedef.unflatten([x if n == label else None for x, n in zip(leaves, names)])


def multi_transform(transforms: Mapping[str, GradientTransformation], labels: Labels) -> GradientTransformation:
    """Runs ``transforms[label]`` on the leaves labelled ``label``; their updates are merged.

    Each inner transformation sees a tree where the other groups' leaves are
    ``None`` (absent), so its state only covers its own group; an Adam on the
    head and a frozen backbone cost the head's moments only. Equals
    ``optax.multi_transform(transforms, labels)``.

    Args:
      transforms: a transformation per label.
      labels: a tree of label strings shaped like the parameters, or a function
        ``params -> labels``.

    Raises:
      ValueError: when a label has no transformation (naming the labels).
    """
    transforms = dict(transforms)
    if not transforms:
        raise ValueError("transforms: expected at least one label -> transformation, got {}")
    order = tuple(sorted(transforms))

    def check(names: list[str]) -> None:
        unknown = sorted(set(names) - set(order))
        if unknown:
            raise ValueError(f"labels: expected labels among {list(order)}, got {unknown}")

    def init(params: Params) -> MultiTransformState:
        names, treedef = _label_leaves(labels, params)
        check(names)
        leaves = treedef.flatten_up_to(params)
        return MultiTransformState(tuple(transforms[k].init(_only(treedef, leaves, names, k)) for k in order))

    def update(
        grads: Updates, state: MultiTransformState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, MultiTransformState]:
        names, treedef = _label_leaves(labels, grads if params is None else params)
        check(names)
        g_leaves = treedef.flatten_up_to(grads)
        p_leaves = None if params is None else treedef.flatten_up_to(params)
        merged: list = [None] * len(g_leaves)
        new_states = []
        for k, inner in zip(order, state.inner_states):
            sub_p = None if p_leaves is None else _only(treedef, p_leaves, names, k)
            out, inner = transforms[k].update(_only(treedef, g_leaves, names, k), inner, sub_p, **extra)
            out_leaves = jax.tree_util.tree_flatten(out, is_leaf=lambda x: x is None)[0]
            merged = [u if n == k else m for u, n, m in zip(out_leaves, names, merged)]
            new_states.append(inner)
        return treedef.unflatten(merged), MultiTransformState(tuple(new_states))

    return GradientTransformation(
        init, update, needs_objective=any(getattr(t, "needs_objective", False) for t in transforms.values())
    )


def set_to_zero() -> GradientTransformation:
    """Zero updates for every leaf (a frozen group); ``optax.set_to_zero()``."""

    def init(params: Params) -> SetToZeroState:
        del params
        return SetToZeroState()

    def update(
        grads: Updates, state: SetToZeroState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, SetToZeroState]:
        del params, extra
        return jax.tree_util.tree_map(jnp.zeros_like, grads), state

    return GradientTransformation(init, update)


def scale_by_group(scales: Mapping[str, float], labels: Labels) -> GradientTransformation:
    """Multiplies the updates of group ``label`` by ``scales[label]`` (differential learning rates).

    .. math:: u_\\theta \\leftarrow s_{g(\\theta)} \\, u_\\theta

    Chained after a rule with learning rate :math:`\\eta`, group :math:`g`
    trains with :math:`\\eta s_g` (for SGD exactly ``multi_transform`` of
    ``sgd(eta * s_g)``; for Adam the step scales by :math:`s_g`, the same as
    Adam with learning rate :math:`\\eta s_g`). The factors are hyperparameters
    ``scale_<label>`` in the state.

    Raises:
      ValueError: for a negative scale or a label without one.
    """
    scales = dict(scales)
    for k, v in scales.items():
        check_non_negative(f"scales[{k!r}]", v)

    def init(params: Params) -> ScaleByGroupState:
        names, _ = _label_leaves(labels, params)
        missing = sorted(set(names) - set(scales))
        if missing:
            raise ValueError(f"scales: expected a scale for every label, got none for {missing}")
        return ScaleByGroupState(init_hyperparams({f"scale_{k}": v for k, v in scales.items()}))

    def update(
        grads: Updates, state: ScaleByGroupState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ScaleByGroupState]:
        del extra
        names, treedef = _label_leaves(labels, grads if params is None else params)
        leaves = treedef.flatten_up_to(grads)
        hp = state.hyperparams
        return treedef.unflatten(
            [hp[f"scale_{n}"].astype(jnp.result_type(g)) * g for g, n in zip(leaves, names)]
        ), state

    return GradientTransformation(init, update)
