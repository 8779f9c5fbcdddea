"""Offline datasets: mnist1d, digits, npz and image folders, with and without TFDS."""

import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from jax231 import pipelines
from jax231.pipelines import _arrays, _common
from tests import test_utils

# One xdist worker runs this whole module (`--dist loadgroup`, pyproject.toml), so that
# the session's TFDS folder (builders prepared on first use) is prepared once, not once per worker.
pytestmark = pytest.mark.xdist_group("tfds_dir")


def test_mnist1d_equals_the_package_exactly():
    from mnist1d.data import get_dataset_args, make_dataset

    ref = make_dataset(get_dataset_args())
    train = pipelines.load_arrays("mnist1d", "train")
    test = pipelines.load_arrays("mnist1d", "test")
    assert train["image"].shape == (4000, 40, 1) and test["image"].shape == (1000, 40, 1)
    # Exact equality after the documented float64 -> float32 cast.
    np.testing.assert_array_equal(train["image"][..., 0], ref["x"].astype(np.float32))
    np.testing.assert_array_equal(test["image"][..., 0], ref["x_test"].astype(np.float32))
    np.testing.assert_array_equal(train["label"], ref["y"])
    np.testing.assert_array_equal(test["label"], ref["y_test"])
    assert train["label"].dtype == np.int32


def test_mnist1d_generation_is_side_effect_free():
    """Global NumPy/Python random states are restored and nothing lands in the repo."""
    before = set(os.listdir(test_utils.REPO_ROOT))
    _arrays.mnist1d_raw.cache_clear()
    np.random.seed(123)
    random.seed(123)
    expected_np, expected_py = np.random.rand(), random.random()
    np.random.seed(123)
    random.seed(123)
    pipelines.load_arrays("mnist1d", "test")
    assert np.random.rand() == expected_np and random.random() == expected_py
    assert set(os.listdir(test_utils.REPO_ROOT)) == before


def test_digits_split_is_fixed_disjoint_and_complete():
    from sklearn.datasets import load_digits

    ref = load_digits()
    train, test = pipelines.load_arrays("digits", "train"), pipelines.load_arrays("digits", "test")
    assert len(train["label"]) == 1437 and len(test["label"]) == 360
    flat = lambda a: (a["image"][..., 0] * 16).round().reshape(len(a["label"]), 64)  # noqa: E731
    # Together the two splits are sklearn's digits (as multisets of rows).
    all_rows = np.concatenate([np.c_[flat(train), train["label"]], np.c_[flat(test), test["label"]]])
    ref_rows = np.c_[ref.data, ref.target]
    np.testing.assert_array_equal(np.unique(all_rows, axis=0), np.unique(ref_rows, axis=0))
    assert len(all_rows) == len(ref_rows)
    # Stratified: every class holds 35-37 of the 360 test digits.
    assert np.bincount(test["label"]).min() >= 35 and np.bincount(test["label"]).max() <= 37
    assert train["image"].dtype == np.float32 and 0 <= train["image"].min() and train["image"].max() <= 1


@pytest.mark.parametrize("name", ["mnist1d", "digits"])
def test_offline_builders_are_real_tfds_datasets(name, tfds_dir):
    import tensorflow_datasets as tfds

    assert name in tfds.list_builders()
    ds = tfds.load(name, split="test", data_dir=tfds_dir, batch_size=-1)
    got = tfds.as_numpy(ds)
    ref = pipelines.load_arrays(name, "test")
    np.testing.assert_array_equal(got["image"], ref["image"])
    np.testing.assert_array_equal(got["label"], ref["label"])


@pytest.mark.parametrize("split", ["train[:90%]", "train[90%:]", "train[10:33]", "test[-7%:]"])
@pytest.mark.parametrize("shard", [None, (1, 3)])
def test_load_arrays_slices_like_tfds(split, shard, tfds_dir):
    """Our TFDS-grammar slicing (TF-free) picks the examples TFDS picks."""
    via_tfds = list(pipelines.load("digits", split, batch_size=4096, data_dir=tfds_dir, shard=shard))[0]
    local = pipelines.load_arrays("digits", split, shard=shard)
    np.testing.assert_array_equal(via_tfds["label"], local["label"])
    np.testing.assert_array_equal(via_tfds["image"], local["image"])


