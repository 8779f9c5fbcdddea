"""Checkpoints: atomic orbax writes, exact resumption, the last good checkpoint."""

from __future__ import annotations

import json
import shutil

import chex
import jax
import numpy as np
import optax
import pytest

from jax231 import training
from tests.training import toy

TRAIN, VAL, MLP, ADAM = toy.TRAIN, toy.VAL, toy.MLP, toy.ADAM  # shared objects share compilations
KW = dict(
    train=TRAIN, val=VAL, batch_size=32, eval_every=10, checkpoint_every=10, seed=5, early_stopping_patience=100
)  # patience never reached: the best snapshot is checkpointed too


def _restore(workdir):
    template = training.create_train_state(MLP, ADAM, rng=jax.random.PRNGKey(0), input_shape=(4, 1))
    ckpt = training.Checkpointer(workdir)
    try:
        return ckpt.restore(template, with_best=True)
    finally:
        ckpt.close()


def _drop_time(history):
    return {k: v for k, v in history.items() if k != "time"}


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    full = training.fit(MLP, ADAM, num_steps=40, workdir=str(tmp_path / "full"), **KW)
    first = training.fit(MLP, ADAM, num_steps=20, workdir=str(tmp_path / "cut"), **KW)
    assert first.status == "completed" and int(first.history["step"][-1]) == 20
    resumed = training.fit(MLP, ADAM, num_steps=40, workdir=str(tmp_path / "cut"), **KW)

    # Bitwise: the same compiled loop replays the same steps on the same batches.
    chex.assert_trees_all_equal(resumed.state, full.state)  # the best-validation snapshots
    assert _drop_time(resumed.history) == _drop_time(full.history)
    assert resumed.best_step == full.best_step
    final_full, loop_full, best_full = _restore(tmp_path / "full")
    final_cut, loop_cut, best_cut = _restore(tmp_path / "cut")
    chex.assert_trees_all_equal(final_cut, final_full)
    chex.assert_trees_all_equal(best_cut, best_full)
    assert int(final_full.step) == 40 and loop_full["early_stopping"] == loop_cut["early_stopping"]

    # A crash after the checkpoint of step 30: the rows logged later are not duplicated.
    shutil.rmtree(tmp_path / "cut" / "checkpoints" / "40")
    again = training.fit(MLP, ADAM, num_steps=40, workdir=str(tmp_path / "cut"), **KW)
    chex.assert_trees_all_equal(again.state, full.state)
    lines = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [10, 20, 30, 40]


def test_timed_out_run_resumes_and_early_stopped_run_stays_stopped(tmp_path):
    full = training.fit(MLP, ADAM, num_steps=30, workdir=str(tmp_path / "full"), **KW)
    cut = training.fit(MLP, ADAM, num_steps=30, workdir=str(tmp_path / "cut"), max_seconds=1e-9, **KW)
    assert cut.status == "timed_out" and cut.history["step"] == [10]
    resumed = training.fit(MLP, ADAM, num_steps=30, workdir=str(tmp_path / "cut"), **KW)
    assert resumed.status == "completed"
    chex.assert_trees_all_equal(resumed.state, full.state)
    assert _drop_time(resumed.history) == _drop_time(full.history)

    # Adam at 0.1 overshoots: the validation loss rises at step 20, patience 1 stops there.
    fast = optax.adam(0.1)
    kw = KW | {"early_stopping_patience": 1}
    stopped = training.fit(MLP, fast, num_steps=60, workdir=str(tmp_path / "es"), **kw)
    assert stopped.status == "early_stopped" and stopped.history["step"] == [10, 20]
    again = training.fit(MLP, fast, num_steps=60, workdir=str(tmp_path / "es"), **kw)
    assert again.status == "early_stopped" and "already early stopped" in again.message
    assert _drop_time(again.history) == _drop_time(stopped.history)
    chex.assert_trees_all_equal(again.state, stopped.state)
    assert int(again.state.step) == again.best_step == 10


def test_checkpoints_are_written_by_atomic_rename(tmp_path, monkeypatch):
    from orbax.checkpoint._src.path import async_path  # orbax's rename hook, spied on

    renames = []
    original = async_path.rename

    async def spy(src, dst):
        renames.append((str(src), str(dst)))
        return await original(src, dst)

    monkeypatch.setattr(async_path, "rename", spy)
    training.fit(MLP, ADAM, num_steps=20, workdir=str(tmp_path), **KW)
    ckpt_dir = tmp_path / "checkpoints"
    # Each step directory appears in one rename from its tmp twin (items inside are renamed too).
    steps = [(src, dst) for src, dst in renames if dst.rsplit("/", 1)[0] == str(ckpt_dir)]
    assert [dst.rsplit("/", 1)[-1] for _, dst in steps] == ["10", "20"]
    assert all(src.startswith(dst + ".orbax-checkpoint-tmp") for src, dst in steps)
    assert not list(ckpt_dir.glob("*tmp*"))

    # A write interrupted before its rename leaves a tmp directory: it is ignored.
    junk = ckpt_dir / "30.orbax-checkpoint-tmp-1234567"
    junk.mkdir()
    (junk / "garbage").write_text("half written")
    ckpt = training.Checkpointer(tmp_path)
    assert ckpt.latest_step() == 20
    ckpt.close()


def test_diverged_run_keeps_the_last_good_checkpoint(tmp_path):
    opt = optax.sgd(3.0)  # grows the loss past 3x its initial value after a few dozen steps
    result = training.fit(
        toy.mlp(),
        opt,
        train=TRAIN,
        num_steps=200,
        batch_size=32,
        eval_every=5,
        checkpoint_every=5,
        workdir=str(tmp_path),
        check_initial_loss=False,
    )
    assert result.status == "diverged", result.message
    bad_step = int(result.message.split("diverged at step ")[1].split(":")[0])
    template = training.create_train_state(toy.mlp(), opt, rng=jax.random.PRNGKey(0), input_shape=(4, 1))
    ckpt = training.Checkpointer(tmp_path)
    state, loop, _ = ckpt.restore(template)
    ckpt.close()
    # The newest checkpoint is the last multiple of 5 before the last good step.
    assert int(state.step) == (bad_step - 1) // 5 * 5 > 0
    chex.assert_tree_all_finite(state.params)
    assert loop["status"] == "completed"  # the checkpoint predates the divergence


def test_resuming_with_another_seed_is_refused(tmp_path):
    training.fit(MLP, ADAM, num_steps=10, workdir=str(tmp_path), **KW)
    with pytest.raises(ValueError, match="seed=5"):
        training.fit(MLP, ADAM, num_steps=20, workdir=str(tmp_path), **(KW | {"seed": 6}))


def test_typed_keys_round_trip(tmp_path):
    state = training.create_train_state(toy.linear(), ADAM, rng=jax.random.key(3), input_shape=(4, 1))
    ckpt = training.Checkpointer(tmp_path)
    ckpt.save(7, state, {"note": "x"})
    ckpt.wait()
    restored, loop, _ = ckpt.restore(state)
    ckpt.close()
    assert loop == {"note": "x"}
    np.testing.assert_array_equal(jax.random.key_data(restored.rng), jax.random.key_data(state.rng))
    chex.assert_trees_all_equal(restored.params, state.params)
