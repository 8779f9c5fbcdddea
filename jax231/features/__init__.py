"""Hand-designed image features of CS231n assignment 1: HOG and HSV colour histograms.

* :func:`hog`, :func:`hog_cells`, :func:`image_gradients` -- histograms of oriented
  gradients as ``skimage.feature.hog`` computes them (tested against it).
* :func:`rgb_to_hsv`, :func:`rgb_to_gray`, :func:`color_histogram_hsv` -- colour.
* :func:`extract_features`, :func:`standardize_features` -- over a dataset.

Examples:
  >>> from jax231 import features
  >>> fns = [lambda im: features.hog(features.rgb_to_gray(im), pixels_per_cell=8, cells_per_block=2),
  ...        lambda im: features.color_histogram_hsv(im, num_bins=10)]
  >>> x = features.extract_features(images, fns)
"""

from jax231.features._color import (
    GRAY_WEIGHTS,
    color_histogram_hsv,
    rgb_to_gray,
    rgb_to_hsv,
)
from jax231.features._extract import extract_features, standardize_features
from jax231.features._hog import BLOCK_NORMS, hog, hog_cells, image_gradients

__all__ = [
    "BLOCK_NORMS",
    "GRAY_WEIGHTS",
    "color_histogram_hsv",
    "extract_features",
    "hog",
    "hog_cells",
    "image_gradients",
    "rgb_to_gray",
    "rgb_to_hsv",
    "standardize_features",
]
