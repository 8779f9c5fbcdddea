"""Training-time augmentation in JAX, vmapped per example.

:func:`augment_batch` is the measured faster placement (see
:data:`AUGMENT_PLACEMENT`): call it inside the jitted train step or through
:func:`jax231.pipelines.device_epochs`. The same transforms, with the same
distributions, exist for tf.data in :mod:`._tf_augment`, used by
``load(..., augment=...)``.

Per example, in this order (``x`` of shape ``(H, W, C)``; a signal ``(T, C)`` is
treated as ``(1, T, C)``, so vertical moves vanish):

0. affine warp (images only, off by default): rotation by ``theta ~ U[-r, r]``
   degrees, scale ``s ~ U[1-z, 1+z]``, stretch ``a ~ U[1-e, 1+e]`` and shear
   ``k ~ U[-h, h]`` about the centre, one bilinear resampling with zeros
   outside (:func:`._warp.affine_warp`, :func:`._warp.affine_matrix`;
   ``r, z, e, h`` = ``rotate, scale, stretch, shear``);
1. pad-and-crop: ``out[i, j] = x[i + oy - p, j + ox - p]``, zero outside, with
   ``oy, ox ~ U{0..2p}`` (``p = pad_crop``; He et al. 2016's CIFAR recipe);
2. translation: ``out[i, j] = x[clip(i - dy), clip(j - dx)]`` (edge pixels
   repeat), ``dy, dx ~ U{-t..t}`` (``t = translate``);
3. horizontal flip with probability 1/2: ``out[i, j] = x[i, W - 1 - j]``;
4. brightness: ``x + delta``, ``delta ~ U[-b, b]``;
5. contrast: ``(x - m) f + m`` with ``m`` the per-channel spatial mean, ``f ~ U[1-c, 1+c]``;
6. saturation: ``g + f (x - g)`` with ``g = 0.2989 R + 0.5870 G + 0.1140 B``,
   ``f ~ U[1-s, 1+s]`` (RGB only);
7. cutout: zero a ``k x k`` square (clipped at the border) whose top-left
   corner is ``(cy - k // 2, cx - k // 2)``, ``cy, cx`` uniform over the image
   (DeVries & Taylor 2017).

Colour changes are not clipped (inputs need not lie in ``[0, 1]``). Labels are
never touched.
"""

from __future__ import annotations

from typing import NamedTuple, Union

import jax
import jax.numpy as jnp
import numpy as np

from jax231.pipelines import _warp
from jax231.types import Array, ArrayLike, PRNGKey

AUGMENT_PLACEMENT = "jax"
"""Where augmentation is faster: on the device, in JAX, inside the jitted step.

Measured by ``python -m benchmarks.bench_pipeline --repeats 3`` on the 2-core
reference CPU (shared with other jobs, so figures are noisy), batch 128 of
CIFAR-10, images/s:

=====================  ===============  ============  ==================
augmentation           tf.data twin     JAX           tf.data pipeline
                       (alone)          (alone)       with augmentation
=====================  ===============  ============  ==================
pad-crop 4 + flip      20,843           168,809       5,931
all seven              11,162           57,150        4,656
=====================  ===============  ============  ==================

The plain pipeline delivers 56,328 images/s and the three-layer convnet step
consumes 162, so either placement leaves training step-bound (end to end both
ran at 145-160 images/s). Per image, :func:`augment_batch` is 5-8x cheaper
than the tf.data twin, so it is the placement to use: call it inside the
jitted train step, or use ``device_epochs(..., augment=...)``.
``load(..., augment=...)`` keeps the tf.data twin (same transforms and
distributions) for host-side augmentation, e.g. when the accelerator is the
bottleneck and host cores are idle.
"""


