"""The one training core: guards inside the loop, hooks, EMA through eval_params, sweeps.

References are hand-written loops of the documented semantics (keys from
``training.run_keys``, the order of ``epoch_permutation``) and float64 NumPy.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import optimizers, parallel, training
from tests.training import toy

TRAIN, VAL = toy.TRAIN, toy.VAL
LINEAR = toy.linear()
RELU = toy.mlp(hidden=8)
SGD = optimizers.sgd(learning_rate=0.1)


def _spike_sgd(at: int, lr: float):
    """SGD at 0.1 whose update ``at`` uses ``lr`` (an explosion placed at one step)."""
    return optimizers.sgd(learning_rate=lambda t: jnp.where(t == at, lr, 0.1))


def _noise(key, batch):
    return {"image": batch["image"] + 0.3 * jax.random.normal(key, batch["image"].shape), "label": batch["label"]}


def test_guard_watches_gradient_norms_not_only_the_loss():
    metrics = {
        "loss": jnp.float32(1.0),
        "grad_norm": jnp.float32(jnp.nan),
        "param_norm": jnp.float32(1.0),
        "update_norm": jnp.float32(0.1),
    }
    assert bool(training.step_is_bad(metrics, jnp.float32(1.0), jnp.float32(3.0)))
    assert not bool(training.step_is_bad(metrics | {"grad_norm": jnp.float32(2.0)}, jnp.float32(1.0), jnp.float32(3.0)))


def test_one_nan_pixel_behind_a_relu_ends_diverged():
    data = {"image": TRAIN["image"].copy(), "label": TRAIN["label"]}
    data["image"][7, 2, 0] = np.nan
    # The door check refuses such data before training (tests/reliability); opted out, the in-loop guard must catch it.
    result = training.fit(
        RELU,
        SGD,
        train=data,
        num_steps=30,
        batch_size=32,
        eval_every=10,
        guards=training.Guards(check_initial_loss=False, check_finite_inputs=False),
    )
    assert result.status == "diverged", result.message
    assert all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(result.state.params))


def test_a_run_whose_last_update_explodes_is_diverged():
    opt = _spike_sgd(9, 1e6)  # update 9 multiplies the parameters' scale by ~1e6: w_10 is bad
    result = training.fit(LINEAR, opt, train=TRAIN, num_steps=10, batch_size=32, eval_every=5, check_initial_loss=False)
    assert result.status == "diverged", result.message
    assert "diverged at step 10" in result.message
    assert int(result.state.step) == 9  # w_9, before the exploding update
    ref = training.fit(LINEAR, opt, train=TRAIN, num_steps=9, batch_size=32, eval_every=9, check_initial_loss=False)
    chex.assert_trees_all_equal(result.state.params, ref.state.params)


def test_an_explosion_on_a_checkpoint_boundary_is_never_checkpointed(tmp_path):
    opt = _spike_sgd(9, 1e6)
    result = training.fit(
        LINEAR,
        opt,
        train=TRAIN,
        num_steps=20,
        batch_size=32,
        eval_every=5,
        workdir=str(tmp_path),
        check_initial_loss=False,
    )
    assert result.status == "diverged" and int(result.state.step) == 9
    ckpt = training.Checkpointer(tmp_path)
    try:
        assert ckpt.all_steps() == [5]
    finally:
        ckpt.close()


def test_batch_fn_matches_a_hand_loop_and_resumes_bitwise(tmp_path):
    kw = dict(train=TRAIN, batch_size=32, eval_every=5, seed=4, batch_fn=_noise, check_initial_loss=False)
    full = training.fit(LINEAR, SGD, num_steps=12, **kw)
    # The documented hook: batch_fn(fold_in(run_keys(seed).hook, t), batch of step t).
    keys = training.run_keys(4)
    state = training.create_train_state(LINEAR, SGD, rng=keys.init, input_shape=(4, 1))
    step = jax.jit(training.make_train_step(LINEAR, SGD))
    for t in range(12):
        perm = np.asarray(training.epoch_permutation(keys.data, t // 3, 96))
        idx = perm[(t % 3) * 32 : (t % 3 + 1) * 32]
        batch = _noise(jax.random.fold_in(keys.hook, t), {"image": TRAIN["image"][idx], "label": TRAIN["label"][idx]})
        state, _ = step(state, batch)
    chex.assert_trees_all_close(full.state.params, state.params, rtol=1e-5, atol=1e-6)
    plain = training.fit(LINEAR, SGD, num_steps=12, **{**kw, "batch_fn": None})
    assert not np.allclose(plain.state.params["dense"]["w"], full.state.params["dense"]["w"])
    # Interrupted at step 5 and resumed: the augmentation stream continues where it was.
    training.fit(LINEAR, SGD, num_steps=5, workdir=str(tmp_path), **kw)
    resumed = training.fit(LINEAR, SGD, num_steps=12, workdir=str(tmp_path), **kw)
    chex.assert_trees_all_equal(resumed.state.params, full.state.params)


@pytest.mark.parametrize(
    "batch_fn, match",
    [
        (lambda batch: batch, "batch_fn: expected a function"),
        (lambda key, batch: {"image": batch["image"][:, :2], "label": batch["label"]}, "batch_fn: expected a batch"),
        (lambda key, batch: batch["image"], "batch_fn: expected a batch"),
        ("noise", "batch_fn: expected a function"),
    ],
)
def test_a_hook_with_the_wrong_signature_or_output_is_one_line_before_compiling(batch_fn, match):
    for call in (
        lambda: training.fit(LINEAR, SGD, train=TRAIN, num_steps=2, batch_size=32, batch_fn=batch_fn),
        lambda: parallel.run_sweep(
            LINEAR, SGD, train=TRAIN, seeds=np.array([0, 1]), num_steps=2, batch_size=32, batch_fn=batch_fn
        ),
    ):
        with pytest.raises(ValueError, match=match) as info:
            call()
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="eval_fn: expected") as info:
        training.fit(LINEAR, SGD, train=TRAIN, num_steps=2, batch_size=32, eval_fn=lambda: None)
    assert "\n" not in str(info.value)


def test_ema_as_a_transformation_is_carried_and_evaluated():
    opt = optimizers.chain(optimizers.sgd(learning_rate=0.1), optimizers.average_params(optimizers.ema(0.9)))
    snapshots = {}
    result = training.fit(
        LINEAR,
        opt,
        train=TRAIN,
        val=VAL,
        num_steps=10,
        batch_size=32,
        eval_every=5,
        check_initial_loss=False,
        eval_fn=lambda step, state: snapshots.setdefault(step, state) and None,
    )
    assert sorted(snapshots) == [5, 10]  # the eval callback saw every evaluated state
    # Reference: the same iterates from a hand loop, averaged in float64 NumPy.
    keys = training.run_keys(0)
    state = training.create_train_state(LINEAR, opt, rng=keys.init, input_shape=(4, 1))
    step = jax.jit(training.make_train_step(LINEAR, opt))
    average = jax.tree_util.tree_map(lambda w: np.asarray(w, np.float64), state.params)
    for t in range(10):
        perm = np.asarray(training.epoch_permutation(keys.data, t // 3, 96))
        idx = perm[(t % 3) * 32 : (t % 3 + 1) * 32]
        state, _ = step(state, {"image": TRAIN["image"][idx], "label": TRAIN["label"][idx]})
        average = jax.tree_util.tree_map(lambda a, w: 0.9 * a + 0.1 * np.asarray(w, np.float64), average, state.params)
    held = result.state.opt_state[1].average
    chex.assert_trees_all_close(held, average, rtol=1e-5, atol=1e-6)  # float32 vs float64
    chex.assert_trees_all_close(result.state.params, state.params, rtol=1e-5, atol=1e-6)  # updates pass through
    averaged = result.state._replace(params=held)
    expected = training.evaluate(training.make_eval_step(LINEAR), averaged, VAL)
    np.testing.assert_allclose(result.history["val_loss"][-1], expected["loss"], rtol=1e-6)
    np.testing.assert_allclose(result.evaluate(VAL)["loss"], expected["loss"], rtol=1e-6)
    iterate = training.evaluate(training.make_eval_step(LINEAR), result.state, VAL)["loss"]
    assert abs(iterate - expected["loss"]) > 1e-4  # the average really differs from the iterate


def test_a_diverged_sweep_member_freezes_at_fits_last_good_state_and_is_named():
    lrs = np.array([0.1, 1e3, 0.1], np.float32)
    sweep = parallel.run_sweep(
        LINEAR,
        "sgd",
        train=TRAIN,
        seeds=np.array([0, 0, 1]),
        num_steps=12,
        batch_size=32,
        eval_every=6,
        hyperparams={"learning_rate": lrs},
    )
    np.testing.assert_array_equal(sweep.status, ["completed", "diverged", "completed"])
    bad = training.fit(
        LINEAR,
        optimizers.sgd(learning_rate=1e3),
        train=TRAIN,
        num_steps=12,
        batch_size=32,
        eval_every=6,
        check_initial_loss=False,
    )
    assert bad.status == "diverged"
    assert f"diverged at step {int(sweep.first_bad_step[1])}" in bad.message
    frozen = parallel.tree_index(sweep.state, 1)
    chex.assert_trees_all_close(frozen.params, bad.state.params, rtol=1e-5, atol=1e-6)
    assert int(frozen.step) == int(bad.state.step)
    assert sweep.messages[1].startswith("member 1 (seed=0, learning_rate=1000): diverged at step")
    np.testing.assert_allclose(sweep.initial_loss[1], bad.initial_loss, rtol=1e-6)
    good = training.fit(
        LINEAR, optimizers.sgd(learning_rate=0.1), train=TRAIN, num_steps=12, batch_size=32, eval_every=6, seed=1
    )
    chex.assert_trees_all_close(
        parallel.tree_index(sweep.state, 2).params, good.state.params, rtol=1e-5, atol=1e-6
    )  # the others went on
    assert math.isnan(sweep.history["train_loss"][1, -1]) or sweep.first_bad_step[1] >= 6


def test_fit_result_evaluates_other_splits_with_its_own_eval_step():
    result = training.fit(LINEAR, SGD, train=TRAIN, num_steps=3, batch_size=32, eval_every=3)
    expected = training.evaluate(training.make_eval_step(LINEAR), result.state, VAL)
    assert result.evaluate(VAL) == pytest.approx(expected, rel=1e-6)
