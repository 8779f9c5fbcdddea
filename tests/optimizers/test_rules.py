"""The first-order update rules, checked table-driven against NumPy float64 and optax.

One table, ``RULES``, drives every check: each row names a rule, builds it,
gives a float64 NumPy transcription of the formula of the notes, the optax
optimizer with the same math (where one exists) and hyperparameters that
converge on the two test problems.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import parameterized

import jax231.optimizers as jopt
from tests import test_utils

# ------------------------------------------------------------------ NumPy transcriptions
# Each reference is (init(leaf) -> dict, step(leaf_params, leaf_grad, state, t) -> (delta, state)),
# written leaf by leaf in float64 straight from the formulas, t = 1, 2, ... the update count.


def np_sgd(lr):
    return (lambda p: {}), (lambda p, g, s, t: (-lr * g, s))


def np_momentum(lr, rho):
    def step(p, g, s, t):
        v = rho * s["v"] + g
        return -lr * v, {"v": v}

    return (lambda p: {"v": np.zeros_like(p)}), step


def np_nesterov(lr, rho):
    def step(p, g, s, t):
        v = rho * s["v"] + g
        return -lr * (g + rho * v), {"v": v}

    return (lambda p: {"v": np.zeros_like(p)}), step


def np_adagrad(lr, eps):
    def step(p, g, s, t):
        G = s["G"] + g * g
        return -lr * g / (np.sqrt(G) + eps), {"G": G}

    return (lambda p: {"G": np.zeros_like(p)}), step


def np_rmsprop(lr, beta, eps):
    def step(p, g, s, t):
        G = beta * s["G"] + (1 - beta) * g * g
        return -lr * g / (np.sqrt(G) + eps), {"G": G}

    return (lambda p: {"G": np.zeros_like(p)}), step


def np_adam(lr, b1, b2, eps, wd=0.0):
    def step(p, g, s, t):
        m = b1 * s["m"] + (1 - b1) * g
        v = b2 * s["v"] + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        return -lr * (m_hat / (np.sqrt(v_hat) + eps) + wd * p), {"m": m, "v": v}

    return (lambda p: {"m": np.zeros_like(p), "v": np.zeros_like(p)}), step


@dataclasses.dataclass(frozen=True)
class Rule:
    name: str
    make: Callable[[], jopt.GradientTransformation]  # the rule under test
    numpy_ref: tuple  # float64 transcription with the same hyperparameters as ``make``
    optax_pair: tuple | None  # (our factory, optax factory) with identical math
    converging: Callable[[], jopt.GradientTransformation]  # hyperparameters for the convergence test

    def __repr__(self):
        return self.name


RULES = [
    Rule(
        "sgd",
        lambda: jopt.sgd(0.1),
        np_sgd(0.1),
        (lambda: jopt.sgd(0.1), lambda: optax.sgd(0.1)),
        lambda: jopt.sgd(1.9e-3),
    ),
    Rule(
        "momentum",
        lambda: jopt.momentum(0.05, momentum=0.8),
        np_momentum(0.05, 0.8),
        (lambda: jopt.momentum(0.05, momentum=0.8), lambda: optax.sgd(0.05, momentum=0.8)),
        lambda: jopt.momentum(1e-3, momentum=0.9),
    ),
    Rule(
        "nesterov",
        lambda: jopt.nesterov(0.05, momentum=0.8),
        np_nesterov(0.05, 0.8),
        (lambda: jopt.nesterov(0.05, momentum=0.8), lambda: optax.sgd(0.05, momentum=0.8, nesterov=True)),
        lambda: jopt.nesterov(1e-3, momentum=0.9),
    ),
    # optax's adagrad puts eps inside the root: the two agree at eps -> 0 (1e-30 vs 0).
    Rule(
        "adagrad",
        lambda: jopt.adagrad(0.1, eps=1e-3),
        np_adagrad(0.1, 1e-3),
        (lambda: jopt.adagrad(0.1, eps=1e-30), lambda: optax.adagrad(0.1, initial_accumulator_value=0.0, eps=0.0)),
        lambda: jopt.adagrad(0.3),
    ),
    Rule(
        "rmsprop",
        lambda: jopt.rmsprop(0.01, decay=0.9, eps=1e-3),
        np_rmsprop(0.01, 0.9, 1e-3),
        (
            lambda: jopt.rmsprop(0.01, decay=0.9, eps=1e-3),
            lambda: optax.rmsprop(0.01, decay=0.9, eps=1e-3, eps_in_sqrt=False),
        ),
        lambda: jopt.rmsprop(3e-3),
    ),
    Rule(
        "adam",
        lambda: jopt.adam(0.01, beta1=0.8, beta2=0.99, eps=1e-3),
        np_adam(0.01, 0.8, 0.99, 1e-3),
        (lambda: jopt.adam(0.01, beta1=0.8, beta2=0.99, eps=1e-3), lambda: optax.adam(0.01, b1=0.8, b2=0.99, eps=1e-3)),
        lambda: jopt.adam(3e-2),
    ),
    Rule(
        "adamw",
        lambda: jopt.adamw(0.01, eps=1e-3, weight_decay=0.1),
        np_adam(0.01, 0.9, 0.999, 1e-3, 0.1),
        (lambda: jopt.adamw(0.01, eps=1e-3, weight_decay=0.1), lambda: optax.adamw(0.01, eps=1e-3, weight_decay=0.1)),
        lambda: jopt.adamw(3e-2, weight_decay=1e-4),
    ),
]
RULE_IDS = [r.name for r in RULES]
RULES_BY_NAME = {r.name: r for r in RULES}

# ------------------------------------------------------------------ the nested problem

SHAPES = {"conv": {"w": (3, 2, 2), "b": (2,)}, "head": ((4, 3), (3,)), "scale": ()}
NUM_STEPS = 200


def make_params(dtype=np.float64) -> Any:
    rng = np.random.RandomState(0)
    return jax.tree_util.tree_map(
        lambda s: np.asarray(rng.randn(*s), dtype),
        SHAPES,
        is_leaf=lambda s: isinstance(s, tuple) and all(isinstance(i, int) for i in s),
    )


def make_noise(num_steps: int) -> Any:
    """Per-step gradient noise, stacked along a leading axis of length ``num_steps``."""
    rng = np.random.RandomState(1)
    return jax.tree_util.tree_map(lambda p: rng.randn(num_steps, *np.shape(p)), make_params())


def grad_fn(params, noise_t):
    """The gradient fed to the rules: of 0.25 ||p||^2 plus noise, so errors would compound."""
    return jax.tree_util.tree_map(lambda p, n: 0.5 * p + n, params, noise_t)


def run_numpy(rule: Rule, num_steps: int) -> Any:
    init, step = rule.numpy_ref
    params = jax.tree_util.tree_map(np.asarray, make_params())
    noise = make_noise(num_steps)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    noise_leaves = jax.tree_util.tree_leaves(noise)
    states = [init(p) for p in leaves]
    for t in range(num_steps):
        for i, p in enumerate(leaves):
            g = 0.5 * p + noise_leaves[i][t]
            delta, states[i] = step(p, g, states[i], t + 1)
            leaves[i] = p + delta
    return jax.tree_util.tree_unflatten(treedef, leaves)


def run_jax(opt, num_steps: int, params=None, update_fn=None) -> Any:
    """``num_steps`` updates in one jitted ``lax.scan``; works for jax231 and optax rules."""
    params = make_params() if params is None else params
    noise = jax.tree_util.tree_map(jnp.asarray, make_noise(num_steps))
    update_fn = opt.update if update_fn is None else update_fn

    @jax.jit
    def go(params, noise):
        def body(carry, noise_t):
            p, s = carry
            u, s = update_fn(grad_fn(p, noise_t), s, p)
            return (optax.apply_updates(p, u), s), None

        (p, _), _ = jax.lax.scan(body, (params, opt.init(params)), noise)
        return p

    return go(jax.tree_util.tree_map(jnp.asarray, params), noise)


# ------------------------------------------------------------------ equality with references


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_matches_numpy_float64_over_200_steps(rule):
    with test_utils.x64():
        got = run_jax(rule.make(), NUM_STEPS)
        want = run_numpy(rule, NUM_STEPS)
        # Same formula in float64 on both sides: only rounding separates them.
        assert test_utils.tree_rel_error(got, want) < 1e-6
        chex.assert_trees_all_equal_structs(got, want)


@pytest.mark.parametrize("rule", [r for r in RULES if r.optax_pair], ids=[r.name for r in RULES if r.optax_pair])
def test_matches_optax_over_200_steps(rule):
    ours, theirs = rule.optax_pair
    with test_utils.x64():
        got = run_jax(ours(), NUM_STEPS)
        want = run_jax(theirs(), NUM_STEPS)
        # Identical math in float64; the order of operations differs by a few ulps per
        # step (and eps 1e-30 vs 0 for adagrad), far below 1e-6.
        assert test_utils.tree_rel_error(got, want) < 1e-6


def test_optax_interop_chain_and_apply_updates():
    """Our rule runs inside optax.chain, after an optax transform, with optax.apply_updates."""
    with test_utils.x64():
        got = run_jax(optax.chain(optax.clip_by_global_norm(1.0), jopt.adam(0.01)), 20)
        want = run_jax(optax.chain(optax.clip_by_global_norm(1.0), optax.adam(0.01)), 20)
        assert test_utils.tree_rel_error(got, want) < 1e-10  # same float64 math


class VariantsTest(chex.TestCase):
    """jit and non-jit give the same numbers (both equal the float64 reference)."""

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*[(r.name, r.name) for r in RULES])
    def test_jit_and_eager_agree(self, name):
        rule = RULES_BY_NAME[name]
        with test_utils.x64():
            opt = rule.make()
            update = self.variant(opt.update)
            params = jax.tree_util.tree_map(jnp.asarray, make_params())
            noise = make_noise(3)
            state = opt.init(params)
            for t in range(3):
                g = grad_fn(params, jax.tree_util.tree_map(lambda n: n[t], noise))
                u, state = update(g, state, params)
                params = jopt.apply_updates(params, u)
            # float64 both sides; 1e-10 leaves room for XLA's fusion reordering only.
            assert test_utils.tree_rel_error(params, run_numpy(rule, 3)) < 1e-10


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_no_retrace_on_second_call(rule):
    opt = rule.make()
    params = make_params(np.float32)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(grads, state, params):
        return opt.update(grads, state, params)

    state = opt.init(params)
    for _ in range(3):  # new grads values and a new step count each call
        _, state = step(jax.tree_util.tree_map(jnp.ones_like, params), state, params)
    chex.clear_trace_counter()


def test_schedule_learning_rate_does_not_retrace_and_is_reported():
    sched = jopt.schedules.exponential_decay(0.1, decay_rate=0.5)
    opt = jopt.momentum(sched, momentum=0.5)
    params = {"w": jnp.ones(3)}

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(grads, state):
        return opt.update(grads, state)

    state = opt.init(params)
    for t in range(3):
        _, state = step(params, state)
        # the value used at update t is written back for logging
        np.testing.assert_allclose(state.hyperparams["learning_rate"], 0.1 * np.exp(-0.5 * t), rtol=1e-6)
    chex.clear_trace_counter()


# ------------------------------------------------------------------ vmap over hyperparameters


def check_vmap_over_8_learning_rates(opt, *, atol: float) -> None:
    """8 learning rates set in the state of one vmapped program equal 8 runs of one compiled program."""
    lrs = jnp.logspace(-3, -1, 8)
    params = jax.tree_util.tree_map(jnp.asarray, make_params(np.float32))
    noise = jax.tree_util.tree_map(jnp.asarray, make_noise(10))

    def run(state):
        def body(carry, noise_t):
            p, s = carry
            u, s = opt.update(grad_fn(p, noise_t), s, p)
            return (jopt.apply_updates(p, u), s), None

        return jax.lax.scan(body, (params, state), noise)[0][0]

    def init_with(lr):
        return jopt.set_hyperparams(opt.init(params), learning_rate=lr)

    batched = jax.jit(jax.vmap(lambda lr: run(init_with(lr))))(lrs)
    run_one = jax.jit(run)  # compiled once, called 8 times
    for i, lr in enumerate(np.asarray(lrs)):
        single = run_one(init_with(lr))
        # float32, one program vs another: XLA may vectorise differently (a few ulps).
        chex.assert_trees_all_close(jax.tree_util.tree_map(lambda x: x[i], batched), single, rtol=1e-5, atol=atol)


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_vmap_over_8_learning_rates_equals_8_runs(rule):
    check_vmap_over_8_learning_rates(rule.make(), atol=1e-6)


# ------------------------------------------------------------------ dtypes, extras, structure


def check_keeps_dtype_and_structure(opt, dtype) -> None:
    """Three jitted updates keep every leaf's dtype and the tree's structure, finite (and the
    evaluation point's dtypes, where the rule has one)."""
    params = jax.tree_util.tree_map(lambda p: jnp.asarray(p, dtype), make_params())
    state = opt.init(params)
    update = jax.jit(opt.update)
    for _ in range(3):
        updates, state = update(params, state, params)
        params = jopt.apply_updates(params, updates)
    chex.assert_trees_all_equal_dtypes(params, jax.tree_util.tree_map(lambda p: jnp.zeros((), dtype), make_params()))
    chex.assert_trees_all_equal_dtypes(updates, params)
    chex.assert_trees_all_equal_structs(params, make_params())
    chex.assert_tree_all_finite(params)
    if opt.eval_params is not None:
        chex.assert_trees_all_equal_dtypes(opt.eval_params(state, params), params)


def check_ignores_unknown_extras(opt) -> None:
    """``update`` with extras it does not use (an objective, an rng) returns what it returns without them."""
    params = jax.tree_util.tree_map(jnp.asarray, make_params(np.float32))
    state = opt.init(params)
    plain = opt.update(params, state, params)
    with_extras = opt.update(params, state, params, value=jnp.ones(()), value_fn=lambda p: 0.0, rng=7)
    chex.assert_trees_all_equal(plain, with_extras)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32])
