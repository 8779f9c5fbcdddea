"""``fit``: equal to a hand-written loop of steps, compiled once, guarded, validated."""

from __future__ import annotations

import math
import warnings

import chex
import jax
import numpy as np
import optax
import pytest

from jax231 import training
from jax231.training import _runner
from tests.training import toy

TRAIN, VAL, MLP, ADAM = toy.TRAIN, toy.VAL, toy.MLP, toy.ADAM  # shared objects share compilations


def _hand_loop(model, opt, data, *, num_steps, batch_size, seed):
    """The documented semantics of fit written out: keys, data order, step."""
    init_key, data_key = jax.random.split(jax.random.PRNGKey(seed))
    state = training.create_train_state(model, opt, rng=init_key, input_shape=data["image"].shape[1:])
    step = jax.jit(training.make_train_step(model, opt))
    n = data["label"].shape[0]
    per_epoch = n // batch_size
    losses = []
    for t in range(num_steps):
        perm = np.asarray(training.epoch_permutation(data_key, t // per_epoch, n))
        idx = perm[(t % per_epoch) * batch_size : (t % per_epoch + 1) * batch_size]
        state, m = step(state, {"image": data["image"][idx], "label": data["label"][idx]})
        losses.append(float(m["loss"]))
    return state, losses


def test_fit_equals_hand_written_loop():
    result = training.fit(MLP, ADAM, train=TRAIN, val=VAL, num_steps=14, batch_size=32, eval_every=5, seed=3)
    ref, losses = _hand_loop(MLP, ADAM, TRAIN, num_steps=14, batch_size=32, seed=3)
    assert result.status == "completed" and int(result.state.step) == 14
    # while_loop vs separate jitted steps: same ops, XLA may fuse differently.
    chex.assert_trees_all_close(result.state.params, ref.params, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(result.state.model_state, ref.model_state, rtol=1e-5, atol=1e-6)
    assert result.history["step"] == [5, 10, 14]
    np.testing.assert_allclose(
        result.history["train_loss"], [np.mean(losses[:5]), np.mean(losses[5:10]), np.mean(losses[10:])], rtol=1e-5
    )
    val = training.evaluate(training.make_eval_step(MLP), ref, VAL)
    np.testing.assert_allclose(result.history["val_loss"][-1], val["loss"], rtol=1e-5)
    assert set(result.history) == set(training.HISTORY_KEYS)
    assert all(len(v) == 3 for v in result.history.values())
    assert result.best_step == result.history["step"][int(np.argmin(result.history["val_loss"]))]


def test_fit_learns_and_is_reproducible_and_compiles_once():
    runner = _runner.get_runner(MLP, ADAM, "softmax", None)
    a = training.fit(MLP, ADAM, train=TRAIN, val=VAL, num_steps=60, batch_size=32, eval_every=30, seed=0)
    size = runner.chunk._cache_size()
    b = training.fit(MLP, ADAM, train=TRAIN, val=VAL, num_steps=60, batch_size=32, eval_every=30, seed=0)
    c = training.fit(MLP, ADAM, train=TRAIN, val=VAL, num_steps=60, batch_size=32, eval_every=20, seed=1)
    assert runner.chunk._cache_size() == size  # new seed, new chunk length: no new compilation
    chex.assert_trees_all_equal(a.state.params, b.state.params)  # same seed, bitwise same numbers
    assert a.history["val_loss"] == b.history["val_loss"]
    assert not np.allclose(a.state.params["dense1"]["w"], c.state.params["dense1"]["w"])
    assert a.history["val_accuracy"][-1] > 0.85  # separable blobs; chance is 1/3
    assert a.history["train_loss"][-1] < a.history["train_loss"][0]


def test_full_batch_lbfgs_matches_optax_loop():
    model = toy.linear()
    opt = optax.lbfgs(linesearch=optax.scale_by_backtracking_linesearch(max_backtracking_steps=10, store_grad=True))
    result = training.fit(model, opt, train=TRAIN, num_steps=5, batch_size=None, eval_every=5)
    ref, _ = _hand_loop(model, opt, TRAIN, num_steps=5, batch_size=96, seed=0)
    chex.assert_trees_all_close(result.state.params, ref.params, rtol=1e-5, atol=1e-6)
    assert result.history["train_loss"][-1] < 0.5 * math.log(3)


def test_fit_runs_the_real_model_and_lbfgs():
    """Integration with jax231.models and jax231.optimizers' L-BFGS, the rule that needs the extras."""
    from jax231 import models, optimizers

    model, opt = models.get("mlp", hidden_sizes=(8,), num_classes=3), optimizers.get("lbfgs")
    result = training.fit(model, opt, train=TRAIN, num_steps=4, eval_every=4, check_initial_loss=False)
    assert result.status == "completed", result.message
    initial = training.create_train_state(
        model, opt, rng=jax.random.split(jax.random.PRNGKey(0))[0], input_shape=(4, 1)
    )
    eval_step = training.make_eval_step(model)
    assert (
        training.evaluate(eval_step, result.state, TRAIN)["loss"]
        < 0.5 * training.evaluate(eval_step, initial, TRAIN)["loss"]
    )


def test_hyperparams_enter_as_data():
    """One optimizer object, several learning rates: one compilation, the numbers of separate optimizers."""
    from jax231 import optimizers

    model, opt = toy.linear(), optimizers.sgd(learning_rate=0.1)
    runner = _runner.get_runner(model, opt, "softmax", None)
    swept = training.fit(
        model, opt, train=TRAIN, num_steps=3, batch_size=32, eval_every=3, hyperparams={"learning_rate": 0.1}
    )
    size = runner.chunk._cache_size()
    swept_b = training.fit(
        model, opt, train=TRAIN, num_steps=3, batch_size=32, eval_every=3, hyperparams={"learning_rate": 0.7}
    )
    assert runner.chunk._cache_size() == size
    reference = training.fit(
        model, optimizers.sgd(learning_rate=0.7), train=TRAIN, num_steps=3, batch_size=32, eval_every=3
    )
    chex.assert_trees_all_close(swept_b.state.params, reference.state.params, rtol=1e-6, atol=1e-7)
    assert not np.allclose(swept.state.params["dense"]["w"], swept_b.state.params["dense"]["w"])
    with pytest.raises(ValueError, match="hyperparams"):
        training.fit(model, opt, train=TRAIN, num_steps=3, batch_size=32, hyperparams={"beta": 0.9})


def test_explosion_guard_fires_on_a_far_too_large_learning_rate():
    result = training.fit(
        toy.mlp(), optax.sgd(1e4), train=TRAIN, num_steps=50, batch_size=32, eval_every=10, check_initial_loss=False
    )
    assert result.status == "diverged"
    assert "diverged at step" in result.message and "training loss" in result.message
    chex.assert_tree_all_finite(result.state.params)
    # The returned state is the last one whose loss was measured good.
    bad_step = int(result.message.split("diverged at step ")[1].split(":")[0])
    assert int(result.state.step) == max(bad_step - 1, 0)
    state, m = jax.jit(training.make_train_step(toy.mlp(), optax.sgd(1e4)))(result.state, TRAIN)
    del state
    assert np.isfinite(float(m["loss"]))


def test_explosion_guard_catches_nan_and_can_be_loosened():
    nan_train = {"image": TRAIN["image"].copy(), "label": TRAIN["label"]}
    nan_train["image"][5] = np.nan
    # The door check would refuse the NaN rows before training: opted out, the in-loop guard must catch them.
    result = training.fit(
        toy.linear(),
        optax.sgd(0.1),
        train=nan_train,
        num_steps=3,
        batch_size=None,
        guards=training.Guards(check_initial_loss=False, check_finite_inputs=False),
    )
    assert result.status == "diverged" and "not finite" in result.message
    assert int(result.state.step) == 0
    relaxed = training.fit(
        toy.mlp(), optax.sgd(0.5), train=TRAIN, num_steps=20, batch_size=32, eval_every=20, explosion_factor=None
    )
    assert relaxed.status == "completed"


def test_initial_loss_guard_warns_on_a_bad_init():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        training.fit(toy.linear(), optax.sgd(0.1), train=TRAIN, num_steps=1, eval_every=1)
    with pytest.warns(UserWarning, match="initial softmax loss"):
        result = training.fit(toy.linear(scale=10.0), optax.sgd(0.1), train=TRAIN, num_steps=1, eval_every=1)
    assert "suspicious" in result.message


def test_iterator_of_batches_equals_arrays_path():
    batches = [{k: v[i : i + 32] for k, v in TRAIN.items()} for i in (0, 32, 64, 0)]
    result = training.fit(MLP, ADAM, train=iter(batches), num_steps=4, eval_every=2, check_initial_loss=False)
    init_key, _ = jax.random.split(jax.random.PRNGKey(0))
    state = training.create_train_state(MLP, ADAM, rng=init_key, input_shape=(4, 1))
    step = jax.jit(training.make_train_step(MLP, ADAM))
    for b in batches:
        state, _ = step(state, b)
    chex.assert_trees_all_close(result.state.params, state.params, rtol=1e-6, atol=1e-7)
    nan_batches = [batches[0], {"image": np.full_like(batches[1]["image"], np.nan), "label": batches[1]["label"]}]
    diverged = training.fit(MLP, ADAM, train=iter(nan_batches), num_steps=2, eval_every=2, check_initial_loss=False)
    assert diverged.status == "diverged" and "not finite" in diverged.message
    assert int(diverged.state.step) == 0  # update 1 saw a NaN loss: the last good state is update 0's
    with pytest.raises(ValueError, match="ran out of batches"):
        training.fit(MLP, ADAM, train=iter(batches), num_steps=5, eval_every=5, check_initial_loss=False)


def test_max_seconds_times_out():
    result = training.fit(MLP, ADAM, train=TRAIN, num_steps=1000, batch_size=32, eval_every=1, max_seconds=1e-9)
    assert result.status == "timed_out" and int(result.state.step) == 1


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"num_steps": 0}, "num_steps"),
        ({"batch_size": 97}, "batch_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"eval_every": 0}, "eval_every"),
        ({"train": {"image": TRAIN["image"], "label": TRAIN["label"][:-1]}}, "train"),
        ({"val": {"image": VAL["image"][:3], "label": VAL["label"]}}, "val"),
        ({"early_stopping_patience": 2}, "early_stopping_patience"),
        ({"checkpoint_every": 5}, "checkpoint_every"),
        ({"explosion_factor": 0.5}, "explosion_factor"),
        ({"workdir": "/proc/jax231_cannot_write_here"}, "/proc/jax231_cannot_write_here"),
    ],
)
def test_bad_arguments_raise_before_training(kwargs, match):
    args = {"train": TRAIN, "num_steps": 5, "batch_size": 32} | kwargs
    with pytest.raises(ValueError, match=match):
        training.fit(MLP, ADAM, **args)
