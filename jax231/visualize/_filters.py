"""First-layer filters as images (the notes' "visualise the weights")."""

from __future__ import annotations

import numpy as np

from jax231.types import ArrayLike
from jax231.visualize._grid import rescale_images

__all__ = ["filter_images"]


def filter_images(weights: ArrayLike) -> np.ndarray:
    """Convolution weights ``(F, F, C_in, K)`` as ``K`` images ``(F, F, C_in)``, each rescaled to [0, 1].

    The first layer's filters look at pixels directly, so each is drawn as a small
    image (RGB for colour inputs): oriented edges and colour blobs in a trained network.

    Raises:
      ValueError: for weights that are not ``(F, F, C_in, K)``.
    """
    weights = np.asarray(weights, np.float32)
    if weights.ndim != 4:
        raise ValueError(f"weights: expected (F, F, C_in, K) convolution weights, got shape {weights.shape}")
    return rescale_images(np.moveaxis(weights, -1, 0), per_image=True)
