"""Feature extraction over a dataset: feature functions applied per image, batched and jitted."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jax231.types import Array

__all__ = ["extract_features", "standardize_features"]


def extract_features(
    images: np.ndarray, feature_fns: Sequence[Callable[[Array], Array]], *, batch_size: int = 1000
) -> np.ndarray:
    """Concatenates ``[f(image) for f in feature_fns]`` for every image (the course's ``extract_features``).

    Each function maps one image to a 1-D vector; they are vmapped and jitted together
    and run over ``batch_size`` images at a time (the last batch is padded).

    Args:
      images: ``(N, ...)`` images.
      feature_fns: per-image feature functions.
      batch_size: images per compiled call.

    Returns:
      ``(N, F)`` float32 features, ``F`` the sum of the functions' output sizes.
    """
    if not feature_fns:
        raise ValueError("feature_fns: expected at least one feature function, got none")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected an int >= 1, got {batch_size!r}")
    images = np.asarray(images)
    batched = jax.jit(jax.vmap(lambda im: jnp.concatenate([f(im) for f in feature_fns])))
    size = min(batch_size, len(images))
    out = []
    for start in range(0, len(images), size):
        chunk = images[start : start + size]
        pad = size - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
        out.append(np.asarray(batched(chunk))[: size - pad])
    return np.concatenate(out).astype(np.float32)


def standardize_features(train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Subtracts the training mean and divides by the training std of every feature (the course's step).

    Constant features (std 0) are only centred. Returns the standardised ``train``
    followed by each of ``others``.
    """
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return tuple(((x - mean) / std).astype(np.float32) for x in (train, *others))