@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_params_keep_their_dtype(rule, dtype):
    check_keeps_dtype_and_structure(rule.make(), dtype)


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_unknown_extras_are_ignored(rule):
    check_ignores_unknown_extras(rule.make())


def check_grads_not_matching_state_raise(opt) -> None:
    """Gradients of another structure, or a leaf of another shape, than the state: a ``ValueError``
    naming both structures, or the leaf and its shape."""
    params = {"a": jnp.ones(3), "b": jnp.ones(2)}
    state = opt.init(params)
    with pytest.raises(ValueError, match=r"grads.*structure.*'a'.*'c'|grads.*'c'.*structure.*'a'"):
        opt.update({"a": jnp.ones(3), "c": jnp.ones(2)}, state, params)
    with pytest.raises(ValueError, match=r"grads\['b'\] has shape \(4,\)"):
        opt.update({"a": jnp.ones(3), "b": jnp.ones(4)}, state, params)


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_grads_not_matching_state_raise_naming_both(rule):
    check_grads_not_matching_state_raise(rule.make())


# ------------------------------------------------------------------ convergence

LAMBDAS = jnp.logspace(0, 3, 10)  # condition number 1e3


def quadratic(x):
    return 0.5 * jnp.sum(LAMBDAS * x["a"] ** 2)


