"""airbench's CIFAR-10 network: a whitening convolution, three conv-pool-BN-GELU groups, a linear head.

Layers (``x`` NHWC; ``k`` the whitening patch size, ``w_1..w_3`` = ``widths``):

1. input normalisation ``(x - mu) / sigma`` per channel (``uint8`` pixels are
   divided by 255 first);
2. whitening: ``k x k`` convolution, ``padding=0``, with the frozen filters of
   :func:`jax231.models.layers.whitening_filters` (the PCA of the training
   patches, ``2 k^2 C`` channels) and a trainable bias; GELU;
3. three groups ``conv3x3 - maxpool2 - BN - GELU - conv3x3 - BN - GELU``
   (no conv bias; the convolutions start as identities on their first
   ``C_in`` output channels, :func:`jax231.models.layers.dirac`; a 2x2 max pool
   of an odd map drops its last row and column, as PyTorch's ``MaxPool2d``);
   every batch norm has a frozen scale (``gamma = 1``, not a parameter) and
   a trainable shift ``beta`` (which the speedrun trains at 64x the rate);
4. global max pool (airbench's ``MaxPool2d(3)`` on the final 3x3 map), a
   bias-free linear layer, logits multiplied by ``scale`` (1/9).

Compute precision: ``compute_dtype='bfloat16'`` runs the convolutions and the
head in bfloat16 on bfloat16 copies of the float32 master weights; batch-norm
statistics, their running averages and the logits stay float32.

References:
  K. Jordan, "94% on CIFAR-10 in 3.29 seconds on a single GPU", 2024
  (https://github.com/KellerJordan/cifar10-airbench, ``airbench94.py``);
  CS231n notes, "Convolutional Neural Networks" and "Neural Networks Part 2"
  (whitening, batch normalisation).
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jax231.models import layers
from jax231.models._model import Model
from jax231.types import Array, ArrayLike, ModelState, Params, PRNGKey

__all__ = [
    "AIRBENCH_COMPUTE_DTYPES",
    "AIRBENCH_CONV_IMPLS",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "airbench_net",
    "check_compute_dtype",
]

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

AIRBENCH_CONV_IMPLS = layers.CONV_IMPLS
"""``conv_impl`` choices of :func:`airbench_net` (those of :func:`jax231.models.layers.conv2d`)."""

AIRBENCH_COMPUTE_DTYPES = ("float32", "bfloat16")
"""``compute_dtype`` choices of :func:`airbench_net`."""

BF16_BACKENDS = ("gpu", "cuda", "rocm", "tpu")
"""Backends with bfloat16 matrix units, where ``compute_dtype='bfloat16'`` is accepted.