class Augment(NamedTuple):
    """Augmentation options (all off except the CIFAR crop and flip).

    Attributes:
      pad_crop: zero padding ``p`` before a random crop back to the input size.
      flip: random horizontal mirror with probability 1/2.
      brightness: maximum additive change ``b``.
      contrast: maximum relative change ``c`` of the contrast factor.
      saturation: maximum relative change ``s`` of the saturation factor (RGB).
      cutout: side ``k`` of the zeroed square (0 = off).
      translate: maximum shift ``t`` in pixels, edges repeated (0 = off).
      rotate: maximum rotation in degrees (0 = off; step 0, images only).
      scale: maximum relative change of the scale, in [0, 1) (0 = off).
      stretch: maximum relative change of the aspect ratio, in [0, 1) (0 = off).
      shear: maximum shear factor (0 = off).
    """

    pad_crop: int = 4
    flip: bool = True
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    cutout: int = 0
    translate: int = 0
    rotate: float = 0.0
    scale: float = 0.0
    stretch: float = 0.0
    shear: float = 0.0

    @property
    def warps(self) -> bool:
        """Whether step 0 (the affine warp) is on."""
        return bool(self.rotate or self.scale or self.stretch or self.shear)


class AugmentParams(NamedTuple):
    """The random draws of one batch (leading axis = examples).

    Attributes:
      crop: ``(B, 2)`` int32 offsets ``oy, ox`` in ``[0, 2p]``.
      shift: ``(B, 2)`` int32 shifts ``dy, dx`` in ``[-t, t]``.
      flip: ``(B,)`` bool.
      brightness: ``(B,)`` additive change.
      contrast: ``(B,)`` factor.
      saturation: ``(B,)`` factor.
      cutout: ``(B, 2)`` int32 centres ``cy, cx``.
      warp: ``(B, 2, 3)`` the affine map ``[A | b]`` of step 0 (identity when off).
    """

    crop: Array
    shift: Array
    flip: Array
    brightness: Array
    contrast: Array
    saturation: Array
    cutout: Array
    warp: Array


def as_augment(augment: Union[None, bool, dict, Augment]) -> Union[None, Augment]:
    """Normalises ``True`` / a dict / an :class:`Augment` and checks the values."""
    if augment is None or augment is False:
        return None
    if augment is True:
        augment = Augment()
    elif isinstance(augment, dict):
        unknown = set(augment) - set(Augment._fields)
        if unknown:
            raise ValueError(f"augment: unknown options {sorted(unknown)}; valid: {Augment._fields}")
        augment = Augment(**augment)
    elif not isinstance(augment, Augment):
        raise ValueError(f"augment: expected None, True, a dict or Augment, got {augment!r}")
    for field in ("pad_crop", "cutout", "translate"):
        value = getattr(augment, field)
        if int(value) != value or value < 0:
            raise ValueError(f"augment: {field} must be a non-negative integer, got {value!r}")
    for field in ("brightness", "contrast", "saturation"):
        value = getattr(augment, field)
        if not 0 <= value or (field != "brightness" and value > 1):
            raise ValueError(f"augment: {field} must lie in [0, 1], got {value!r}")
    for field, upper in (("rotate", 180.0), ("scale", 1.0), ("stretch", 1.0), ("shear", np.inf)):
        value = getattr(augment, field)
        if not (0 <= value < upper or (field == "rotate" and value == upper)):
            raise ValueError(
                f"{field}: expected a value in [0, {upper:g}{']' if field == 'rotate' else ')'}, got {value!r}"
            )
    return augment


def _spatial(shape: tuple[int, ...], where: str = "images") -> tuple[int, int, int]:
    """``(H, W, C)`` of one example of rank 2 (signal) or 3 (image)."""
    if len(shape) == 2:
        return 1, shape[0], shape[1]
    if len(shape) == 3:
        return shape
    raise ValueError(f"{where}: expected (batch, H, W, C) or (batch, T, C), got example shape {shape}")


