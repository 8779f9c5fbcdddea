"""Test-time augmentation and Monte-Carlo dropout, against NumPy transcriptions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import models


def _np_softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _linear_predict(w):
    return lambda x: jnp.reshape(x, (x.shape[0], -1)) @ w


def test_tta_views_are_the_padded_corner_and_centre_crops_and_their_mirrors():
    x = np.random.default_rng(0).standard_normal((2, 6, 5, 3)).astype(np.float32)
    views = np.asarray(models.tta_views(x, flip=True, crops=5, pad=2))
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    crops = [padded[:, i : i + 6, j : j + 5] for i, j in [(2, 2), (0, 0), (0, 4), (4, 0), (4, 4)]]
    expected = np.stack(crops + [c[:, :, ::-1] for c in crops])
    assert views.shape == (10, 2, 6, 5, 3)
    np.testing.assert_array_equal(views, expected)
    np.testing.assert_array_equal(views[0], x)  # view 0 is the image itself


def test_tta_predict_is_the_mean_of_the_view_probabilities():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 6, 6, 2)).astype(np.float32)
    w = rng.standard_normal((72, 3)).astype(np.float32)
    views = np.asarray(models.tta_views(x, flip=True, crops=5, pad=1))
    expected = np.mean([_np_softmax(v.reshape(4, -1).astype(np.float64) @ w) for v in views], axis=0)
    ours = jax.jit(lambda x: models.tta_predict(_linear_predict(w), x, flip=True, crops=5, pad=1))(x)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)
    single = models.tta_predict(_linear_predict(w), x, flip=False, crops=1)
    np.testing.assert_allclose(single, _np_softmax(x.reshape(4, -1).astype(np.float64) @ w), rtol=1e-5, atol=1e-6)


def test_tta_bad_options_name_the_argument():
    with pytest.raises(ValueError, match=r"^crops: expected one of \[1, 5\], got 3$"):
        models.tta_views(jnp.zeros((1, 4, 4, 1)), crops=3)
    with pytest.raises(ValueError, match=r"^pad: expected an int >= 0"):
        models.tta_views(jnp.zeros((1, 4, 4, 1)), pad=-1)


def test_mc_dropout_mean_and_spread_over_t_masks_match_numpy():
    model = models.mlp(hidden_sizes=(16,), drop_rate=0.5, num_classes=4)
    params, state = model.init(jax.random.key(0), (8,))
    x = jax.random.normal(jax.random.key(1), (5, 8))
    rng = jax.random.key(2)
    out = models.mc_dropout_predict(model, params, state, x, rng=rng, num_samples=7)
    probs = np.stack(
        [
            _np_softmax(np.asarray(model.apply(params, state, x, train=True, rng=k)[0], np.float64))
            for k in jax.random.split(rng, 7)
        ]
    )
    np.testing.assert_allclose(out.mean, probs.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.std, probs.std(0), rtol=1e-4, atol=1e-6)
    assert float(out.std.max()) > 0  # the masks differ
    one = models.mc_dropout_predict(model, params, state, x, rng=rng, num_samples=1)
    np.testing.assert_array_equal(one.std, np.zeros_like(one.std))


@pytest.mark.parametrize("bad", [0, -3, 2.0, True])
def test_mc_predict_rejects_fewer_than_one_sample(bad):
    with pytest.raises(ValueError, match=r"^num_samples: expected an int >= 1"):
        models.mc_predict(lambda k: jnp.zeros((1, 2)), jax.random.key(0), num_samples=bad)


# ----------------------------------------------------------------------------- fractional-pooling convnet


def test_fmp_convnet_counts_parameters_and_averages_region_draws_at_test_time():
    model = models.fmp_convnet(num_layers=3, width=4, input_noise_std=0.1, spatial_drop_rate=0.2, drop_rate=0.1)
    params, state = model.init(jax.random.key(0), (16, 16, 3))
    widths = (4, 8, 12)
    expected = sum(9 * a * b + b for a, b in zip((3, *widths[:-1]), widths)) + 12 * 10 + 10
    assert models.count_params(params) == expected
    x = jax.random.normal(jax.random.key(1), (2, 16, 16, 3))
    apply = jax.jit(model.apply, static_argnames="train")
    a, _ = apply(params, state, x, train=False)
    b, _ = apply(params, state, x, train=False)
    np.testing.assert_array_equal(a, b)  # no rng at eval: one fixed region draw, deterministic
    c, _ = apply(params, state, x, train=False, rng=jax.random.key(5))
    assert not np.array_equal(a, c)  # another draw of the regions
    # Graham's test-time marginalisation: the mean over T region draws (noise and dropout off).
    out = models.mc_predict(
        lambda k: model.apply(params, state, x, train=False, rng=k)[0], jax.random.key(2), num_samples=4
    )
    draws = [
        _np_softmax(np.asarray(apply(params, state, x, train=False, rng=k)[0], np.float64))
        for k in jax.random.split(jax.random.key(2), 4)
    ]
    np.testing.assert_allclose(out.mean, np.mean(draws, 0), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="rng"):
        model.apply(params, state, x, train=True)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"ratio": 1.0}, r"^ratio: expected a float > 1"),
        ({"input_noise_std": -1.0}, r"^input_noise_std: expected a value >= 0"),
        ({"spatial_drop_rate": 1.0}, "spatial_drop_rate"),
    ],
)
def test_fmp_convnet_rejects_bad_regulariser_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.fmp_convnet(**kwargs)