def test_npz_layouts(tmp_path):
    keras = tmp_path / "keras.npz"
    np.savez(
        keras,
        x_train=np.zeros((5, 3, 3), np.uint8) + 255,
        y_train=np.arange(5),
        x_test=np.zeros((2, 3, 3), np.uint8),
        y_test=np.arange(2),
    )
    arrays = pipelines.load_arrays(f"npz:{keras}", "train")
    assert arrays["image"].shape == (5, 3, 3, 1) and arrays["image"].dtype == np.float32
    np.testing.assert_array_equal(arrays["image"], 1.0)  # uint8 255 -> 1.0
    flat = tmp_path / "flat.npz"
    np.savez(flat, image=np.ones((4, 7), np.float32), label=np.arange(4))
    info = pipelines.info(f"npz:{flat}")
    assert info.image_shape == (7, 1) and info.splits == {"train": 4} and info.num_classes == 4
    bad = tmp_path / "bad.npz"
    np.savez(bad, a=np.ones(3))
    with pytest.raises(ValueError, match="x_train/y_train"):
        pipelines.load_arrays(f"npz:{bad}", "train")


def test_image_folder_matches_tfds_image_folder(image_folder):
    """Same order, labels and pixels as tfds.ImageFolder (the reference)."""
    import tensorflow_datasets as tfds

    builder = tfds.ImageFolder(image_folder)
    for split in ("train", "test"):
        ref = tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False, batch_size=-1))
        ours = pipelines.load_arrays(f"imagefolder:{image_folder}", split)
        np.testing.assert_array_equal(ours["label"], ref["label"])
        np.testing.assert_array_equal(ours["image"], ref["image"] / np.float32(255))
    info = pipelines.info(f"imagefolder:{image_folder}")
    assert info.class_names == ("cat", "dog", "emu") and info.splits == {"test": 4, "train": 7}
    assert info.image_shape == (6, 5, 3)


def test_corrupt_image_error_names_the_file(image_folder, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(image_folder, root)
    victim = sorted((root / "train" / "dog").iterdir())[0]
    victim.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(ValueError, match=f"corrupt image file {victim}"):
        pipelines.load_arrays(f"imagefolder:{root}", "train")
    with pytest.raises(ValueError, match=str(victim)):
        pipelines.load(f"imagefolder:{root}", "train", batch_size=2)


def test_offline_sources_need_no_tensorflow(ordered_npz, image_folder):
    """load_arrays for the offline sources runs with TensorFlow made unimportable.

    (mnist1d shares the digits code path; it is left out to keep the test fast.)
    """
    code = f"""
        import sys
        sys.modules['tensorflow'] = None  # import tensorflow -> ImportError
        sys.modules['tensorflow_datasets'] = None
        import jax231.pipelines as p
        shapes = [p.load_arrays(n, 'train[:50%]')['image'].shape for n in
                  ('digits', {ordered_npz!r}, 'imagefolder:{image_folder}')]
        print(shapes)
        for bad in ('mnistt', 'cifar10'):
            try:
                p.load_arrays(bad, 'train')
            except ValueError as e:
                print('ERR', e)
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=test_utils.REPO_ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "[(718, 8, 8, 1), (50, 4, 4, 3), (4, 6, 5, 3)]" in proc.stdout
    unknown = next(line for line in proc.stdout.splitlines() if "'mnistt'" in line)
    assert "Close matches: [" in unknown and "'mnist1d'" in unknown and "'mnist'" in unknown
    assert "ERR name: 'cifar10' is a TFDS dataset but tensorflow_datasets is not installed" in proc.stdout


def test_split_grammar_errors():
    sizes = {"train": 10}
    with pytest.raises(ValueError, match="split: .* is empty"):
        _common.split_indices("train[5:5]", sizes)
    with pytest.raises(ValueError, match="available splits"):
        _common.split_indices("validation", sizes)
    with pytest.raises(ValueError, match="TFDS slicing"):
        _common.split_indices("train[::2]", sizes)
    with pytest.raises(ValueError, match="shard"):
        _common.split_indices("train", sizes, shard=(3, 3))
    # TFDS rounds 25% of 10 = 2.5 to the closest integer, half to even: 2.
    np.testing.assert_array_equal(_common.split_indices("train[:25%]", sizes)[1], [0, 1])
