"""The VGG feature extractor against the model's own apply; grids and filter images."""

import numpy as np
import pytest

from jax231 import visualize
from tests.visualize.conftest import make_tiny_vgg, random_images


@pytest.mark.parametrize("norm", [None, "batch"])
def test_extractor_logits_equal_model_apply(norm):
    model, params, state = make_tiny_vgg(norm=norm)
    images = random_images(0)
    acts = visualize.vgg_activations(params, state, images)
    logits, _ = model.apply(params, state, images, train=False)
    # The same operations in the same order: equal to float32 rounding.
    np.testing.assert_allclose(acts["logits"], logits, rtol=1e-5, atol=1e-6)
    assert acts["stage_0/conv_0"].shape == (4, 8, 8, 4) and acts["stage_1/pool"].shape == (4, 2, 2, 8)
    assert acts["fc_0"].shape == (4, 16)
    # Without the head, any size divisible by 2**stages is accepted (style transfer on larger images).
    big = visualize.vgg_activations(params, state, random_images(1, n=1, size=16), head=False)
    assert "logits" not in big and big["stage_1/pool"].shape == (1, 4, 4, 8)


@pytest.mark.parametrize("shape", [(4, 8, 8, 1), (4, 6, 6, 3), (8, 8, 3)])
def test_extractor_rejects_wrong_image_shape(tiny_vgg, shape):
    _, params, state = tiny_vgg
    with pytest.raises(ValueError, match=r"^images: expected \(N, H, W, 3\) with H and W divisible by 4"):
        visualize.vgg_activations(params, state, np.zeros(shape, np.float32))


def test_image_grid_and_filter_images(tiny_vgg):
    _, params, _ = tiny_vgg
    filters = visualize.filter_images(params["stage_0"]["conv_0"]["w"])
    assert filters.shape == (4, 3, 3, 3) and filters.min() == 0.0 and filters.max() == 1.0
    grid = visualize.image_grid(filters, ncols=2, pad=1)
    assert grid.shape == (2 * 4 - 1, 2 * 4 - 1, 3)
    np.testing.assert_array_equal(grid[4:, 4:], filters[3])
    assert grid[3, 0, 0] == 1.0  # padding
    grey = visualize.image_grid(np.zeros((3, 5, 5)))
    assert grey.shape == (11, 11, 1)


def test_gaussian_blur_equals_scipy():
    from scipy import ndimage

    images = random_images(2, n=2, size=9)
    for sigma in (0.5, 1.0):
        ref = ndimage.gaussian_filter(
            images.astype(np.float64), sigma=(0, sigma, sigma, 0), mode="nearest", truncate=3.0
        )
        np.testing.assert_allclose(visualize.gaussian_blur(images, sigma=sigma), ref, rtol=1e-5, atol=1e-6)


def test_tsne_embedding_separates_two_clusters():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (20, 5)), rng.normal(20, 1, (20, 5))])
    emb = visualize.tsne_embedding(x, perplexity=5)
    assert emb.shape == (40, 2)
    a, b = emb[:20].mean(0), emb[20:].mean(0)
    spread = max(emb[:20].std(0).max(), emb[20:].std(0).max())
    assert np.linalg.norm(a - b) > 3 * spread
    with pytest.raises(ValueError, match="perplexity: expected"):
        visualize.tsne_embedding(x, perplexity=40)
