"""HSV conversion and colour histograms against matplotlib/NumPy (float64 references)."""

import matplotlib.colors
import numpy as np
import pytest

from jax231 import features
from tests import test_utils


def _images(seed):
    rng = np.random.default_rng(seed)
    smooth = rng.uniform(size=(2, 16, 16, 3))
    # Quantised pixels (as JPEG/uint8 images have): ties between channels, grey pixels, black.
    quantised = rng.integers(0, 4, size=(2, 16, 16, 3)) / 3.0
    return np.concatenate([smooth, quantised])


def test_rgb_to_hsv_equals_matplotlib():
    images = _images(0)
    with test_utils.x64():
        got = np.asarray(features.rgb_to_hsv(images))
    np.testing.assert_allclose(got, matplotlib.colors.rgb_to_hsv(images), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("channels", [("h",), ("h", "s", "v")])
def test_color_histogram_equals_course_numpy(channels):
    # The course's color_histogram_hsv: np.histogram(density=True) * bin widths on matplotlib's HSV.
    for image in _images(1):
        hsv = matplotlib.colors.rgb_to_hsv(image)
        bins = np.linspace(0, 1, 11)
        ref = []
        for c in channels:
            hist, edges = np.histogram(hsv[..., "hsv".index(c)], bins=bins, density=True)
            ref.append(hist * np.diff(edges))
        with test_utils.x64():
            got = np.asarray(features.color_histogram_hsv(image, num_bins=10, channels=channels))
        np.testing.assert_allclose(got, np.concatenate(ref), rtol=1e-12, atol=1e-12)


def test_gray_and_extract_features():
    images = _images(2).astype(np.float32)
    np.testing.assert_allclose(
        np.asarray(features.rgb_to_gray(images)), images @ np.asarray(features.GRAY_WEIGHTS), rtol=1e-6
    )
    fns = [
        lambda im: features.hog(features.rgb_to_gray(im), pixels_per_cell=8, cells_per_block=1),
        lambda im: features.color_histogram_hsv(im),
    ]
    x = features.extract_features(images, fns, batch_size=3)  # 4 images: one padded batch
    assert x.shape == (4, 2 * 2 * 9 + 10)
    np.testing.assert_allclose(x[1, 36:], np.asarray(features.color_histogram_hsv(images[1])), rtol=1e-6)
    train, other = features.standardize_features(x, x[:2])
    np.testing.assert_allclose(train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(other, train[:2], rtol=1e-6)  # the training statistics, applied


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: features.rgb_to_hsv(np.zeros((4, 4))), "rgb: expected RGB"),
        (lambda: features.color_histogram_hsv(np.zeros((4, 4, 3)), num_bins=0), "num_bins: expected"),
        (lambda: features.color_histogram_hsv(np.zeros((4, 4, 3)), channels=("x",)), "channels: expected"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
