"""Input pipelines: dataset names -> batches for JAX.

* :func:`load` -- TFDS / tf.data batches with shuffling, slicing, sharding,
  augmentation and preprocessing (TensorFlow imported on first call, kept off
  the GPUs).
* :func:`load_arrays`, :func:`info` -- whole splits in memory and metadata,
  without TensorFlow for the offline datasets.
* Offline datasets registered as TFDS builders when TFDS is installed:
  ``mnist1d`` and ``digits`` (``tfds.load('mnist1d')`` works after importing
  this package); ``cifar10_shared``, ``imagefolder:<path>``, ``npz:<path>``.
* :func:`fit_preprocessing` / :func:`apply_preprocessing` -- the notes'
  mean-image, per-channel, PCA and whitening, fitted on training data only.
* :func:`rand_augment` -- RandAugment-style random composition of those ops;
  :func:`affine_warp` / :func:`affine_matrix` -- the bilinear warp behind
  rotation, scale, stretch and shear.
* :func:`augment_batch` -- on-device augmentation, the measured faster placement
  (:data:`AUGMENT_PLACEMENT`); ``load(augment=...)`` has a tf.data twin.
* :func:`device_epochs`, :func:`shard_batch`, :func:`global_batch` -- batches
  on and across devices.
"""

from jax231.pipelines._api import load
from jax231.pipelines._arrays import info, load_arrays
from jax231.pipelines._augment import AUGMENT_PLACEMENT, Augment, augment_batch
from jax231.pipelines._captions import WORDS as CAPTION_WORDS
from jax231.pipelines._captions import caption_dataset, caption_text, decode_caption, encode_caption
from jax231.pipelines._common import DatasetInfo
from jax231.pipelines._device import (
    DeviceDataset,
    device_epochs,
    epoch_indices,
    gather_batch,
    global_batch,
    shard_batch,
    to_device,
)
from jax231.pipelines._flips import alternate_flips, alternating_flip_fn, flip_half, flip_pairs
from jax231.pipelines._preprocessing import Preprocessing, apply_preprocessing, fit_preprocessing
from jax231.pipelines._randaugment import rand_augment
from jax231.pipelines._sources import SOURCES, Source, source
from jax231.pipelines._warp import affine_matrix, affine_warp, bilinear_sample

try:  # Register the offline TFDS builders (TFDS imports TensorFlow lazily).
    from jax231.pipelines import _builders  # noqa: F401
except ImportError:  # No TFDS: load_arrays still serves the offline datasets.
    pass

__all__ = [
    "CAPTION_WORDS",
    "caption_dataset",
    "caption_text",
    "decode_caption",
    "encode_caption",
    "AUGMENT_PLACEMENT",
    "SOURCES",
    "Source",
    "Augment",
    "DatasetInfo",
    "DeviceDataset",
    "Preprocessing",
    "affine_matrix",
    "affine_warp",
    "apply_preprocessing",
    "augment_batch",
    "bilinear_sample",
    "device_epochs",
    "epoch_indices",
    "fit_preprocessing",
    "alternate_flips",
    "alternating_flip_fn",
    "flip_half",
    "flip_pairs",
    "gather_batch",
    "global_batch",
    "info",
    "load",
    "load_arrays",
    "rand_augment",
    "shard_batch",
    "source",
    "to_device",
]
