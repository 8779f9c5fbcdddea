"""The CIFAR-10 JPEG copy in ../shared/datasets (skipped when that folder is absent)."""

import numpy as np
import pytest

from jax231 import pipelines
from jax231.pipelines import _arrays, _common
from tests import test_utils

pytestmark = [test_utils.requires_shared_cifar10, pytest.mark.shared_data]


def test_archive_checksum_and_extracted_layout():
    assert _common.sha256_of(test_utils.CIFAR10_ARCHIVE) == _common.CIFAR10_SHA256
    root = _common.extract_cifar10_shared()
    assert not str(root).startswith(str(test_utils.REPO_ROOT))  # never into the repo
    examples, classes = _arrays.imagefolder_examples(str(root))
    assert tuple(classes) == _common.CIFAR10_CLASSES
    assert {k: len(v) for k, v in examples.items()} == {"train": 50_000, "test": 10_000}


def test_test_split_arrays_and_pixels():
    import tensorflow as tf

    test = pipelines.load_arrays("cifar10_shared", "test")
    assert test["image"].shape == (10_000, 32, 32, 3) and test["image"].dtype == np.float32
    np.testing.assert_array_equal(np.bincount(test["label"]), [1000] * 10)
    # Pixels against TensorFlow's accurate JPEG decoder, exactly (a sample).
    examples, classes = _arrays.imagefolder_examples(str(_common.extract_cifar10_shared()))
    for i in (0, 4321, 9999):
        path, label = examples["test"][i]
        ref = tf.io.decode_jpeg(tf.io.read_file(path), dct_method="INTEGER_ACCURATE").numpy()
        np.testing.assert_array_equal(np.round(test["image"][i] * 255).astype(np.uint8), ref)
        assert classes[test["label"][i]] == label
    info = pipelines.info("cifar10_shared")
    assert info.num_classes == 10 and info.image_shape == (32, 32, 3)


def test_training_pipeline_with_augmentation():
    batches = list(
        pipelines.load(
            "cifar10_shared",
            "train[:1%]",
            batch_size=128,
            shuffle=True,
            seed=0,
            augment=pipelines.Augment(pad_crop=4, flip=True, cutout=8),
        )
    )
    assert len(batches) == 500 // 128
    for b in batches:
        assert b["image"].shape == (128, 32, 32, 3) and b["label"].dtype == np.int32
