"""HOG against skimage.feature.hog on the same images with the same cell/block settings."""

import jax
import numpy as np
import pytest
from skimage import feature as skfeature

from jax231 import features
from tests import test_utils


def _image(seed, shape):
    # Smooth structure plus noise, so that gradients span all orientations.
    rng = np.random.default_rng(seed)
    rows, cols = np.meshgrid(np.linspace(0, 3, shape[0]), np.linspace(0, 3, shape[1]), indexing="ij")
    base = np.sin(2 * rows + cols) + 0.5 * np.cos(rows * cols)
    if len(shape) == 3:
        base = base[..., None] * rng.uniform(0.5, 1.5, shape[2])
    return np.clip((base + 0.3 * rng.normal(size=shape) + 2.0) / 4.0, 0.0, 1.0)


SETTINGS = [
    dict(orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2), block_norm="L2-Hys"),
    dict(orientations=9, pixels_per_cell=(4, 4), cells_per_block=(3, 3), block_norm="L2"),
    dict(orientations=6, pixels_per_cell=(4, 8), cells_per_block=(1, 2), block_norm="L1"),
    dict(orientations=12, pixels_per_cell=(8, 4), cells_per_block=(2, 1), block_norm="L1-sqrt"),
    dict(orientations=9, pixels_per_cell=(8, 8), cells_per_block=(1, 1), block_norm="L2-Hys", transform_sqrt=True),
]


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("shape", [(32, 32), (32, 32, 3)])
def test_hog_equals_skimage_float64(settings, shape):
    image = _image(len(shape) + settings["orientations"], shape)
    ref = skfeature.hog(image, channel_axis=-1 if len(shape) == 3 else None, feature_vector=True, **settings)
    with test_utils.x64():
        got = features.hog(image, **settings)
    # Same bins (same float64 angles and bin-edge comparisons); skimage's Cython sums each cell in
    # a C float (float32), so the reference carries float32 rounding: ~1e-7 relative.
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-6, atol=1e-7)


def test_hog_float32_jitted_vmapped_close_to_skimage():
    images = np.stack([_image(s, (32, 32)) for s in range(4)]).astype(np.float32)
    fn = jax.jit(jax.vmap(lambda im: features.hog(im, pixels_per_cell=8, cells_per_block=2)))
    got = np.asarray(fn(images))
    ref = np.stack(
        [skfeature.hog(im.astype(np.float64), pixels_per_cell=(8, 8), cells_per_block=(2, 2)) for im in images]
    )
    # float32 angles may move a pixel whose orientation lies within ~1e-5 degrees of a bin edge;
    # none does in these images, so only float32 rounding (~1e-6 relative) remains.
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_raw_cell_histograms_are_mean_magnitudes_per_bin():
    image = _image(7, (16, 16))
    with test_utils.x64():
        cells = np.asarray(features.hog_cells(image, orientations=9, pixels_per_cell=8))
        g_row, g_col = (np.asarray(g) for g in features.image_gradients(image))
    magnitude = np.hypot(g_row, g_col)
    # Every cell's histogram sums to the mean gradient magnitude of its pixels.
    np.testing.assert_allclose(cells.sum(-1), magnitude.reshape(2, 8, 2, 8).mean(axis=(1, 3)), rtol=1e-12)
    assert features.hog(image, block_norm=None).shape == (2 * 2 * 9,)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"pixels_per_cell": (5, 8)}, "pixels_per_cell: expected sizes dividing the image"),
        ({"pixels_per_cell": 0}, "pixels_per_cell: expected a positive int"),
        ({"cells_per_block": (5, 5)}, "cells_per_block: expected at most the cell grid"),
        ({"block_norm": "L3"}, "block_norm: expected one of"),
        ({"orientations": 0}, "orientations: expected an int >= 1"),
    ],
)
def test_bad_settings_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        features.hog(np.zeros((32, 32)), **kwargs)
