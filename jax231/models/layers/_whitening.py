"""Per-patch whitening filters: the first convolution initialised from the training data's PCA.

The notes' whitening ("Neural Networks Part 2", data preprocessing) rotates the
data into the eigenbasis of its covariance and divides every dimension by the
square root of its eigenvalue. Applied to the ``k x k x C`` patches of the
training images instead of whole images (airbench's first layer), the
whitening becomes a ``k x k`` convolution whose filters are the eigenvectors
scaled by ``1 / sqrt(lambda + eps)``; airbench keeps both signs of every filter
(``2 k^2 C`` output channels) so that a following GELU/ReLU loses nothing.

References:
  CS231n notes, "Neural Networks Part 2", "Data Preprocessing" (PCA and
  whitening): https://cs231n.github.io/neural-networks-2/#datapre
  K. Jordan, "94% on CIFAR-10 in 3.29 seconds on a single GPU", 2024 (airbench).
"""

from __future__ import annotations

import numpy as np

from jax231.types import ArrayLike


def image_patches(images: ArrayLike, patch_size: int, *, stride: int | None = None) -> np.ndarray:
    """Every ``k x k`` patch of ``images`` at stride ``s``, flattened (float64, on the host).

    Patch ``(n, i, j)`` is ``x[n, s i : s i + k, s j : s j + k, :]`` flattened in
    ``(row, column, channel)`` order, i.e. the order of an HWIO filter's first
    three axes, so a row of the result is a filter's input window.

    Args:
      images: ``(N, H, W, C)`` images.
      patch_size: ``k`` >= 1.
      stride: ``s`` >= 1; default ``k`` (non-overlapping tiles: every pixel in
        exactly one patch, ``k^2`` times fewer patches than stride 1 for the same
        covariance in expectation).

    Returns:
      ``(N * H_p * W_p, k * k * C)`` with ``H_p = (H - k) / s + 1``.

    Raises:
      ValueError: when ``images`` is not NHWC, ``k`` or ``s`` is not a positive int,
        or ``(H - k)`` or ``(W - k)`` is not a multiple of ``s`` (the patches would
        not tile the image: a remainder is never dropped silently).
    """
    x = np.asarray(images, np.float64)
    if x.ndim != 4:
        raise ValueError(f"images: expected shape (N, H, W, C), got {x.shape}")
    stride = patch_size if stride is None else stride
    for name, value in (("patch_size", patch_size), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    n, h, w, c = x.shape
    if patch_size > min(h, w) or (h - patch_size) % stride or (w - patch_size) % stride:
        raise ValueError(
            f"patch_size: expected k <= {min(h, w)} with (H - k) and (W - k) multiples of the stride {stride} "
            f"(images {h}x{w}), got {patch_size}"
        )
    rows, cols = (h - patch_size) // stride + 1, (w - patch_size) // stride + 1
    windows = np.lib.stride_tricks.sliding_window_view(x, (patch_size, patch_size), axis=(1, 2))
    windows = windows[:, ::stride, ::stride][:, :rows, :cols]  # (N, H_p, W_p, C, k, k)
    return np.ascontiguousarray(windows.transpose(0, 1, 2, 4, 5, 3)).reshape(-1, patch_size * patch_size * c)


def whitening_filters(
    images: ArrayLike, *, patch_size: int = 2, eps: float = 5e-4, stride: int | None = None
) -> np.ndarray:
    """The whitening convolution's filters, from the PCA of the training patches.

    With ``P`` the ``(M, D)`` patch matrix (:func:`image_patches`, ``D = k^2 C``):

    .. math::
        \\Sigma = \\tfrac{1}{M} P^\\top P = U \\operatorname{diag}(\\lambda) U^\\top,
        \\qquad w_d = \\frac{u_d}{\\sqrt{\\lambda_d + \\epsilon}},
        \\qquad W = [w_1 \\dots w_D, -w_1 \\dots -w_D]

    with eigenvalues in decreasing order and each eigenvector's sign fixed so
    that its largest-magnitude entry is positive (the same data give the same
    filters). The second moment is not centred, as airbench's: its inputs are
    per-channel normalised images, whose patches have mean ~0. Convolving
    (``padding=0``, stride 1) with the first ``D`` filters gives outputs whose
    covariance over the training patches is ``diag(lambda / (lambda + eps))``,
    the identity up to ``eps``.

    Args:
      images: ``(N, H, W, C)`` training images, already normalised as the
        network's input (a few thousand suffice: airbench uses 5,000).
      patch_size: ``k``, the filter size.
      eps: ``epsilon`` added to the eigenvalues (it bounds the gain of the
        near-null directions of JPEG-smoothed patches).
      stride: patch stride of the covariance estimate (default ``k``, see
        :func:`image_patches`).

    Returns:
      float32 filters ``(k, k, C, 2 D)`` in HWIO layout (for :func:`conv2d`).

    Raises:
      ValueError: as :func:`image_patches`, or for ``eps < 0``.
    """
    if not eps >= 0:
        raise ValueError(f"eps: expected a float >= 0, got {eps!r}")
    patches = image_patches(images, patch_size, stride=stride)
    c = np.shape(images)[-1]
    covariance = patches.T @ patches / patches.shape[0]
    eigenvalues, vectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, vectors = np.maximum(eigenvalues[order], 0.0), vectors[:, order]
    signs = np.sign(vectors[np.argmax(np.abs(vectors), axis=0), np.arange(vectors.shape[1])])
    scaled = vectors * np.where(signs == 0, 1.0, signs) / np.sqrt(eigenvalues + eps)
    filters = np.concatenate([scaled, -scaled], axis=1)  # (D, 2D), rows in (row, column, channel) order
    return filters.reshape(patch_size, patch_size, c, 2 * scaled.shape[1]).astype(np.float32)
