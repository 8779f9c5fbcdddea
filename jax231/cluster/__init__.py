"""Clustering: Lloyd's k-means as a jitted ``lax.while_loop`` and k-means++ seeding.

Examples:
  >>> from jax231 import cluster
  >>> result = cluster.kmeans(points, 5, rng=jax.random.key(0))
  >>> result.centroids, result.labels, result.inertia
"""

from jax231.cluster._kmeans import KMeansResult, assign, kmeans, kmeans_plusplus

__all__ = ["KMeansResult", "assign", "kmeans", "kmeans_plusplus"]
