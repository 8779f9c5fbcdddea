"""``load``: named TFDS datasets (mocked), determinism, slicing, sharding, errors."""

import itertools

import numpy as np
import pytest

from jax231 import pipelines

# One xdist worker runs this whole module (`--dist loadgroup`, pyproject.toml), so that
# the session's TFDS folder (builders prepared on first use) is prepared once, not once per worker.
pytestmark = pytest.mark.xdist_group("tfds_dir")

MOCK_EXAMPLES = 20


def _take(iterator, n):
    return list(itertools.islice(iterator, n))


def _values(batches):
    """The row index stored in each image of ``ordered_npz`` (pixel [1, 1, 0])."""
    return np.concatenate([b["image"][:, 1, 1, 0] for b in batches]).astype(int)


@pytest.mark.parametrize("name, shape", [("mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))])
def test_named_tfds_datasets_shapes_dtypes_counts(name, shape):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
        train = list(pipelines.load(name, "train", batch_size=8, shuffle=True, seed=0))
        test = list(pipelines.load(name, "test", batch_size=8))
        again = list(pipelines.load(name, "train", batch_size=8, shuffle=True, seed=0))
        other = list(pipelines.load(name, "train", batch_size=8, shuffle=True, seed=1))
    assert len(train) == MOCK_EXAMPLES // 8  # drop_remainder defaults to shuffle=True
    assert [len(b["label"]) for b in test] == [8, 8, 4]  # eval keeps the last partial batch
    for batch in train + test:
        assert batch["image"].shape[1:] == shape and batch["image"].dtype == np.float32
        assert batch["label"].dtype == np.int32
        assert 0.0 <= batch["image"].min() and batch["image"].max() <= 1.0  # uint8 / 255
    for a, b in zip(train, again):
        np.testing.assert_array_equal(a["image"], b["image"])
    assert not all(np.array_equal(a["image"], b["image"]) for a, b in zip(train, other))


def test_same_seed_same_order_other_seed_other_order_each_epoch(ordered_npz):
    run = lambda seed: _values(
        pipelines.load(  # noqa: E731
            ordered_npz, "train", batch_size=10, shuffle=True, seed=seed, num_epochs=2
        )
    )
    first, same, other = run(0), run(0), run(1)
    np.testing.assert_array_equal(first, same)
    assert not np.array_equal(first, other)
    epoch0, epoch1 = first[:100], first[100:]
    # Each epoch is a permutation of all rows, and the two epochs differ.
    np.testing.assert_array_equal(np.sort(epoch0), np.arange(100))
    np.testing.assert_array_equal(np.sort(epoch1), np.arange(100))
    assert not np.array_equal(epoch0, epoch1)
    assert not np.array_equal(epoch0, np.arange(100))


def test_tfds_source_is_deterministic_per_seed(tfds_dir):
    run = lambda seed: np.concatenate(
        [
            b["label"]
            for b in pipelines.load(  # noqa: E731
                "digits", "test", batch_size=50, shuffle=True, seed=seed, data_dir=tfds_dir
            )
        ]
    )
    np.testing.assert_array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


def test_num_epochs_none_repeats_forever(ordered_npz):
    batches = _take(pipelines.load(ordered_npz, "test", batch_size=7, shuffle=True, num_epochs=None), 20)
    assert len(batches) == 20 and all(len(b["label"]) == 7 for b in batches)


def test_train_and_validation_slices_are_disjoint(ordered_npz, tfds_dir):
    train = _values(pipelines.load(ordered_npz, "train[:90%]", batch_size=16))
    val = _values(pipelines.load(ordered_npz, "train[90%:]", batch_size=16))
    np.testing.assert_array_equal(train, np.arange(90))
    np.testing.assert_array_equal(val, np.arange(90, 100))
    # Same through TFDS (digits): no image row is in both slices.
    rows = lambda split: {
        b.tobytes()
        for batch in pipelines.load(  # noqa: E731
            "digits", split, batch_size=512, data_dir=tfds_dir
        )
        for b in batch["image"]
    }
    train_rows, val_rows = rows("train[:90%]"), rows("train[90%:]")
    assert not train_rows & val_rows and len(train_rows) > 1000 and len(val_rows) > 100


@pytest.mark.parametrize("count", [2, 3])
def test_shards_partition_the_split(ordered_npz, count):
    parts = [_values(pipelines.load(ordered_npz, "train[:90%]", batch_size=64, shard=(i, count))) for i in range(count)]
    np.testing.assert_array_equal(np.concatenate(parts), np.arange(90))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_preprocessing_statistics_come_from_the_training_slice_only(ordered_npz):
    """Would fail if the validation rows (values 90..99) entered the statistics."""
    val = list(
        pipelines.load(ordered_npz, "train[90%:]", batch_size=16, preprocess="per_channel", fit_split="train[:90%]")
    )
    train_values = np.arange(90, dtype=np.float64)  # float64 reference of the fit
    expected = (np.arange(90, 100) - train_values.mean()) / train_values.std()
    # float32 pipeline vs float64 reference: relative 1e-6.
    np.testing.assert_allclose(val[0]["image"][:, 0, 0, 0], expected, rtol=1e-6)
    with pytest.raises(ValueError, match="fit_split"):
        pipelines.load(ordered_npz, "train[90%:]", batch_size=16, preprocess="per_channel")


def test_augmentation_keeps_labels_and_eval_is_never_augmented(ordered_npz):
    batches = list(
        pipelines.load(
            ordered_npz, "train", batch_size=10, shuffle=True, augment={"pad_crop": 1, "flip": True, "cutout": 0}
        )
    )
    for batch in batches:
        assert batch["image"].shape == (10, 4, 4, 3)
        # With padding 1 the pixel [1, 1] always comes from inside the image,
        # unless flipped, when [1, 2] does: both hold the row index.
        np.testing.assert_array_equal(_values([batch]) % 5, batch["label"])
    plain = np.concatenate([b["image"] for b in pipelines.load(ordered_npz, "test", batch_size=8)])
    np.testing.assert_array_equal(plain, pipelines.load_arrays(ordered_npz, "test")["image"])
    with pytest.raises(ValueError, match="training pipelines only"):
        pipelines.load(ordered_npz, "test", batch_size=8, augment=True)


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar_10'.*cifar10"):
        pipelines.load("cifar_10", "train", batch_size=8)
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist_1d'.*mnist1d"):
        pipelines.load_arrays("mnist_1d", "train")


def test_unprepared_dataset_says_how_to_prepare_it(tmp_path):
    with pytest.raises(ValueError, match=r"not prepared.*tfds build fashion_mnist"):
        pipelines.load("fashion_mnist", "train", batch_size=8, data_dir=str(tmp_path))


def test_shared_cifar_missing_says_how_to_prepare_it(tmp_path, monkeypatch):
    monkeypatch.setenv("JAX231_CIFAR10_ARCHIVE", str(tmp_path / "absent.tar.gz"))
    with pytest.raises(FileNotFoundError, match="cifar10-jpeg.tar.gz"):
        pipelines.load_arrays("cifar10_shared", "test", data_dir=str(tmp_path))


def test_empty_split_is_an_error(ordered_npz, tfds_dir):
    with pytest.raises(ValueError, match="empty"):
        pipelines.load(ordered_npz, "train[5:5]", batch_size=8)
    with pytest.raises(ValueError, match="empty"):
        pipelines.load("digits", "train[5:5]", batch_size=8, data_dir=tfds_dir)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"batch_size": 8, "num_epochs": 0}, "num_epochs"),
        ({"batch_size": 8, "shard": (2, 2)}, "shard"),
        ({"batch_size": 8, "augment": {"zoom": 2}}, "augment"),
        ({"batch_size": 200, "shuffle": True}, "exceeds"),
    ],
)
def test_bad_options(ordered_npz, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pipelines.load(ordered_npz, "train", **kwargs)


def test_same_seed_same_order_in_a_fresh_process(ordered_npz):
    """The order depends on the seed only, not on the process (no hidden global state)."""
    import subprocess
    import sys
    import textwrap

    from tests import test_utils

    code = f"""
        from jax231 import pipelines
        batch = next(pipelines.load({ordered_npz!r}, "train", batch_size=10, shuffle=True, seed=7,
                                    augment=True))
        print(batch["image"][:, 1, 1, 0].astype(int).tolist(), float(batch["image"].sum()))
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=test_utils.REPO_ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    here = next(pipelines.load(ordered_npz, "train", batch_size=10, shuffle=True, seed=7, augment=True))
    assert proc.stdout.strip() == f"{here['image'][:, 1, 1, 0].astype(int).tolist()} {float(here['image'].sum())}"


def test_tensorflow_is_kept_off_gpus():
    import tensorflow as tf

    from jax231.pipelines import _loader  # noqa: F401  (hides GPUs at import)

    assert tf.config.get_visible_devices("GPU") == []
