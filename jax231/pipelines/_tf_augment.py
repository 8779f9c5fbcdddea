"""The augmentation of :mod:`._augment` as vectorised TensorFlow batch ops.

One map call per batch (not per example): tf.data's per-element overhead
would otherwise dominate for 32x32 images. Draws come from stateless ops
seeded by ``(seed, batch counter)``, so a pipeline is deterministic whatever
its parallelism.
"""

from __future__ import annotations

import tensorflow as tf

from jax231.pipelines._augment import Augment

_GRAY = (0.2989, 0.5870, 0.1140)


def sample_params(seed: tf.Tensor, shape: tf.TensorShape, batch: tf.Tensor, cfg: Augment) -> dict:
    """Stateless draws with the distributions of :func:`._augment.sample_params`."""
    if cfg.warps:
        raise ValueError(
            "augment: rotate/scale/stretch/shear (the affine warp) run on the device only: "
            f"use augment_batch or device_epochs, got {cfg}"
        )
    h = 1 if len(shape) == 2 else int(shape[0])
    w = int(shape[0] if len(shape) == 2 else shape[1])
    p, t = int(cfg.pad_crop), int(cfg.translate)
    ph, th = (p, t) if h > 1 else (0, 0)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=11)

    def randint(i, lo, hi):  # U{lo..hi}
        return tf.random.stateless_uniform([batch], seeds[i], minval=lo, maxval=hi + 1, dtype=tf.int32)

    def uniform(i, r):
        return tf.random.stateless_uniform([batch], seeds[i], minval=-r, maxval=r)

    return {
        "crop": tf.stack([randint(0, 0, 2 * ph), randint(1, 0, 2 * p)], axis=1),
        "shift": tf.stack([randint(2, -th, th), randint(3, -t, t)], axis=1),
        "flip": tf.logical_and(uniform(4, 1.0) < 0.0, bool(cfg.flip)),
        "brightness": uniform(5, float(cfg.brightness)),
        "contrast": 1.0 + uniform(6, float(cfg.contrast)),
        "saturation": 1.0 + uniform(7, float(cfg.saturation)),
        "cutout": tf.stack([randint(8, 0, h - 1), randint(9, 0, w - 1)], axis=1),
    }


def _gather_2d(x: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
    """``out[b, i, j] = x[b, rows[b, i], cols[b, j]]``."""
    x = tf.gather(x, rows, axis=1, batch_dims=1)
    return tf.gather(x, cols, axis=2, batch_dims=1)


def apply_params(params: dict, images: tf.Tensor, cfg: Augment) -> tf.Tensor:
    """Applies a batch of draws; same formulas as :func:`._augment.apply_params`."""
    images = tf.convert_to_tensor(images)
    params = {k: tf.convert_to_tensor(v) for k, v in params.items()}
    signal = images.shape.rank == 3
    x = images[:, None] if signal else images
    h, w, c = (int(d) for d in x.shape[1:])
    rows, cols = tf.range(h), tf.range(w)
    if cfg.pad_crop:  # 1. Pad-and-crop (zeros outside).
        p = int(cfg.pad_crop)
        r = rows[None] + params["crop"][:, :1] - (p if h > 1 else 0)
        q = cols[None] + params["crop"][:, 1:] - p
        valid = tf.logical_and(r >= 0, r < h)[:, :, None] & tf.logical_and(q >= 0, q < w)[:, None, :]
        x = _gather_2d(x, tf.clip_by_value(r, 0, h - 1), tf.clip_by_value(q, 0, w - 1))
        x = tf.where(valid[..., None], x, tf.zeros([], x.dtype))
    if cfg.translate:  # 2. Translation, edges repeated.
        r = tf.clip_by_value(rows[None] - params["shift"][:, :1], 0, h - 1)
        q = tf.clip_by_value(cols[None] - params["shift"][:, 1:], 0, w - 1)
        x = _gather_2d(x, r, q)
    if cfg.flip:  # 3. Horizontal flip.
        x = tf.where(params["flip"][:, None, None, None], tf.reverse(x, axis=[2]), x)
    if cfg.brightness:  # 4. Brightness.
        x = x + tf.cast(params["brightness"], x.dtype)[:, None, None, None]
    if cfg.contrast:  # 5. Contrast around the per-channel mean.
        mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
        x = (x - mean) * tf.cast(params["contrast"], x.dtype)[:, None, None, None] + mean
    if cfg.saturation:  # 6. Saturation around the luma.
        if c != 3:
            raise ValueError(f"images: saturation needs RGB images (C=3), got C={c}")
        gray = tf.tensordot(x, tf.constant(_GRAY, x.dtype), axes=1)[..., None]
        x = gray + tf.cast(params["saturation"], x.dtype)[:, None, None, None] * (x - gray)
    if cfg.cutout:  # 7. Cutout.
        k = int(cfg.cutout)
        top = params["cutout"][:, :1] - k // 2
        if signal:
            top = tf.zeros_like(top)
        left = params["cutout"][:, 1:] - k // 2
        inside = (
            tf.logical_and(rows[None] >= top, rows[None] < top + k)[:, :, None]
            & tf.logical_and(cols[None] >= left, cols[None] < left + k)[:, None, :]
        )
        x = tf.where(inside[..., None], tf.zeros([], x.dtype), x)
    return x[:, 0] if signal else x


def augment(images: tf.Tensor, seed: tf.Tensor, cfg: Augment) -> tf.Tensor:
    """Augments one batch ``(B, H, W, C)`` or ``(B, T, C)`` seeded by ``seed`` (shape ``[2]``)."""
    params = sample_params(seed, images.shape[1:], tf.shape(images)[0], cfg)
    return apply_params(params, images, cfg)
