"""Bad data never trains silently: through ``fit`` and through the loaders (``npz:``, ``imagefolder:``, splits).

Each row is one bad split; the error must be a one-line ``ValueError`` (or
``FileNotFoundError`` for a missing path) naming the split, what was wrong and,
for bad values, the index of the first bad example. Then the divergence edge
cases: a non-finite update anywhere (first, mid-run, on a checkpoint boundary,
the very last) ends ``diverged`` with the last good state, and no checkpoint on
disk ever holds a non-finite value.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jax231 import models, optimizers, pipelines, training

C = 10
MLP = models.get("mlp", hidden_sizes=(16,), num_classes=C)
SGD = optimizers.sgd(learning_rate=0.05)
DIGITS = pipelines.load_arrays("digits", "train[:128]")
X, Y = DIGITS["image"], DIGITS["label"]


def _with(array, index, value):
    out = np.array(array, copy=True)
    out[index] = value
    return out


def _fit(train, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return training.fit(MLP, SGD, train=train, num_steps=4, batch_size=32, eval_every=2, **kw)


FIT_CASES = [
    (
        "nan_pixel",
        {"image": _with(X, (5, 1, 2, 0), np.nan), "label": Y},
        {},
        r"train images: .*finite.*nan in example 5",
    ),
    ("inf_pixel", {"image": _with(X, (9, 0, 0, 0), np.inf), "label": Y}, {}, r"train images: .*inf in example 9"),
    ("minus_inf_pixel", {"image": _with(X, (0, 3, 3, 0), -np.inf), "label": Y}, {}, r"-inf in example 0"),
    ("label_equal_C", {"image": X, "label": _with(Y, 7, C)}, {}, r"train labels: .*\[0, 10\), got 10 at index 7"),
    ("label_far_above_C", {"image": X, "label": _with(Y, 3, 255)}, {}, r"got 255 at index 3"),
    ("label_minus_one", {"image": X, "label": _with(Y, 4, -1)}, {}, r">= 0, got -1 at index 4"),
    ("float_labels_fractional", {"image": X, "label": Y + 0.5}, {}, r"integer class indices, got 0\.5 at index 0"),
    ("float_label_nan", {"image": X, "label": _with(Y.astype(np.float32), 2, np.nan)}, {}, r"integer.*index 2"),
    ("one_hot_labels", {"image": X, "label": np.eye(C)[Y]}, {}, r"one-hot"),
    ("labels_column", {"image": X, "label": Y[:, None]}, {}, r"train labels: expected shape \(128,\)"),
    ("bool_labels", {"image": X, "label": Y > 4}, {}, r"dtype bool"),
    ("string_labels", {"image": X, "label": Y.astype(str)}, {}, r"train labels: expected a numeric array"),
    ("string_images", {"image": X.astype(str), "label": Y}, {}, r"train images: expected a numeric array"),
    ("object_images", {"image": np.array([None] * 128, dtype=object), "label": Y}, {}, r"numeric array"),
    ("fewer_labels", {"image": X, "label": Y[:-1]}, {}, r"as many labels as images"),
    ("empty", {"image": X[:0], "label": Y[:0]}, {}, r"at least one example"),
    ("missing_label_key", {"image": X}, {}, r"'image' and 'label'"),
    (
        "val_nan_pixel",
        {"image": X, "label": Y},
        {"val": {"image": _with(X, (1, 0, 0, 0), np.nan), "label": Y}},
        r"val images: .*nan in example 1",
    ),
    (
        "val_label_equal_C",
        {"image": X, "label": Y},
        {"val": {"image": X, "label": _with(Y, 0, C)}},
        r"val labels: .*got 10 at index 0",
    ),
    (
        "iterator_first_batch_nan",
        iter([{"image": _with(X[:32], (3, 0, 0, 0), np.nan), "label": Y[:32]}]),
        {},
        r"train images: .*nan in example 3",
    ),
    (
        "iterator_first_batch_label_C",
        iter([{"image": X[:32], "label": _with(Y[:32], 1, C)}]),
        {},
        r"train labels: .*got 10 at index 1",
    ),
]


@pytest.mark.parametrize("train, kw, match", [c[1:] for c in FIT_CASES], ids=[c[0] for c in FIT_CASES])
def test_fit_refuses_bad_data_in_one_line(train, kw, match):
    with pytest.raises(ValueError, match=match) as info:
        _fit(train, **kw)
    assert "\n" not in str(info.value)


def test_the_finite_check_has_an_explicit_opt_out_and_the_guard_still_fires():
    bad = {"image": _with(X, (5, 1, 2, 0), np.nan), "label": Y}
    result = _fit(bad, guards=training.Guards(check_finite_inputs=False))
    assert result.status == "diverged"
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree_util.tree_leaves(result.state.params))


# ------------------------------------------------------------------------------ loaders
def _npz(tmp_path, name, **arrays):
    path = tmp_path / f"{name}.npz"
    np.savez(path, **arrays)
    return f"npz:{path}"


_x = np.random.default_rng(0).random((12, 6, 6, 1)).astype(np.float32)
_y = np.arange(12) % 3

NPZ_CASES = [
    (
        "nan_pixel",
        {"x_train": _with(_x, (4, 1, 1, 0), np.nan), "y_train": _y},
        r"split 'train' images: .*nan in example 4",
    ),
    ("inf_pixel", {"x_train": _with(_x, (2, 0, 0, 0), np.inf), "y_train": _y}, r"inf in example 2"),
    ("label_minus_one", {"x_train": _x, "y_train": _with(_y, 6, -1)}, r"split 'train' labels: .*-1 at index 6"),
    ("float_labels", {"x_train": _x, "y_train": _y + 0.25}, r"integer class indices, got 0\.25 at index 0"),
    ("one_hot", {"x_train": _x, "y_train": np.eye(3)[_y]}, r"one-hot"),
    ("string_images", {"x_train": np.full((12, 4), "a"), "y_train": _y}, r"images: expected a numeric array"),
    (
        "pickled_object_array",
        {"x_train": np.array([_x[0], "code"], dtype=object), "y_train": _y[:2]},
        r"pickled object array 'x_train' \(refused",
    ),
    ("no_known_keys", {"a": _x}, r"expected x_train/y_train"),
    ("rows_differ", {"x_train": _x, "y_train": _y[:5]}, r"12 rows but y_train has 5"),
    (
        "test_split_bad_too",
        {"x_train": _x, "y_train": _y, "x_test": _x, "y_test": _with(_y, 0, -3)},
        r"split 'test' labels: .*-3 at index 0",
    ),
]


@pytest.mark.parametrize("arrays, match", [c[1:] for c in NPZ_CASES], ids=[c[0] for c in NPZ_CASES])
def test_npz_loader_refuses_bad_files_in_one_line(tmp_path, arrays, match):
    with pytest.raises(ValueError, match=match) as info:
        pipelines.load_arrays(_npz(tmp_path, "data", **arrays), "train")
    assert "\n" not in str(info.value)


def test_npz_integral_float_labels_and_column_labels_are_read(tmp_path):
    out = pipelines.load_arrays(_npz(tmp_path, "ok", x_train=_x, y_train=_y.astype(np.float64)[:, None]), "train")
    np.testing.assert_array_equal(out["label"], _y)
    assert out["label"].dtype == np.int32


def _write_pickle(path):
    import pickle  # noqa: PLC0415  only to WRITE the hostile file the loader must refuse

    with open(path, "wb") as f:
        pickle.dump({"x_train": _x}, f)


FILE_CASES = [
    ("missing_npz", lambda p: "npz:" + str(p / "missing.npz"), FileNotFoundError, r"existing \.npz"),
    ("truncated_zip", lambda p: _damaged(p, b"PK\x03\x04\x14\x00"), ValueError, r"readable \.npz"),
    ("not_a_zip", lambda p: _damaged(p, b"hello, I am text"), ValueError, r"\.npz"),
    (
        "a_pickle_file",
        lambda p: (_write_pickle(p / "p.npz"), "npz:" + str(p / "p.npz"))[1],
        ValueError,
        r"a pickle \(refused",
    ),
    ("missing_folder", lambda p: "imagefolder:" + str(p / "nowhere"), FileNotFoundError, r"image folder"),
    ("corrupt_image", lambda p: _folder(p, corrupt=True), ValueError, r"corrupt image file"),
    ("mixed_image_shapes", lambda p: _folder(p, mixed=True), ValueError, r"differ in shape"),
]


def _damaged(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    return f"npz:{path}"


def _folder(tmp_path, *, corrupt=False, mixed=False):
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / "f" / "train" / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8)).save(tmp_path / "f" / "train" / label / "0.png")
    if corrupt:
        (tmp_path / "f" / "train" / "a" / "1.png").write_bytes(b"\x89PNG broken")
    if mixed:
        Image.fromarray(np.zeros((9, 8, 3), np.uint8)).save(tmp_path / "f" / "train" / "b" / "1.png")
    return f"imagefolder:{tmp_path / 'f'}"


@pytest.mark.parametrize("make, error, match", [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_bad_files_and_folders_are_one_line(tmp_path, make, error, match):
    with pytest.raises(error, match=match) as info:
        pipelines.load_arrays(make(tmp_path), "train")
    assert "\n" not in str(info.value)


SPLIT_CASES = [
    ("misspelt", "trian", r"not one of the available splits"),
    ("bad_slice", "train[:abc]", r"TFDS slicing"),
    ("empty_slice", "train[5:2]", r"empty"),
    ("percent_out_of_range", "train[:200%]", r"\[-100, 100\]"),
    ("unclosed", "train[:10", r"split"),
    ("empty_string", "", r"split"),
]


@pytest.mark.parametrize("split, match", [c[1:] for c in SPLIT_CASES], ids=[c[0] for c in SPLIT_CASES])
def test_bad_split_strings_are_one_line(split, match):
    with pytest.raises(ValueError, match=match) as info:
        pipelines.load_arrays("digits", split)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------ divergence
class PoisonState(NamedTuple):
    count: jax.Array


def poisoned_sgd(at: int, learning_rate: float = 0.05) -> optimizers.GradientTransformation:
    """SGD whose update number ``at`` (0-based) is NaN: an explosion at a chosen step."""

    def init(params):
        return PoisonState(jnp.zeros((), jnp.int32))

    def update(grads, state, params=None, **extra):
        scale = jnp.where(state.count == at, jnp.nan, -learning_rate)
        return jax.tree_util.tree_map(lambda g: scale * g, grads), PoisonState(state.count + 1)

    return optimizers.GradientTransformation(init, update)


@pytest.mark.parametrize("at", [0, 3, 9, 10, 19], ids=["first", "mid", "before_ckpt", "on_ckpt", "last"])
def test_explosion_anywhere_is_diverged_and_never_checkpointed(tmp_path, at):
    opt = poisoned_sgd(at)
    kw = {
        "train": DIGITS,
        "num_steps": 20,
        "batch_size": 32,
        "eval_every": 5,
        "checkpoint_every": 10,
        "workdir": str(tmp_path),
        "check_initial_loss": False,
        "max_to_keep": None,
    }
    result = training.fit(MLP, opt, **kw)
    assert result.status == "diverged", result.message
    # The last good state: fit judges update s on the parameters w_s that update s - 1 made, so it
    # keeps w_{s-1} (here one step more conservative than needed: the bad update itself is at).
    assert int(result.state.step) == max(at - 1, 0)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(result.state.params))
    ckpt = training.Checkpointer(tmp_path, max_to_keep=None)
    try:
        for step in ckpt.all_steps():
            state, _, _ = ckpt.restore(result.state, step=step)
            assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(state.params)), step
    finally:
        ckpt.close()
    again = training.fit(MLP, opt, **kw)  # a rerun never calls a bad state good
    assert again.status == "diverged"
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(again.state.params))
