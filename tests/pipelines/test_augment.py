"""Augmentation: JAX and tf.data twins against a float64 NumPy transcription."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import pipelines
from jax231.pipelines import _augment

ALL_ON = _augment.Augment(pad_crop=2, flip=True, brightness=0.2, contrast=0.3, saturation=0.4, cutout=3, translate=1)


def numpy_augment(image, p, cfg):
    """Float64 reference of one example, written with np.pad and slicing."""
    x = np.asarray(image, np.float64)
    signal = x.ndim == 2
    if signal:
        x = x[None]
    h, w, _ = x.shape
    if cfg.pad_crop:
        k, ph = cfg.pad_crop, (cfg.pad_crop if h > 1 else 0)
        padded = np.pad(x, ((ph, ph), (k, k), (0, 0)))
        x = padded[p["crop"][0] : p["crop"][0] + h, p["crop"][1] : p["crop"][1] + w]
    if cfg.translate:
        t, th = cfg.translate, (cfg.translate if h > 1 else 0)
        padded = np.pad(x, ((th, th), (t, t), (0, 0)), mode="edge")
        dy, dx = p["shift"]
        x = padded[th - dy : th - dy + h, t - dx : t - dx + w]
    if cfg.flip and p["flip"]:
        x = x[:, ::-1]
    x = x + p["brightness"] if cfg.brightness else x
    if cfg.contrast:
        m = x.mean(axis=(0, 1))
        x = (x - m) * p["contrast"] + m
    if cfg.saturation:
        g = (x @ np.array([0.2989, 0.5870, 0.1140]))[..., None]
        x = g + p["saturation"] * (x - g)
    if cfg.cutout:
        k = cfg.cutout
        top = 0 if signal else max(0, p["cutout"][0] - k // 2)
        left = max(0, p["cutout"][1] - k // 2)
        bottom = 1 if signal else p["cutout"][0] - k // 2 + k
        x = x.copy()
        x[top : max(0, bottom), left : max(0, p["cutout"][1] - k // 2 + k)] = 0
    return x[0] if signal else x


def _draws(cfg, shape, seed=0):
    params = _augment.sample_params(jax.random.key(seed), shape[0], shape[1:], cfg)
    return params, _augment.numpy_params(params)


@pytest.mark.parametrize("shape", [(16, 7, 6, 3), (16, 9, 3)], ids=["image", "signal"])
@pytest.mark.parametrize(
    "cfg",
    [
        ALL_ON,
        ALL_ON._replace(saturation=0.0, brightness=0.0),
        _augment.Augment(pad_crop=0, flip=True),
        _augment.Augment(pad_crop=3, flip=False, cutout=4),
    ],
    ids=["all", "geometric+contrast+cutout", "flip", "crop+cutout"],
)
def test_jax_and_tf_match_the_numpy_reference(shape, cfg):
    from jax231.pipelines import _tf_augment

    images = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    params, draws = _draws(cfg, shape)
    ours = jax.jit(jax.vmap(lambda p, x: _augment.apply_params(p, x, cfg)))(params, jnp.asarray(images))
    twin = _tf_augment.apply_params(draws, images, cfg).numpy()
    ref = np.stack([numpy_augment(images[i], {k: v[i] for k, v in draws.items()}, cfg) for i in range(shape[0])])
    # float32 arithmetic against float64: a few ulps of values of order 1.
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(twin, ref, rtol=1e-5, atol=1e-5)


def test_draws_cover_their_ranges_in_both_twins():
    import tensorflow as tf

    from jax231.pipelines import _tf_augment

    shape = (4000, 8, 8, 3)
    _, jax_draws = _draws(ALL_ON, shape)
    tf_draws = {
        k: v.numpy()
        for k, v in _tf_augment.sample_params(tf.constant([0, 0]), tf.TensorShape(shape[1:]), shape[0], ALL_ON).items()
    }
    for draws in (jax_draws, tf_draws):
        assert set(np.unique(draws["crop"])) == set(range(5))  # U{0..2p}, p = 2
        assert set(np.unique(draws["shift"])) == {-1, 0, 1}
        assert set(np.unique(draws["cutout"])) == set(range(8))
        # Uniform draws: bounds hold and the mean is near the centre (4000
        # samples: std of the mean of U[-0.2, 0.2] is 0.0018; 0.01 is > 5 sigma).
        assert np.abs(draws["brightness"]).max() <= 0.2 and abs(draws["brightness"].mean()) < 0.01
        assert np.all(np.abs(draws["contrast"] - 1) <= 0.3)
        assert np.all(np.abs(draws["saturation"] - 1) <= 0.4)
        assert 0.45 < draws["flip"].mean() < 0.55


def test_flip_is_exactly_a_mirror_and_both_outcomes_occur():
    images = jnp.asarray(np.random.default_rng(0).random((64, 5, 6, 3), dtype=np.float32))
    out = pipelines.augment_batch(jax.random.key(3), images, pad_crop=0, flip=True)
    same = jnp.all(out == images, axis=(1, 2, 3))
    mirrored = jnp.all(out == images[:, :, ::-1], axis=(1, 2, 3))
    assert bool(jnp.all(same | mirrored))
    assert 0 < int(mirrored.sum()) < 64


def test_augment_batch_keeps_shape_dtype_works_under_jit_and_is_seeded():
    # (jit against the un-jitted reference: test_jax_and_tf_match_the_numpy_reference.)
    images = jnp.asarray(np.random.default_rng(0).random((8, 10, 10, 3), dtype=np.float32))
    fn = jax.jit(lambda key, x: pipelines.augment_batch(key, x, **ALL_ON._asdict()))
    a, b = fn(jax.random.key(0), images), fn(jax.random.key(0), images)
    c = fn(jax.random.key(1), images)
    chex.assert_shape(a, images.shape)
    chex.assert_type(a, jnp.float32)
    chex.assert_tree_all_finite(a)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    "images, kwargs, match",
    [
        (np.zeros((2, 4, 4, 1), np.float32), {"saturation": 0.1}, "C=3"),
        (np.zeros((2, 4, 4, 3), np.uint8), {}, "floating"),
        (np.zeros((4, 4), np.float32), {}, "shape"),
        (np.zeros((2, 4, 4, 3), np.float32), {"pad_crop": -1}, "pad_crop"),
        (np.zeros((2, 4, 4, 3), np.float32), {"contrast": 1.5}, "contrast"),
    ],
)
def test_bad_input(images, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pipelines.augment_batch(jax.random.key(0), images, **kwargs)
