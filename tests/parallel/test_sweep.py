"""Sweeps: K vmapped runs (jax231.parallel.run_sweep) equal K separate ``fit`` runs."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jax231 import losses, models, optimizers, parallel, training
from jax231.training import _cache
from tests.parallel import tiny_models

# vmap lets XLA batch the K matrix products and reassociate their sums; after
# 10 float32 steps the members agree with separate runs to ~1e-7 relative.
# 1e-5 leaves room for that while catching any member mix-up (those are O(1e-2)
# or larger: another seed, learning rate, dropout mask or data order).
RTOL, ATOL = 1e-5, 1e-6
NUM_STEPS, BATCH_SIZE, EVAL_EVERY = 10, 16, 4  # 64 examples: 4 steps an epoch; evaluations at 4, 8, 10

mlp_factory = functools.partial(models.get, "mlp", hidden_sizes=(8,), num_classes=3)

# Table: optimizer name x swept optimizer hyperparameters x model / penalty values.
# Seeds 5, 5 (shared init and data order), 7: members differ in every swept value.
CASES = {
    "momentum_drop_rate_l2": dict(
        optimizer="momentum",
        hyperparams={"learning_rate": [0.05, 0.2, 0.1], "momentum": [0.9, 0.0, 0.5]},
        model_hyperparams={"drop_rate": [0.0, 0.3, 0.3]},
        l2=[0.0, 1e-2, 1e-3],
    ),
    "adamw_weight_decay": dict(
        optimizer="adamw",
        hyperparams={"learning_rate": [1e-2, 3e-3, 1e-2], "weight_decay": [0.0, 1e-1, 1e-2]},
        model_hyperparams=None,
        l2=None,
    ),
}


def _fit_member(case, k, data, val, seed):
    """Member k as its own ``fit`` run: its model, optimizer, penalty and seed."""
    hp = {name: values[k] for name, values in case["hyperparams"].items()}
    model_hp = {name: values[k] for name, values in (case["model_hyperparams"] or {}).items()}
    penalty = None if case["l2"] is None else functools.partial(losses.l2_penalty, strength=case["l2"][k])
    return training.fit(
        mlp_factory(**model_hp),
        optimizers.get(case["optimizer"], **hp),
        train=data,
        val=val,
        seed=seed,
        penalty=penalty,
        num_steps=NUM_STEPS,
        batch_size=BATCH_SIZE,
        eval_every=EVAL_EVERY,
        check_initial_loss=False,
        explosion_factor=None,
    )


def _assert_members_match_fit(result, case, seeds, data, val):
    """Every member of ``result`` equals its own ``fit`` run (state and history)."""
    for k, seed in enumerate(seeds):
        ref = _fit_member(case, k, data, val, int(seed))
        member = parallel.tree_index(result.state, k)
        chex.assert_trees_all_close(member.params, ref.state.params, rtol=RTOL, atol=ATOL)
        chex.assert_trees_all_close(member.opt_state, ref.state.opt_state, rtol=RTOL, atol=ATOL)
        chex.assert_trees_all_equal(member.rng, ref.state.rng)
        assert int(member.step) == NUM_STEPS
        for key in ("train_loss", "train_accuracy", "grad_norm", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(result.history[key][k], ref.history[key], rtol=RTOL, atol=ATOL, err_msg=key)


def _run_case(case, model, data, val, seeds):
    return parallel.run_sweep(
        model,
        case["optimizer"],
        train=data,
        val=val,
        seeds=seeds,
        hyperparams={n: np.asarray(v, np.float32) for n, v in case["hyperparams"].items()},
        model_hyperparams=case["model_hyperparams"],
        l2=case["l2"],
        num_steps=NUM_STEPS,
        batch_size=BATCH_SIZE,
        eval_every=EVAL_EVERY,
    )


def _compilations():
    """(cached configurations, compiled programs): run_sweep's cache, as fit's ``_cache_size`` test."""
    cache = _cache.entries("sweep")
    return len(cache), sum(f._cache_size() for programs in cache for f in programs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_run_sweep_equals_separate_fit_runs(name):
    case = CASES[name]
    data, val = tiny_models.blobs(64), tiny_models.blobs(32, seed=1)
    seeds = np.array([5, 5, 7])
    result = _run_case(case, mlp_factory if case["model_hyperparams"] else mlp_factory(), data, val, seeds)
    np.testing.assert_array_equal(result.history["step"], [4, 8, 10])
    chex.assert_shape([result.history[n] for n in ("train_loss", "grad_norm", "val_loss", "val_accuracy")], (3, 3))
    assert not result.diverged.any()
    _assert_members_match_fit(result, case, seeds, data, val)
    # The members really differ: otherwise equality above would not test the routing.
    assert np.min(np.abs(np.diff(result.history["train_loss"][:, -1]))) > 1e-4


def test_second_run_sweep_with_new_seeds_and_hyperparams_compiles_nothing(monkeypatch):
    # Same model object, optimizer name, loss, batch size and K = 3; new seeds and
    # new swept values (data in the optimizer state) must reuse the programs.
    # The compile cache is bounded (LRU); in a worker that already ran many tests it is full and
    # an insertion evicts an entry, which would hide the count this test reads: no eviction here.
    monkeypatch.setattr(_cache, "MAX_ENTRIES", 10_000)
    case = CASES["adamw_weight_decay"]
    data, val = tiny_models.blobs(64), tiny_models.blobs(32, seed=1)
    model = mlp_factory()
    _run_case(case, model, data, val, np.array([5, 5, 7]))
    before = _compilations()
    other = dict(case, hyperparams={"learning_rate": [3e-2, 1e-3, 5e-3], "weight_decay": [5e-2, 0.0, 2e-1]})
    seeds = np.array([11, 2, 2])
    result = _run_case(other, model, data, val, seeds)
    assert _compilations() == before
    _assert_members_match_fit(result, other, seeds, data, val)
    # Another model object is another configuration (keyed by identity, as fit's cache).
    _run_case(case, mlp_factory(), data, val, np.array([5, 5, 7]))
    assert _compilations()[0] == before[0] + 1


def test_run_sweep_is_deterministic_and_flags_divergence_per_member():
    # Members 0 and 1 are the same run, member 2 explodes; full-batch steps.
    run = functools.partial(
        parallel.run_sweep,
        mlp_factory(),
        "sgd",
        train=tiny_models.blobs(64),
        seeds=np.array([3, 3, 0]),
        hyperparams={"learning_rate": np.array([0.1, 0.1, 1e30])},
        num_steps=3,
    )
    first, second = run(), run()
    chex.assert_trees_all_equal(first.state.params, second.state.params)
    chex.assert_trees_all_equal(parallel.tree_index(first.state.params, 0), parallel.tree_index(first.state.params, 1))
    np.testing.assert_array_equal(first.diverged, [False, False, True])
    np.testing.assert_array_equal(first.history["step"], [3])
    assert "val_loss" not in first.history


def test_member_groups_split_by_model_hyperparams():
    groups = parallel.member_groups(mlp_factory, {"drop_rate": np.array([0.1, 0.0, 0.1, 0.2])})
    assert [g.index.tolist() for g in groups] == [[0, 2], [1], [3]]
    (single,) = parallel.member_groups(mlp_factory, {"drop_rate": np.array([0.1, 0.1])})
    assert single.index is None  # one configuration: a plain vmap, no regrouping


def test_init_sweep_accepts_optax_injected_hyperparams():
    tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=0.9)
    states = parallel.init_sweep(
        mlp_factory(),
        tx,
        seeds=np.array([0, 1]),
        input_shape=(5,),
        hyperparams={"learning_rate": np.array([0.5, 0.25])},
    )
    np.testing.assert_allclose(states.opt_state.hyperparams["learning_rate"], [0.5, 0.25])
    np.testing.assert_allclose(states.opt_state.hyperparams["momentum"], [0.9, 0.9])
    assert states.opt_state.hyperparams["learning_rate"].dtype == jnp.float32
    ref = training.create_train_state(
        mlp_factory(), tx, rng=jax.random.split(jax.random.PRNGKey(1))[0], input_shape=(5,)
    )
    chex.assert_trees_all_equal(parallel.tree_index(states.params, 1), ref.params)


def test_run_sweep_refuses_hyperparams_driven_by_a_schedule():
    scheduled = optimizers.get("sgd", learning_rate=optimizers.schedules.exponential_decay(0.1, decay_rate=0.5))
    with pytest.raises(ValueError, match=r"hyperparams\['learning_rate'\].*schedule"):
        parallel.run_sweep(
            mlp_factory(),
            scheduled,
            train=tiny_models.blobs(64),
            seeds=np.array([0, 1]),
            hyperparams={"learning_rate": np.array([0.1, 0.2])},
            num_steps=2,
        )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(seeds=np.array([[0, 1]])), "seeds"),
        (dict(seeds=np.array([0.5, 1.5])), "integer"),
        (dict(hyperparams={"learning_rate": np.array([0.1, 0.2, 0.3])}), r"hyperparams\['learning_rate'\].*\(2,\)"),
        (dict(hyperparams={"learning_rate": np.array([0.1, 0.2]), "beta9": np.array([1, 2])}), "beta9"),
        (dict(batch_size=65), "batch_size"),
        (dict(num_steps=0), "num_steps"),
        (dict(eval_every=0), "eval_every"),
        (dict(l2=np.array([1.0])), r"l2.*\(2,\)"),
        (dict(model_hyperparams={"drop_rate": np.array([0.1, 0.2])}), "model must be a factory"),
    ],
)
def test_run_sweep_bad_input(kwargs, match):
    args = dict(
        train=tiny_models.blobs(64),
        seeds=np.array([0, 1]),
        num_steps=2,
        hyperparams={"learning_rate": np.array([0.1, 0.2])},
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        parallel.run_sweep(mlp_factory(), "sgd", **args)


def test_run_sweep_reports_every_members_update0_loss_as_fit_computes_it():
    """Reference: the documented update 0 written out (first batch of epoch 0, dropout key fold_in(rng, 0))."""
    from jax231 import losses, models

    rng = np.random.default_rng(0)
    train = {"image": rng.normal(size=(48, 6)).astype(np.float32), "label": rng.integers(0, 3, 48).astype(np.int32)}
    model = models.get("mlp", hidden_sizes=(8,), num_classes=3)
    seeds, l2 = np.array([0, 1, 1]), np.array([0.0, 0.5, 5.0], np.float32)
    result = parallel.run_sweep(
        model,
        optimizers.get("sgd", learning_rate=0.1),
        train=train,
        seeds=seeds,
        batch_size=16,
        l2=l2,
        num_steps=2,
        hyperparams={"learning_rate": np.array([0.1, 0.1, 0.2], np.float32)},
    )
    loss_fn = training.make_loss_fn(model)
    expected = []
    for seed, strength in zip(seeds, l2):
        keys = training.run_keys(int(seed))
        state = training.create_train_state(
            model, optimizers.get("sgd", learning_rate=0.1), rng=keys.init, input_shape=(6,)
        )
        idx = np.asarray(training.epoch_permutation(keys.data, 0, 48))[:16]
        value, _ = loss_fn(
            state.params,
            state.model_state,
            {"image": train["image"][idx], "label": train["label"][idx]},
            jax.random.fold_in(state.rng, 0),
            train=True,
        )
        expected.append(float(value) + float(losses.l2_penalty(state.params, strength=strength)))
    # The same float32 forward pass, vmapped there: a few ulp apart.
    np.testing.assert_allclose(result.initial_loss, expected, rtol=1e-6)
    assert result.initial_loss[2] > result.initial_loss[1] > result.initial_loss[0]
    np.testing.assert_array_equal(result.status, ["completed"] * 3)
    np.testing.assert_array_equal(result.first_bad_step, [-1, -1, -1])


def test_frozen_members_equal_fits_last_good_state_wherever_the_bad_update_falls():
    """A diverged member is put back at ``fit``'s last good state, recomputed by the same chunk program.

    With chunks of 2 updates the bad updates fall on update 0 (the start is
    kept), on a chunk's first update (step 2: replayed from the previous
    chunk's start) and inside a chunk (steps 1 and 5: replayed from its start).
    """
    from tests.training import toy

    lrs = np.array([0.1, 1e38, 300.0, 1e3, 1e4], np.float32)
    model = toy.linear()
    sweep = parallel.run_sweep(
        model,
        "sgd",
        train=toy.TRAIN,
        seeds=np.zeros(5, np.int32),
        num_steps=8,
        batch_size=32,
        eval_every=2,
        hyperparams={"learning_rate": lrs},
    )
    np.testing.assert_array_equal(sweep.first_bad_step, [-1, 0, 5, 2, 1])  # the cases the docstring names
    sgd = optimizers.sgd(learning_rate=0.1)  # one object: the learning rates are data, fit compiles once
    for k, lr in enumerate(lrs):
        ref = training.fit(
            model,
            sgd,
            train=toy.TRAIN,
            num_steps=8,
            batch_size=32,
            eval_every=2,
            check_initial_loss=False,
            hyperparams={"learning_rate": float(lr)},
        )
        member = parallel.tree_index(sweep.state, k)
        assert sweep.status[k] == ref.status and int(member.step) == int(ref.state.step), k
        # One member vs the vmapped members: the same float32 operations, to ~1 ulp.
        chex.assert_trees_all_close(member.params, ref.state.params, rtol=1e-6, atol=1e-7)


def test_optimizers_of_one_model_share_its_init_program_and_start_where_fit_starts():
    """run_sweep compiles the model half of the init once per model (_sweep.init_models), bitwise fit's."""
    model, data = tiny_models.mlp(), tiny_models.blobs(32)
    seeds = np.array([3, 4])
    for tx in (optimizers.sgd(learning_rate=0.1), optimizers.adam(learning_rate=1e-3)):
        result = parallel.run_sweep(model, tx, train=data, seeds=seeds, num_steps=1, batch_size=16)
    # This model's entries only: the cache is shared by the whole session and evicts its least
    # recently used programs, so a count over every model's entries may fall between two calls.
    ours = [v for k, v in _cache._entries.items() if k[0] == "sweep_model_init" and k[1] is model]
    assert len(ours) == 1 and ours[0]._cache_size() == 1
    states = parallel.init_sweep(model, tx, seeds=seeds, input_shape=(5,))
    for k, seed in enumerate(seeds):
        ref = training.create_train_state(model, tx, rng=training.run_keys(int(seed)).init, input_shape=(5,))
        chex.assert_trees_all_equal(jax.tree_util.tree_map(lambda x, k=k: x[k], states), ref)
    assert result.status.tolist() == ["completed", "completed"]