def rosenbrock(x):
    a = x["a"]
    return 100 * (a[1] - a[0] ** 2) ** 2 + (1 - a[0]) ** 2


CONVERGENCE_PROBLEMS = [(quadratic, np.ones(10), np.zeros(10)), (rosenbrock, np.array([-1.2, 1.0]), np.ones(2))]
CONVERGENCE_IDS = ["quadratic_cond1e3", "rosenbrock"]


def check_converges(opt, problem, x0, x_star) -> None:
    """10,000 updates from ``x0`` end within 1e-2 of ``x_star`` (at the rule's evaluation point, where it has one)."""

    @jax.jit
    def go(x):
        def body(carry, _):
            x, s = carry
            u, s = opt.update(jax.grad(problem)(x), s, x)
            return (jopt.apply_updates(x, u), s), None

        x, s = jax.lax.scan(body, (x, opt.init(x)), None, length=10_000)[0]
        return x if opt.eval_params is None else opt.eval_params(s, x)

    x = go({"a": jnp.asarray(x0, jnp.float32)})
    # From a distance of >= 2.2 to within 1e-2: constant-step adaptive rules hover at a
    # floor of about the learning rate (rmsprop 3e-3: 4e-3), the others land closer.
    assert np.linalg.norm(np.asarray(x["a"]) - x_star) < 1e-2


@pytest.mark.parametrize("problem, x0, x_star", CONVERGENCE_PROBLEMS, ids=CONVERGENCE_IDS)
@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_converges(rule, problem, x0, x_star):
    check_converges(rule.converging(), problem, x0, x_star)
