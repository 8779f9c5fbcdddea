"""Gram matrix, content/style/TV losses against float64 NumPy; style transfer and DeepDream."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import visualize
from tests import test_utils
from tests.visualize.conftest import random_images


def _np_gram(f):
    # Float64 transcription: F is (C, H*W) per image; G = F F^T / (H W C).
    n, h, w, c = f.shape
    out = np.zeros((n, c, c))
    for i in range(n):
        flat = f[i].reshape(h * w, c).T.astype(np.float64)
        out[i] = flat @ flat.T / (h * w * c)
    return out


def test_gram_matrix_equals_numpy():
    f = np.random.default_rng(0).normal(size=(2, 5, 6, 7))
    with test_utils.x64():
        np.testing.assert_allclose(visualize.gram_matrix(f), _np_gram(f), rtol=1e-12)
        np.testing.assert_allclose(visualize.gram_matrix(f, normalize=False), _np_gram(f) * 5 * 6 * 7, rtol=1e-12)


def test_losses_equal_float64_numpy():
    rng = np.random.default_rng(1)
    current = {"a": rng.normal(size=(1, 4, 4, 3)), "b": rng.normal(size=(1, 2, 2, 5))}
    style = {"a": rng.normal(size=(1, 6, 6, 3)), "b": rng.normal(size=(1, 3, 3, 5))}
    target = rng.normal(size=(1, 4, 4, 3))
    x = rng.normal(size=(1, 5, 4, 3))
    with test_utils.x64():
        grams = {k: visualize.gram_matrix(v) for k, v in style.items()}
        got_style = visualize.style_loss(current, grams, {"a": 2.0, "b": 0.5})
        got_content = visualize.content_loss(current["a"], target, weight=3.0)
        got_tv = visualize.total_variation_loss(x, weight=0.7)
    ref_style = sum(w * np.sum((_np_gram(current[k]) - _np_gram(style[k])) ** 2) for k, w in (("a", 2.0), ("b", 0.5)))
    ref_content = 3.0 * np.sum((current["a"] - target) ** 2)
    ref_tv = 0.7 * sum((x[0, i + 1, j, c] - x[0, i, j, c]) ** 2 for i in range(4) for j in range(4) for c in range(3))
    ref_tv += 0.7 * sum((x[0, i, j + 1, c] - x[0, i, j, c]) ** 2 for i in range(5) for j in range(3) for c in range(3))
    np.testing.assert_allclose(float(got_style), ref_style, rtol=1e-12)
    np.testing.assert_allclose(float(got_content), ref_content, rtol=1e-12)
    np.testing.assert_allclose(float(got_tv), ref_tv, rtol=1e-12)


def test_style_transfer_lowers_its_loss_and_checks_shapes(tiny_vgg):
    _, params, state = tiny_vgg
    extractor = visualize.vgg_extractor(params, state)
    content, style = random_images(0, n=1, size=16)[0], random_images(1, n=1, size=8)[0]
    result = visualize.style_transfer(
        extractor,
        content,
        style,
        content_layer="stage_1/conv_0",
        style_layers=("stage_0/conv_0", "stage_1/conv_0"),
        style_weights=(1e3, 1e3),
        tv_weight=1e-3,
        num_steps=40,
        learning_rate=0.02,
    )
    assert result.image.shape == (16, 16, 3) and result.losses.shape == (40,)
    assert float(result.losses[-1]) < 0.5 * float(result.losses[0])
    with pytest.raises(ValueError, match=r"^content_image: expected \(N, H, W, 3\) with H and W divisible by 4"):
        visualize.style_transfer(
            extractor,
            content[:10, :10],
            style,
            content_layer="stage_1/conv_0",
            style_layers=("stage_0/conv_0",),
            style_weights=(1.0,),
        )
    with pytest.raises(ValueError, match=r"^style_image: expected"):
        visualize.style_transfer(
            extractor,
            content,
            style[..., :1],
            content_layer="stage_1/conv_0",
            style_layers=("stage_0/conv_0",),
            style_weights=(1.0,),
        )
    with pytest.raises(ValueError, match=r"^style_layers: expected layers among"):
        visualize.style_transfer(
            extractor, content, style, content_layer="stage_1/conv_0", style_layers=("conv9",), style_weights=(1.0,)
        )


def test_deep_dream_amplifies_the_layer(tiny_vgg):
    _, params, state = tiny_vgg
    extractor = visualize.vgg_extractor(params, state)
    image = random_images(2, n=1, size=16)[0] * 0.5 + 0.25
    dreamed = visualize.deep_dream(
        extractor, image, layer="stage_1/conv_0", rng=jax.random.key(0), num_steps=20, learning_rate=0.01
    )
    energy = lambda x: float(jnp.mean(extractor(jnp.asarray(x)[None])["stage_1/conv_0"] ** 2))
    assert dreamed.shape == image.shape and energy(dreamed) > 1.2 * energy(image)
    with pytest.raises(ValueError, match=r"^layer: expected one of"):
        visualize.deep_dream(extractor, image, layer="fc_0", rng=jax.random.key(0))
    with pytest.raises(ValueError, match=r"^image: expected \(N, H, W, 3\)"):
        visualize.deep_dream(extractor, image[:, :, :2], layer="stage_0/conv_0", rng=jax.random.key(0))
