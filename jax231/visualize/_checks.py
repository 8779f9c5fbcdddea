"""Argument checks shared by the visualisation functions (one message format: ``name: expected ..., got ...``)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jax231.types import Array, ArrayLike

LogitsFn = Callable[[Array], Array]
"""``images (N, ...) -> class scores (N, K)`` of a trained classifier in inference mode."""


def check_images(name: str, images: ArrayLike) -> Array:
    """A floating ``(N, H, W, C)`` batch."""
    images = jnp.asarray(images)
    if images.ndim != 4 or not jnp.issubdtype(images.dtype, jnp.floating):
        raise ValueError(f"{name}: expected a float (N, H, W, C) batch of images, got {images.dtype} {images.shape}")
    return images


def num_classes_of(logits_fn: LogitsFn, images: Array) -> int:
    """``K``, read from the abstract output shape of ``logits_fn`` (no FLOPs)."""
    out = jax.eval_shape(logits_fn, images)
    if out.ndim != 2 or out.shape[0] != images.shape[0]:
        raise ValueError(f"logits_fn: expected (N, K) scores for {images.shape[0]} images, got shape {out.shape}")
    return int(out.shape[1])


def check_classes(name: str, classes: ArrayLike, num_classes: int, batch: int) -> Array:
    """Integer class indices in ``[0, num_classes)``: a scalar (broadcast to the batch) or ``(batch,)``."""
    values = np.asarray(classes)
    if not np.issubdtype(values.dtype, np.integer) or values.ndim > 1 or (values.ndim == 1 and len(values) != batch):
        raise ValueError(f"{name}: expected an int or {batch} int class indices, got {values.dtype} {values.shape}")
    if values.size and (values.min() < 0 or values.max() >= num_classes):
        raise ValueError(f"{name}: expected class indices in [0, {num_classes}), got {values.min()}..{values.max()}")
    return jnp.broadcast_to(jnp.asarray(values, jnp.int32), (batch,))


def check_positive(name: str, value: float) -> float:
    if not value > 0:
        raise ValueError(f"{name}: expected a number > 0, got {value!r}")
    return float(value)


def check_steps(name: str, value: int) -> int:
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    return int(value)


def clip_to(images: Array, clip: tuple[float, float] | None) -> Array:
    """``images`` clipped to the valid pixel range ``clip`` (unchanged when None)."""
    return images if clip is None else jnp.clip(images, clip[0], clip[1])