def sample_params(key: PRNGKey, batch: int, example_shape: tuple[int, ...], cfg: Augment) -> AugmentParams:
    """Draws the random parameters of :func:`augment_batch` for ``batch`` examples."""
    h, w, _ = _spatial(tuple(example_shape))
    p, t = int(cfg.pad_crop), int(cfg.translate)
    k = jax.random.split(key, 7)
    ph = p if h > 1 else 0
    th = t if h > 1 else 0
    crop = jnp.stack(
        [
            jax.random.randint(k[0], (batch,), 0, 2 * ph + 1),
            jax.random.randint(jax.random.fold_in(k[0], 1), (batch,), 0, 2 * p + 1),
        ],
        axis=1,
    )
    shift = jnp.stack(
        [
            jax.random.randint(k[1], (batch,), -th, th + 1),
            jax.random.randint(jax.random.fold_in(k[1], 1), (batch,), -t, t + 1),
        ],
        axis=1,
    )
    flip = jax.random.bernoulli(k[2], 0.5, (batch,)) & bool(cfg.flip)
    u = lambda key, r: jax.random.uniform(key, (batch,), minval=-r, maxval=r)  # noqa: E731
    cutout = jnp.stack(
        [
            jax.random.randint(k[6], (batch,), 0, h),
            jax.random.randint(jax.random.fold_in(k[6], 1), (batch,), 0, w),
        ],
        axis=1,
    )
    return AugmentParams(
        warp=_sample_warp(jax.random.fold_in(key, 7), batch, (h, w), cfg),
        crop=crop.astype(jnp.int32),
        shift=shift.astype(jnp.int32),
        flip=flip,
        brightness=u(k[3], cfg.brightness),
        contrast=1.0 + u(k[4], cfg.contrast),
        saturation=1.0 + u(k[5], cfg.saturation),
        cutout=cutout.astype(jnp.int32),
    )


def _sample_warp(key: PRNGKey, batch: int, hw: tuple[int, int], cfg: Augment) -> Array:
    """``(B, 2, 3)`` maps ``[A | b]`` of step 0 (its own key: the other draws are unchanged)."""
    if not cfg.warps:
        return jnp.tile(jnp.eye(2, 3), (batch, 1, 1))
    k = jax.random.split(key, 4)
    u = lambda key, r: jax.random.uniform(key, (batch,), minval=-r, maxval=r)  # noqa: E731
    theta = jnp.deg2rad(u(k[0], cfg.rotate))

    def one(theta, scale, stretch, shear):
        matrix, offset = _warp.affine_matrix(hw, rotation=theta, scale=scale, stretch=stretch, shear=shear)
        return jnp.concatenate([matrix, offset[:, None]], axis=1)

    return jax.vmap(one)(theta, 1.0 + u(k[1], cfg.scale), 1.0 + u(k[2], cfg.stretch), u(k[3], cfg.shear))


def apply_params(params: AugmentParams, image: Array, cfg: Augment) -> Array:
    """Applies one example's draws (the 7 steps of the module docstring)."""
    signal = image.ndim == 2
    x = image[None] if signal else image
    h, w, c = x.shape
    rows, cols = jnp.arange(h), jnp.arange(w)
    # 0. Affine warp (rotation, scale, stretch, shear), bilinear, zeros outside.
    if cfg.warps:
        if signal:
            raise ValueError("images: rotate/scale/stretch/shear need images (B, H, W, C), got signals (B, T, C)")
        x = _warp.affine_warp(x, params.warp[:, :2], params.warp[:, 2])
    # 1. Pad-and-crop: zero where the source index falls outside the image.
    if cfg.pad_crop:
        p = cfg.pad_crop
        r = rows + params.crop[0] - (p if h > 1 else 0)
        q = cols + params.crop[1] - p
        valid = ((r >= 0) & (r < h))[:, None] & ((q >= 0) & (q < w))[None, :]
        x = x[jnp.clip(r, 0, h - 1)][:, jnp.clip(q, 0, w - 1)]
        x = jnp.where(valid[..., None], x, jnp.zeros((), x.dtype))
    # 2. Translation with edge pixels repeated.
    if cfg.translate:
        x = x[jnp.clip(rows - params.shift[0], 0, h - 1)][:, jnp.clip(cols - params.shift[1], 0, w - 1)]
    # 3. Horizontal flip.
    if cfg.flip:
        x = jnp.where(params.flip, x[:, ::-1], x)
    # 4-6. Colour jitter.
    if cfg.brightness:
        x = x + params.brightness.astype(x.dtype)
    if cfg.contrast:
        mean = jnp.mean(x, axis=(0, 1), keepdims=True)
        x = (x - mean) * params.contrast.astype(x.dtype) + mean
    if cfg.saturation:
        if c != 3:
            raise ValueError(f"images: saturation needs RGB images (C=3), got C={c}")
        gray = jnp.tensordot(x, jnp.asarray([0.2989, 0.5870, 0.1140], x.dtype), axes=1)[..., None]
        x = gray + params.saturation.astype(x.dtype) * (x - gray)
    # 7. Cutout.
    if cfg.cutout:
        top = params.cutout[0] - cfg.cutout // 2
        left = params.cutout[1] - cfg.cutout // 2
        if signal:
            top = jnp.int32(0)
        inside = ((rows >= top) & (rows < top + cfg.cutout))[:, None] & ((cols >= left) & (cols < left + cfg.cutout))[
            None, :
        ]
        x = jnp.where(inside[..., None], jnp.zeros((), x.dtype), x)
    return x[0] if signal else x


