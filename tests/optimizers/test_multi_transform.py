"""Per-group optimizers against optax: multi_transform, set_to_zero, scale_by_group.

Tolerances: 20 float32 steps of the same arithmetic in a different order; the
updates agree to ~1e-6 relative, we allow 1e-5.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jax231 import optimizers


def _params():
    k = jax.random.split(jax.random.key(0), 3)
    return {
        "stage_0": {"w": jax.random.normal(k[0], (4, 3))},
        "stage_1": {"w": jax.random.normal(k[1], (3, 3)), "b": jnp.zeros(3)},
        "head": {"w": jax.random.normal(k[2], (3, 2)), "b": jnp.zeros(2)},
    }


def _labels(params):
    return {
        g: jax.tree_util.tree_map(lambda _, g=g: g if g != "stage_0" else "frozen", sub) for g, sub in params.items()
    }


def _loss(params, x):
    h = jnp.tanh(x @ params["stage_0"]["w"])
    h = jnp.tanh(h @ params["stage_1"]["w"] + params["stage_1"]["b"])
    return jnp.mean((h @ params["head"]["w"] + params["head"]["b"]) ** 2)


def _run(opt, apply_updates, steps=20):
    params, x = _params(), jax.random.normal(jax.random.key(1), (8, 4))
    state = opt.init(params)
    for _ in range(steps):
        updates, state = opt.update(jax.grad(_loss)(params, x), state, params)
        params = apply_updates(params, updates)
    return params, updates


def test_multi_transform_equals_optax_over_20_steps():
    ours = optimizers.multi_transform(
        {
            "head": optimizers.adam(learning_rate=1e-2),
            "stage_1": optimizers.momentum(learning_rate=0.1, momentum=0.9),
            "frozen": optimizers.set_to_zero(),
        },
        _labels,
    )
    ref = optax.multi_transform(
        {"head": optax.adam(1e-2), "stage_1": optax.sgd(0.1, momentum=0.9), "frozen": optax.set_to_zero()}, _labels
    )
    (p, u), (p_ref, _) = _run(ours, optimizers.apply_updates), _run(ref, optax.apply_updates)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), p, p_ref)
    assert np.all(np.asarray(u["stage_0"]["w"]) == 0.0)  # frozen: exactly zero, every step
    np.testing.assert_array_equal(p["stage_0"]["w"], _params()["stage_0"]["w"])


def test_scale_by_group_is_sgd_with_per_group_learning_rates():
    scales = {"frozen": 0.0, "stage_1": 0.1, "head": 1.0}
    ours = optimizers.chain(optimizers.sgd(learning_rate=0.5), optimizers.scale_by_group(scales, _labels))
    ref = optax.multi_transform({k: optax.sgd(0.5 * v) for k, v in scales.items()}, _labels)
    p, _ = _run(ours, optimizers.apply_updates)
    p_ref, _ = _run(ref, optax.apply_updates)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), p, p_ref)
    state = optimizers.set_hyperparams(ours.init(_params()), scale_head=0.25)
    assert float(optimizers.get_hyperparams(state)["scale_head"]) == 0.25


def test_bad_labels_and_scales():
    with pytest.raises(ValueError, match="labels: expected labels among"):
        optimizers.multi_transform({"head": optimizers.sgd(learning_rate=0.1)}, _labels).init(_params())
    with pytest.raises(ValueError, match="scales: expected a scale for every label"):
        optimizers.scale_by_group({"head": 1.0}, _labels).init(_params())
    with pytest.raises(ValueError, match="scales"):
        optimizers.scale_by_group({"head": -1.0}, _labels)
