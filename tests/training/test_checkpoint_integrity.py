"""Checkpoints are verified: corrupt ones are reported and passed over, mismatched ones refused."""

from __future__ import annotations

import os
import pathlib
import warnings

import chex
import jax
import numpy as np
import pytest

from jax231 import models, optimizers, training

MODEL = models.get("mlp", hidden_sizes=(8,), num_classes=3)
OPT = optimizers.adam(learning_rate=1e-3)


def _state(seed: int, model=MODEL):
    return training.create_train_state(model, OPT, rng=jax.random.key(seed), input_shape=(4,))


def _write(workdir: pathlib.Path, steps=(1, 2), config=None) -> dict[int, training.TrainState]:
    ckpt = training.Checkpointer(workdir, max_to_keep=None)
    states = {}
    for step in steps:
        states[step] = _state(step)
        ckpt.save(step, states[step], {"step": step}, best_state=states[step], config=config)
    ckpt.close()
    return states


def _restore(workdir: pathlib.Path, **kw):
    ckpt = training.Checkpointer(workdir, max_to_keep=None)
    try:
        state, loop, best = ckpt.restore(_state(0), with_best=True, **kw)
        return state, loop, best, ckpt.skipped
    finally:
        ckpt.close()


def _data_files(workdir: pathlib.Path, step: int) -> list[pathlib.Path]:
    root = workdir / "checkpoints" / str(step) / "state"
    return sorted(
        (p for p in root.rglob("*") if p.is_file() and p.parent.name == "d"),
        key=lambda p: p.stat().st_size,
        reverse=True,
    )


def _truncate(path: pathlib.Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _zero(path: pathlib.Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 4 : len(data) // 2] = bytes(len(data) // 2 - len(data) // 4)
    path.write_bytes(bytes(data))


def test_intact_checkpoint_restores_bitwise(tmp_path):
    states = _write(tmp_path)
    state, loop, best, skipped = _restore(tmp_path)
    chex.assert_trees_all_equal(state, states[2])
    chex.assert_trees_all_equal(best, states[2])
    assert loop == {"step": 2} and skipped == []


@pytest.mark.parametrize("index", [0, 1, 2, -1])
def test_one_damaged_array_file_never_restores_garbage(tmp_path, index):
    # Orbax's OCDBT layout may keep a file that a restore does not read: then the checkpoint is
    # still intact and restores bitwise; otherwise it is detected and the older one is used.
    states = _write(tmp_path)
    _truncate(_data_files(tmp_path, 2)[index])
    state, _, _, skipped = _restore(tmp_path)
    if skipped:
        assert [s for s, _ in skipped] == [2]
        chex.assert_trees_all_equal(state, states[1])
    else:
        chex.assert_trees_all_equal(state, states[2])


@pytest.mark.parametrize("damage", ["zero_array", "truncate_every_array", "truncate_json", "delete_json"])
def test_corrupt_latest_checkpoint_falls_back_to_newest_intact(tmp_path, damage):
    states = _write(tmp_path)
    files = _data_files(tmp_path, 2)
    if damage == "zero_array":
        for f in files:
            _zero(f)
    elif damage == "truncate_every_array":
        for f in files:
            _truncate(f)
    elif damage == "truncate_json":
        _truncate(tmp_path / "checkpoints" / "2" / "loop" / "metadata")
    else:
        (tmp_path / "checkpoints" / "2" / "loop" / "metadata").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state, loop, _, skipped = _restore(tmp_path)
    chex.assert_trees_all_equal(state, states[1])  # the older, intact one: never the damaged arrays
    assert loop == {"step": 1}
    assert [s for s, _ in skipped] == [2]
    messages = [str(w.message) for w in caught if str(w.message).startswith("checkpoint:")]
    assert len(messages) == 1 and "\n" not in messages[0] and "step 1" in messages[0]


def test_no_intact_checkpoint_is_one_line_error(tmp_path):
    _write(tmp_path)
    for step in (1, 2):
        for f in _data_files(tmp_path, step):
            _truncate(f)
    with pytest.raises(
        ValueError, match=r"^workdir: expected an intact checkpoint in .*, got none: checkpoint 2 "
    ) as e:
        _restore(tmp_path)
    assert "\n" not in str(e.value)


def test_explicit_corrupt_step_raises_instead_of_falling_back(tmp_path):
    _write(tmp_path)
    for f in _data_files(tmp_path, 2):
        _truncate(f)
    ckpt = training.Checkpointer(tmp_path)
    try:
        with pytest.raises(training.CorruptCheckpointError, match=r"^checkpoint 2 is "):
            ckpt.restore(_state(0), step=2)
    finally:
        ckpt.close()


def test_other_model_shape_is_refused_naming_the_leaves(tmp_path):
    _write(tmp_path)
    wider = models.get("mlp", hidden_sizes=(16,), num_classes=3)
    ckpt = training.Checkpointer(tmp_path)
    try:
        with pytest.raises(ValueError, match=r"^workdir: checkpoint 2 holds a run of another shape \(.*\[8\].*\[16\]"):
            ckpt.restore(_state(0, wider))
    finally:
        ckpt.close()


def test_changed_configuration_is_refused_unless_allowed(tmp_path):
    saved = {"learning_rate": 0.01, "hidden_sizes": [8], "seed": 0}
    states = _write(tmp_path, config=saved)
    now = {**saved, "learning_rate": 0.5}
    with pytest.raises(
        ValueError,
        match=r"^workdir: expected the configuration of the checkpointed run .*"
        r"learning_rate: checkpoint 0\.01, now 0\.5\)",
    ):
        _restore(tmp_path, config=now)
    state, *_ = _restore(tmp_path, config=saved)  # same configuration: fine
    chex.assert_trees_all_equal(state, states[2])
    with pytest.warns(UserWarning, match="changed configuration: learning_rate"):
        state, *_ = _restore(tmp_path, config=now, allow_config_change=True)
    chex.assert_trees_all_equal(state, states[2])


def test_tree_digest_sees_every_byte():
    state = jax.device_get(_state(0).params)
    base = training.tree_digest(state)
    assert training.tree_digest(jax.tree.map(np.copy, state)) == base
    flipped = jax.tree.map(np.copy, state)
    leaf = flipped["dense_0"]["w"]
    leaf.view(np.uint32).flat[3] ^= 1  # one bit of one float
    assert training.tree_digest(flipped) != base


def test_checkpoint_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        _write(tmp_path)
    finally:
        os.umask(old)
    for path in (tmp_path / "checkpoints").rglob("*"):
        assert not path.stat().st_mode & 0o002, f"{path} is world-writable"
