"""Sweeps: K vmapped runs equal K separate runs (jax231.parallel.run_sweep)."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jax231 import parallel, training
from tests.parallel import tiny_models

# vmap lets XLA batch the K matrix products and reassociate their sums; after a
# few float32 steps the members agree with separate runs to ~1e-7 relative.
# 1e-5 leaves room for accumulation while catching any member mix-up (those are
# O(1) differences: other seeds, other learning rates).
RTOL, ATOL = 1e-5, 1e-6

SEEDS = np.array([0, 1, 2])
LEARNING_RATES = np.array([0.05, 0.2, 0.1], np.float32)
MOMENTA = np.array([0.9, 0.0, 0.5], np.float32)
DROP_RATES = np.array([0.0, 0.3, 0.5], np.float32)
NUM_STEPS, BATCH_SIZE, EVAL_EVERY = 10, 16, 4  # 64 examples: 4 steps an epoch, epochs 0..2 visited


_batch_indices = jax.jit(
    functools.partial(parallel.sweep_batch_indices, num_examples=64, batch_size=BATCH_SIZE)
)


def _sgd(learning_rate, momentum):
    return optax.inject_hyperparams(optax.sgd)(learning_rate=learning_rate, momentum=momentum)


def _separate_run(k, data, val, *, shuffle_per_seed):
    """Member k as its own program: its model, optimizer, seed and step loop."""
    model = tiny_models.mlp(drop_rate=float(DROP_RATES[k]))
    tx = _sgd(float(LEARNING_RATES[k]), float(MOMENTA[k]))
    state = training.create_train_state(model, tx, rng=jax.random.key(int(SEEDS[k])), input_shape=(5,))
    step = jax.jit(training.make_train_step(model, tx))
    key = jax.random.key(0)
    if shuffle_per_seed:
        key = jax.random.fold_in(key, int(SEEDS[k]))
    losses = []
    for t in range(NUM_STEPS):
        idx = _batch_indices(jnp.int32(t), key)
        state, metrics = step(state, {"image": data["image"][idx], "label": data["label"][idx]})
        losses.append(float(metrics["loss"]))
    val_loss, (logits, _) = training.make_loss_fn(model)(
        state.params, state.model_state, val, state.rng, train=False
    )
    return state, np.array(losses), float(val_loss), float(np.mean(np.argmax(logits, -1) == val["label"]))


@pytest.mark.parametrize("shuffle_per_seed", [False, True])
def test_run_sweep_equals_separate_runs(shuffle_per_seed):
    data, val = tiny_models.blobs(64), tiny_models.blobs(32, seed=1)
    result = parallel.run_sweep(
        functools.partial(tiny_models.mlp),
        _sgd,
        train=data,
        val=val,
        seeds=SEEDS,
        hyperparams={"learning_rate": LEARNING_RATES, "momentum": MOMENTA},
        model_hyperparams={"drop_rate": DROP_RATES},
        num_steps=NUM_STEPS,
        batch_size=BATCH_SIZE,
        eval_every=EVAL_EVERY,
        shuffle_per_seed=shuffle_per_seed,
    )
    np.testing.assert_array_equal(result.history["step"], [4, 8, 10])
    chex.assert_shape([result.history[n] for n in ("train_loss", "val_loss", "val_accuracy")], (3, 3))
    assert not result.diverged.any()
    for k in range(len(SEEDS)):
        state, losses, val_loss, val_acc = _separate_run(k, data, val, shuffle_per_seed=shuffle_per_seed)
        member = parallel.tree_index(result.state, k)
        chex.assert_trees_all_close(member.params, state.params, rtol=RTOL, atol=ATOL)
        chex.assert_trees_all_close(member.opt_state, state.opt_state, rtol=RTOL, atol=ATOL)
        assert int(member.step) == NUM_STEPS
        chunk_means = [losses[0:4].mean(), losses[4:8].mean(), losses[8:10].mean()]
        np.testing.assert_allclose(result.history["train_loss"][k], chunk_means, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(result.history["val_loss"][k, -1], val_loss, rtol=RTOL, atol=ATOL)
        assert result.history["val_accuracy"][k, -1] == pytest.approx(val_acc, abs=1e-6)
    np.testing.assert_array_equal(result.hyperparams["learning_rate"], LEARNING_RATES)
    # The members really differ: otherwise equality above would not test the routing.
    assert np.ptp(result.history["train_loss"][:, -1]) > 1e-3


def test_run_sweep_is_deterministic_and_flags_divergence_per_member():
    # Members 0 and 1 are the same run (same seed and learning rate), member 2
    # explodes; full-batch steps.
    run = functools.partial(
        parallel.run_sweep, tiny_models.mlp(), _sgd(0.1, 0.0), train=tiny_models.blobs(64),
        seeds=np.array([3, 3, 0]), hyperparams={"learning_rate": np.array([0.1, 0.1, 1e30])}, num_steps=3,
    )
    first, second = run(), run()
    chex.assert_trees_all_equal(first.state.params, second.state.params)
    chex.assert_trees_all_equal(parallel.tree_index(first.state.params, 0), parallel.tree_index(first.state.params, 1))
    np.testing.assert_array_equal(first.diverged, [False, False, True])
    np.testing.assert_array_equal(first.history["step"], [3])


def test_set_hyperparams_keeps_dtype_and_rejects_unknown_names():
    tx = optax.chain(optax.clip(1.0), _sgd(0.1, 0.9))
    state = tx.init({"w": jnp.ones(3)})
    new = parallel.set_hyperparams(state, learning_rate=0.5)
    assert new[1].hyperparams["learning_rate"].dtype == jnp.float32
    assert float(new[1].hyperparams["learning_rate"]) == 0.5
    assert float(new[1].hyperparams["momentum"]) == pytest.approx(0.9)
    with pytest.raises(ValueError, match=r"\['beta1'\].*momentum"):
        parallel.set_hyperparams(state, beta1=0.5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(seeds=np.array([[0, 1]])), "seeds"),
        (dict(hyperparams={"learning_rate": np.array([0.1, 0.2, 0.3])}), r"hyperparams\['learning_rate'\].*\(2,\)"),
        (dict(hyperparams={"beta9": np.array([0.1, 0.2])}), "beta9"),
        (dict(batch_size=65), "batch_size"),
        (dict(num_steps=0), "num_steps"),
        (dict(eval_every=0), "eval_every"),
        (dict(l2=np.array([1.0])), r"l2.*\(2,\)"),
    ],
)
def test_run_sweep_bad_input(kwargs, match):
    args = dict(train=tiny_models.blobs(64), seeds=np.array([0, 1]), num_steps=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        parallel.run_sweep(tiny_models.mlp(), _sgd(0.1, 0.9), **args)


def test_model_factory_must_accept_traced_values():
    def strict_factory(drop_rate):
        if drop_rate > 0.5:  # Python control flow on a swept value
            raise AssertionError("unreachable under vmap")
        return tiny_models.mlp(drop_rate=drop_rate)

    with pytest.raises(ValueError, match="drop_rate"):
        parallel.run_sweep(
            strict_factory, _sgd(0.1, 0.9), train=tiny_models.blobs(64), seeds=np.array([0, 1]),
            model_hyperparams={"drop_rate": np.array([0.1, 0.2])}, num_steps=1,
        )
