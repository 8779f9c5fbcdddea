"""Transforms, parameter averaging, hyperparameter access, the registry and bad input."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jax231.optimizers as jopt
from tests import test_utils


def _tree(seed=0, scale=1.0):
    rng = np.random.RandomState(seed)
    return {"w": jnp.asarray(scale * rng.randn(4, 3)), "b": [jnp.asarray(scale * rng.randn(3))]}


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda: jopt.clip_by_global_norm(1.0), lambda: optax.clip_by_global_norm(1.0)),  # clipped
        (lambda: jopt.clip_by_global_norm(100.0), lambda: optax.clip_by_global_norm(100.0)),  # untouched
        (lambda: jopt.add_weight_decay(0.1), lambda: optax.add_decayed_weights(0.1)),
        (
            lambda: jopt.chain(jopt.add_weight_decay(0.1), jopt.momentum(0.1)),
            lambda: optax.chain(optax.add_decayed_weights(0.1), optax.sgd(0.1, momentum=0.9)),
        ),
    ],
    ids=["clip_active", "clip_inactive", "weight_decay", "chain"],
)
def test_transforms_match_optax(ours, theirs):
    with test_utils.x64():
        params = _tree(0)
        ours, theirs = ours(), theirs()
        s_ours, s_theirs = ours.init(params), theirs.init(params)
        for k in range(3):
            grads = _tree(k + 1, scale=2.0)
            u_ours, s_ours = jax.jit(ours.update)(grads, s_ours, params)
            u_theirs, s_theirs = theirs.update(grads, s_theirs, params)
            # Same float64 formula on both sides.
            chex.assert_trees_all_close(u_ours, u_theirs, rtol=1e-12, atol=1e-14)
            params = jopt.apply_updates(params, u_ours)


def test_clip_bounds_the_norm():
    grads = _tree(1, scale=10.0)
    clipped, _ = jopt.clip_by_global_norm(1.5).update(grads, jopt.clip_by_global_norm(1.5).init(grads))
    np.testing.assert_allclose(jopt._tree_math.norm(clipped), 1.5, rtol=1e-6)  # float32


def test_ema_matches_numpy_and_polyak_is_the_mean():
    with test_utils.x64():
        iterates = [_tree(k) for k in range(6)]
        ema, polyak = jopt.ema(0.8), jopt.polyak_average()
        s_ema, s_pol = ema.init(iterates[0]), polyak.init(iterates[0])
        for p in iterates[1:]:
            s_ema = jax.jit(ema.update)(p, s_ema)
            s_pol = jax.jit(polyak.update)(p, s_pol)
        want_ema = iterates[0]["w"]
        for p in iterates[1:]:
            want_ema = 0.8 * want_ema + 0.2 * p["w"]
        want_mean = np.mean([p["w"] for p in iterates], axis=0)
        assert test_utils.rel_error(s_ema.average["w"], want_ema) < 1e-12  # float64, same formula
        assert test_utils.rel_error(s_pol.average["w"], want_mean) < 1e-12
        assert int(s_pol.step) == 6


def test_set_hyperparams_through_a_chain_and_get_them_back():
    opt = jopt.chain(jopt.clip_by_global_norm(1.0), jopt.adamw(1e-3, weight_decay=0.1))
    state = opt.init(_tree())
    state = jopt.set_hyperparams(state, learning_rate=0.5, max_norm=2.0, weight_decay=0.0)
    hp = jopt.get_hyperparams(state)
    assert float(hp["learning_rate"]) == 0.5 and float(hp["max_norm"]) == 2.0
    assert float(hp["weight_decay"]) == 0.0
    with pytest.raises(ValueError, match=r"momentum.*holds.*learning_rate"):
        jopt.set_hyperparams(state, momentum=0.9)


def test_set_hyperparams_changes_the_update():
    opt = jopt.sgd(0.1)
    params = _tree()
    state = jopt.set_hyperparams(opt.init(params), learning_rate=0.3)
    updates, _ = opt.update(params, state)
    chex.assert_trees_all_close(updates, jax.tree_util.tree_map(lambda p: -0.3 * p, params), rtol=1e-6)


def test_vmap_over_momentum_and_weight_decay():
    """The sweep axes of the scale issue: one program, many (momentum, weight decay) pairs."""
    opt = jopt.chain(jopt.add_weight_decay(0.0), jopt.momentum(0.1, momentum=0.0))
    params = _tree()
    rhos, wds = jnp.array([0.0, 0.5, 0.9]), jnp.array([0.0, 0.1, 0.2])

    def two_steps(rho, wd):
        s = jopt.set_hyperparams(opt.init(params), momentum=rho, weight_decay=wd)
        p = params
        for _ in range(2):
            u, s = opt.update(p, s, p)
            p = jopt.apply_updates(p, u)
        return p

    batched = jax.vmap(two_steps)(rhos, wds)
    for i in range(3):
        ref_opt = jopt.chain(jopt.add_weight_decay(float(wds[i])), jopt.momentum(0.1, momentum=float(rhos[i])))
        s, p = ref_opt.init(params), params
        for _ in range(2):
            u, s = ref_opt.update(p, s, p)
            p = jopt.apply_updates(p, u)
        chex.assert_trees_all_close(jax.tree_util.tree_map(lambda x: x[i], batched), p, rtol=1e-6)


# ---------------------------------------------------------------------------- registry


def test_registry_builds_every_name():
    assert jopt.NAMES == (
        "sgd",
        "momentum",
        "nesterov",
        "adagrad",
        "rmsprop",
        "adam",
        "adamw",
        "lbfgs",
        "newton",
        "bfgs",
        "nadam",
        "nadamw",
        "lion",
        "schedule_free_sgd",
        "schedule_free_adamw",
        "muon",
        "shampoo",
    )
    for name in jopt.NAMES:
        opt = jopt.get(name, learning_rate=0.1)
        assert isinstance(opt, jopt.GradientTransformation)
        assert jopt.needs_value_fn(name) == (name in ("lbfgs", "newton", "bfgs"))  # the rules that need the objective
    state = jopt.get("momentum", learning_rate=0.2, momentum=0.5).init(_tree())
    assert float(state.hyperparams["momentum"]) == 0.5


def test_registry_errors_list_valid_choices():
    with pytest.raises(ValueError, match="optimizer name: expected one of sgd, momentum.*lbfgs.*shampoo, got 'adamax'"):
        jopt.get("adamax")
    with pytest.raises(
        ValueError, match=r"sgd keyword arguments: expected some of \(learning_rate\), got unknown momentum"
    ):
        jopt.get("sgd", momentum=0.9)


# ---------------------------------------------------------------------------- bad input

BAD = [
    (jopt.sgd, dict(learning_rate=-0.1), "learning_rate"),
    (jopt.momentum, dict(momentum=1.0), "momentum"),
    (jopt.nesterov, dict(momentum=-0.1), "momentum"),
    (jopt.adagrad, dict(eps=0.0), "eps"),
    (jopt.rmsprop, dict(decay=1.5), "decay"),
    (jopt.rmsprop, dict(eps=-1e-8), "eps"),
    (jopt.adam, dict(beta1=1.0), "beta1"),
    (jopt.adam, dict(beta2=-0.5), "beta2"),
    (jopt.adamw, dict(weight_decay=-1e-4), "weight_decay"),
    (jopt.lbfgs, dict(history=0), "history"),
    (jopt.lbfgs, dict(learning_rate=-1.0), "learning_rate"),
    (jopt.clip_by_global_norm, dict(max_norm=0.0), "max_norm"),
    (jopt.ema, dict(decay=1.0), "decay"),
    (jopt.sgd, dict(learning_rate=np.array([0.1, 0.2])), "learning_rate"),  # not a scalar
]


@pytest.mark.parametrize("factory, kwargs, name", BAD, ids=[f"{f.__name__}-{n}" for f, _, n in BAD])
def test_bad_hyperparameters_raise_at_construction(factory, kwargs, name):
    with pytest.raises(ValueError, match=rf"{name}: expected .*got"):  # names it, says what and what came
        factory(**kwargs)


def test_traced_hyperparameters_are_accepted():
    """Validation only applies to concrete values: factories work under vmap."""
    params = {"w": jnp.ones(3)}

    def final(lr):
        opt = jopt.sgd(lr)
        u, _ = opt.update(params, opt.init(params))
        return u["w"]

    np.testing.assert_allclose(jax.vmap(final)(jnp.array([0.1, 0.2]))[:, 0], [-0.1, -0.2], rtol=1e-6)


def test_missing_params_raise():
    with pytest.raises(ValueError, match="params"):
        opt = jopt.adamw()
        opt.update(_tree(), opt.init(_tree()))
    with pytest.raises(ValueError, match="params"):
        opt = jopt.add_weight_decay(0.1)
        opt.update(_tree(), opt.init(_tree()))
