"""The linear classifier of the notes: ``scores = x W + b``.

Trained with either the multiclass SVM (hinge) loss or the softmax
cross-entropy (both in :mod:`jax231.losses`); the model itself is the same.

References:
  CS231n notes, "Linear classification: Support Vector Machine, Softmax"
  (https://cs231n.github.io/linear-classify/).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import jax.numpy as jnp

from jax231.models import _helpers, _model, layers
from jax231.types import Array, ArrayLike, ModelState, Params, PRNGKey, Shape

__all__ = ["linear", "class_templates"]

_NAME = "linear"


def linear(*, num_classes: int = 10, init: str = "small") -> _model.Model:
    """A linear classifier on flattened inputs.

    .. math::  s = \\mathrm{flatten}(x)\\, W + b

    with ``W`` of shape ``(D, C)`` (``D = prod(input_shape)``, ``C = num_classes``)
    and ``b`` of shape ``(C,)``. Parameters: ``D * C + C``.

    Args:
      num_classes: number of classes ``C``.
      init: initializer of ``W`` by name (``'small'``: N(0, 0.01^2) as in the
        course; ``'xavier'``; ``'he'``); ``b`` starts at zero.

    Returns:
      ``Model(init, apply)`` with params ``{'w': (D, C), 'b': (C,)}`` and empty state.

    Raises:
      ValueError: for a bad ``num_classes`` or an unknown ``init``.
    """
    _helpers.check_positive_int("num_classes", num_classes)
    _helpers.check_choice("init", init, tuple(layers.INITIALIZERS))

    def init_fn(rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]:
        shape = tuple(int(s) for s in input_shape)
        if len(shape) < 1 or any(s < 1 for s in shape):
            _helpers.fail(f"{_NAME} input_shape", "a non-empty shape without the batch dimension", input_shape)
        return layers.init_affine(rng, math.prod(shape), num_classes, init=init), {}

    def apply_fn(
        params: Params, state: ModelState, x: ArrayLike, *, train: bool, rng: Optional[PRNGKey] = None
    ) -> tuple[Array, ModelState]:
        del train, rng  # deterministic model
        x = jnp.asarray(x)
        if x.ndim < 2:
            _helpers.fail(f"{_NAME} x", "shape (N, ...) with a batch axis", None, got_text=f"shape {x.shape}")
        h = layers.flatten(x)
        _helpers.check_features(_NAME, h, params["w"].shape[0], what="the flattened input")
        return layers.affine(h, params["w"], params["b"]), state

    return _model.Model(init_fn, apply_fn)


def class_templates(params: Params, image_shape: Sequence[int]) -> Array:
    """The class templates of the notes: each class's weights reshaped as an image.

    The notes store ``W`` as ``(C, D)`` and show its rows; this package stores
    ``W`` as ``(D, C)`` (``x @ W``), so the templates are its columns.

    Args:
      params: linear-model params ``{'w': (D, C), 'b': (C,)}``.
      image_shape: per-example input shape with ``prod(image_shape) == D``,
        e.g. ``(32, 32, 3)``.

    Returns:
      ``(C, *image_shape)`` array: ``templates[c] = W[:, c].reshape(image_shape)``.

    Raises:
      ValueError: when ``prod(image_shape) != D``.
    """
    w = params["w"]
    shape = tuple(int(s) for s in image_shape)
    if math.prod(shape) != w.shape[0]:
        _helpers.fail("image_shape", f"a shape of {w.shape[0]} elements (the rows D of W)", shape)
    return jnp.transpose(w).reshape((w.shape[1], *shape))
