"""t-SNE embedding of learned features (scikit-learn's implementation).

References:
  van der Maaten & Hinton, "Visualizing Data using t-SNE", JMLR 2008; CS231n lecture 12
  (t-SNE of the last layer's features).
"""

from __future__ import annotations

import numpy as np
import threadpoolctl
from sklearn.manifold import TSNE

from jax231.types import ArrayLike

__all__ = ["tsne_embedding"]


def tsne_embedding(
    features: ArrayLike, *, perplexity: float = 30.0, seed: int = 0, num_threads: int | None = 1
) -> np.ndarray:
    """``(N, 2)`` t-SNE coordinates of ``(N, D)`` features (PCA initialisation, fixed seed).

    ``num_threads`` caps scikit-learn's OpenMP threads (None: its default). The default
    is 1 because, in a process that also runs XLA's thread pool on a small CPU, the
    Barnes-Hut threads spin against it: 40 points took 3.9 s of CPU with the default
    threads and 0.06 s with one, measured on the 2-core reference machine.

    Raises:
      ValueError: for non-2-D features or a perplexity not below ``N``.
    """
    features = np.asarray(features, np.float64)
    if features.ndim != 2:
        raise ValueError(f"features: expected (N, D) features, got shape {features.shape}")
    if not 0 < perplexity < len(features):
        raise ValueError(
            f"perplexity: expected a number in (0, {len(features)}) (the number of points), got {perplexity!r}"
        )
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    with threadpoolctl.threadpool_limits(num_threads):
        return tsne.fit_transform(features).astype(np.float32)