"Lacks bfloat16" means a backend outside this list, i.e. the CPU: XLA's CPU backend runs
bfloat16 but gains nothing from it. Measured on the 2-core reference CPU (jitted train step of
the speedrun's ``cpu93`` net, batch 128, CPU seconds per step): im2col 0.89 (float32) vs 1.43
(bfloat16), ``lax.conv`` 1.06 vs 1.07. :func:`check_compute_dtype` refuses it there."""


def check_compute_dtype(compute_dtype: str, *, backend: str | None = None) -> str:
    """Validates ``compute_dtype`` for ``backend`` (default: JAX's default backend).

    Raises:
      ValueError: for a name not in :data:`AIRBENCH_COMPUTE_DTYPES`, or ``'bfloat16'``
        on a backend without bfloat16 matrix units (not in :data:`BF16_BACKENDS`:
        the CPU), one line naming the option and the valid choices.
    """
    if compute_dtype not in AIRBENCH_COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype: expected one of {AIRBENCH_COMPUTE_DTYPES}, got {compute_dtype!r}")
    backend = jax.default_backend() if backend is None else backend
    if compute_dtype == "bfloat16" and backend not in BF16_BACKENDS:
        raise ValueError(
            f"compute_dtype: expected 'float32' on the {backend} backend (bfloat16 needs one of "
            f"{BF16_BACKENDS}; XLA's CPU only emulates it), got 'bfloat16'"
        )
    return compute_dtype


def _check_options(widths: Sequence[int], conv_impl: str, compute_dtype: str, whitening: np.ndarray) -> None:
    if conv_impl not in layers.CONV_IMPLS:
        raise ValueError(f"conv_impl: expected one of {layers.CONV_IMPLS}, got {conv_impl!r}")
    if compute_dtype not in AIRBENCH_COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype: expected one of {AIRBENCH_COMPUTE_DTYPES}, got {compute_dtype!r}")
    if len(widths) != 3 or any(isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1 for w in widths):
        raise ValueError(f"widths: expected three positive ints, got {tuple(widths)!r}")
    if whitening.ndim != 4 or whitening.shape[0] != whitening.shape[1]:
        raise ValueError(f"whitening: expected square HWIO filters (k, k, C, 2 k^2 C), got shape {whitening.shape}")


def _uniform(rng: PRNGKey, shape: tuple[int, ...], fan_in: int) -> Array:
    """PyTorch's default init of conv and linear weights: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
    bound = 1.0 / math.sqrt(fan_in)
    return jax.random.uniform(rng, shape, jnp.float32, -bound, bound)


def _init(
    rng: PRNGKey, whitening: np.ndarray, widths: Sequence[int], num_classes: int, head_std: float | None
) -> tuple[Params, ModelState]:
    keys = jax.random.split(rng, 2 * len(widths) + 1)
    params: Params = {"whiten": {"w": jnp.asarray(whitening), "b": jnp.zeros((whitening.shape[-1],), jnp.float32)}}
    state: ModelState = {}
    c_in = whitening.shape[-1]
    for i, width in enumerate(widths):
        group, group_state = {}, {}
        for j, (a, b) in enumerate(((c_in, width), (width, width)), start=1):
            w = _uniform(keys[2 * i + j - 1], (3, 3, a, b), 9 * a)
            group[f"conv{j}"] = {"w": layers.dirac(w)}
            group[f"norm{j}"] = {"beta": jnp.zeros((b,), jnp.float32)}
            group_state[f"norm{j}"] = layers.init_batch_norm_stats(b)
        params[f"group{i + 1}"], state[f"group{i + 1}"] = group, group_state
        c_in = width
    head = _uniform(keys[-1], (c_in, num_classes), c_in)
    if head_std is not None:  # airbench94_muon: w *= 1 / w.std()
        head = head * (head_std / jnp.std(head, ddof=1))
    params["head"] = {"w": head}
    return params, state


def _pool(x: Array) -> Array:
    """2x2 max pool that drops an odd last row/column (PyTorch's ``MaxPool2d(2)`` floor)."""
    h, w = (x.shape[1] // 2) * 2, (x.shape[2] // 2) * 2
    return layers.max_pool(x[:, :h, :w], window=2, stride=2)


def airbench_net(
    whitening: ArrayLike,
    *,
    widths: Sequence[int] = (64, 256, 256),
    num_classes: int = 10,
    bn_momentum: float = 0.6,
    bn_eps: float = 1e-12,
    scale: float = 1.0 / 9.0,
    head_std: float | None = None,
    conv_impl: str = "auto",
    compute_dtype: str = "float32",
    mean: Sequence[float] = CIFAR10_MEAN,
    std: Sequence[float] = CIFAR10_STD,
) -> Model:
    """The airbench94 network (module docstring) as a :class:`Model`.

    Args:
      whitening: the frozen first-layer filters ``(k, k, C, 2 k^2 C)`` from
        :func:`jax231.models.layers.whitening_filters` on normalised training images
        (data-dependent, so given here rather than drawn by ``init``; ``params
        ['whiten']['w']`` holds them, for the optimizer to freeze).
      widths: channels of the three groups (airbench94: 64, 256, 256).
      num_classes: outputs of the head.
      bn_momentum: weight of the old running statistics (PyTorch ``momentum=0.4``).
      bn_eps: batch-norm epsilon.
      scale: multiplier of the logits (airbench94: 1/9; airbench94_muon: 1 / ``widths[2]``).
      head_std: the head's initial weights rescaled to this standard deviation (airbench94_muon:
        1.0); ``None`` keeps PyTorch's default uniform init.
      conv_impl: the :func:`jax231.models.layers.conv2d` implementation of every
        convolution (``'auto'``, ``'xla'``, ``'im2col'``).
      compute_dtype: ``'float32'`` or ``'bfloat16'`` (convolutions and head).
      mean, std: per-channel input normalisation (of pixels in [0, 1]).

    Returns:
      ``Model(init, apply)``; ``apply`` takes ``(N, H, W, C)`` pixels, ``uint8``
      in [0, 255] or floats in [0, 1].

    Raises:
      ValueError: for an unknown ``conv_impl`` or ``compute_dtype``, bad
        ``widths`` or non-square whitening filters (one line each).
    """
    whitening = np.asarray(whitening, np.float32)
    _check_options(widths, conv_impl, compute_dtype, whitening)
    if head_std is not None and not head_std > 0:
        raise ValueError(f"head_std: expected a float > 0 or None, got {head_std!r}")
    dtype = jnp.dtype(compute_dtype)
    mean_a, std_a = jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)

    def conv(x: Array, w: Array, b: Array | None = None, padding: int = 1) -> Array:
        return layers.conv2d(
            x, w.astype(dtype), None if b is None else b.astype(dtype), padding=padding, impl=conv_impl
        )

    def norm(x: Array, p: Params, s: ModelState, train: bool) -> tuple[Array, ModelState]:
        ones = jnp.ones_like(p["beta"])
        y, m, v = layers.batch_norm(
            x.astype(jnp.float32),
            ones,
            p["beta"],
            s["mean"],
            s["var"],
            train=train,
            momentum=bn_momentum,
            eps=bn_eps,
        )
        return y.astype(dtype), {"mean": m, "var": v}

    def init(rng: PRNGKey, input_shape: Sequence[int]) -> tuple[Params, ModelState]:
        if tuple(input_shape)[-1] != whitening.shape[2]:
            raise ValueError(
                f"input_shape: expected {whitening.shape[2]} channels (the whitening's), got {input_shape}"
            )
        return _init(rng, whitening, widths, num_classes, head_std)

    def apply(
        params: Params, state: ModelState, x: ArrayLike, *, train: bool, rng: PRNGKey | None = None
    ) -> tuple[Array, ModelState]:
        del rng
        x = jnp.asarray(x)
        x = x.astype(jnp.float32) / 255.0 if x.dtype == jnp.uint8 else x.astype(jnp.float32)
        h = ((x - mean_a) / std_a).astype(dtype)
        h = jax.nn.gelu(conv(h, params["whiten"]["w"], params["whiten"]["b"], padding=0), approximate=False)
        new_state: ModelState = {}
        for g in range(1, len(widths) + 1):
            p, s = params[f"group{g}"], state[f"group{g}"]
            h = _pool(conv(h, p["conv1"]["w"]))
            h, s1 = norm(h, p["norm1"], s["norm1"], train)
            h = jax.nn.gelu(h, approximate=False)
            h, s2 = norm(conv(h, p["conv2"]["w"]), p["norm2"], s["norm2"], train)
            h = jax.nn.gelu(h, approximate=False)
            new_state[f"group{g}"] = {"norm1": s1, "norm2": s2}
        h = jnp.max(h, axis=(1, 2))
        logits = (h @ params["head"]["w"].astype(dtype)).astype(jnp.float32) * scale
        return logits, (new_state if train else state)

    return Model(init, apply)