def augment_batch(
    rng: PRNGKey,
    images: ArrayLike,
    *,
    pad_crop: int = 4,
    flip: bool = True,
    brightness: float = 0.0,
    contrast: float = 0.0,
    saturation: float = 0.0,
    cutout: int = 0,
    translate: int = 0,
    rotate: float = 0.0,
    scale: float = 0.0,
    stretch: float = 0.0,
    shear: float = 0.0,
) -> Array:
    """Augments a batch on the device: per-example random draws, ``vmap``-ed.

    Works under ``jit`` (options are static Python values). See the module
    docstring for the formula of each step.

    Args:
      rng: a JAX key; the same key gives the same batch.
      images: ``(B, H, W, C)`` images or ``(B, T, C)`` signals, floating point.
      pad_crop: zero padding before a random crop (0 = off).
      flip: random horizontal mirror.
      brightness: maximum additive change.
      contrast: maximum relative change of contrast.
      saturation: maximum relative change of saturation (RGB only).
      cutout: side of the zeroed square (0 = off).
      translate: maximum shift with repeated edges (0 = off).
      rotate: maximum rotation in degrees (0 = off).
      scale: maximum relative scale change in [0, 1) (0 = off).
      stretch: maximum relative aspect change in [0, 1) (0 = off).
      shear: maximum shear factor (0 = off).

    Returns:
      Augmented images, same shape and dtype as ``images``.

    Examples:
      >>> x = jnp.zeros((8, 32, 32, 3))
      >>> augment_batch(jax.random.key(0), x, pad_crop=4, flip=True).shape
      (8, 32, 32, 3)
    """
    cfg = as_augment(
        Augment(pad_crop, flip, brightness, contrast, saturation, cutout, translate, rotate, scale, stretch, shear)
    )
    assert cfg is not None  # an Augment in, an Augment out
    images = jnp.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"images: expected (B, H, W, C) or (B, T, C), got shape {images.shape}")
    if not jnp.issubdtype(images.dtype, jnp.floating):
        raise ValueError(f"images: expected a floating dtype, got {images.dtype}")
    if cfg.warps and images.ndim != 4:
        raise ValueError(f"images: rotate/scale/stretch/shear need images (B, H, W, C), got shape {images.shape}")
    if cfg.saturation and images.shape[-1] != 3:
        raise ValueError(f"images: saturation needs RGB images (C=3), got shape {images.shape}")
    params = sample_params(rng, images.shape[0], images.shape[1:], cfg)
    return jax.vmap(lambda p, x: apply_params(p, x, cfg))(params, images)


def numpy_params(params: AugmentParams) -> dict[str, np.ndarray]:
    """The draws as NumPy arrays (for the tf.data twin and the tests)."""
    return {k: np.asarray(v) for k, v in params._asdict().items()}
