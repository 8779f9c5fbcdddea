"""Deep RL agents on gymnax: one jitted program, vmapped seeds equal sequential seeds, swept hyperparameters.

Tiny configurations (a few hundred environment steps, small networks): these
check the program's semantics, not learning (the experiment measures that).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jax231 import optimizers, rl

# One xdist worker runs this whole module (`--dist loadgroup`, pyproject.toml), so that
# the trained `dqn_runs`/`a2c_runs` fixtures run once, not once per worker.
pytestmark = pytest.mark.xdist_group("rl_agents")

ENV = "CartPole-v1"
STEPS, EVALS = 256, 2


@pytest.fixture(scope="module")
def env():
    return rl.make_env(ENV)


def _tiny_dqn(env, opt=None):
    config = rl.DqnConfig(
        hidden_sizes=(8,),
        num_envs=2,
        buffer_size=128,
        batch_size=16,
        learning_starts=32,
        target_update_every=8,
        epsilon_steps=64,
    )
    return rl.dqn(env, opt or optimizers.adam(1e-3), config)


def _tiny_a2c(env):
    return rl.a2c(env, optimizers.rmsprop(1e-3), rl.ActorCriticConfig(hidden_sizes=(8,), num_envs=4, num_steps=8))


def _leaves(tree, index=None):
    if index is not None:
        tree = jax.tree_util.tree_map(lambda x: x[index], tree)
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


SEEDS = (3, 7)


def _both_ways(agent):
    """The same seeds trained vmapped in one program and one by one (each program compiled once)."""
    many = rl.train_many(agent, SEEDS, total_steps=STEPS, num_evals=EVALS, eval_episodes=2)
    single = jax.jit(rl.make_train(agent, total_steps=STEPS, num_evals=EVALS, eval_episodes=2))
    return many, [single(jax.random.key(seed), {}) for seed in SEEDS]


@pytest.fixture(scope="module")
def dqn_runs(env):
    return _both_ways(_tiny_dqn(env))


@pytest.fixture(scope="module")
def a2c_runs(env):
    return _both_ways(_tiny_a2c(env))


@pytest.mark.parametrize("runs", ["dqn_runs", "a2c_runs"])
def test_vmapped_seeds_equal_seeds_run_one_by_one(request, runs):
    many, singles = request.getfixturevalue(runs)
    for i, one in enumerate(singles):
        # Same seed, same numbers: batched matmuls may reassociate float32 sums (1e-6 relative); over a
        # few hundred updates that stays far below an action flip, so returns are equal and parameters
        # agree to float32 rounding.
        np.testing.assert_array_equal(many.env_steps[i], one.env_steps)
        np.testing.assert_allclose(many.eval_return[i], one.eval_return, rtol=1e-6)
        for a, b in zip(_leaves(many.carry.params, i), _leaves(one.carry.params)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_learning_rates_are_swept_through_the_optimizer_state(env):
    agent = _tiny_dqn(env, optimizers.momentum(1e-2, momentum=0.9))
    lrs = np.array([0.0, 1e-2, 3e-2], np.float32)
    result = rl.train_many(agent, [0, 1], {"learning_rate": lrs}, total_steps=STEPS, num_evals=EVALS, eval_episodes=1)
    assert result.eval_return.shape == (3, 2, EVALS)
    held = optimizers.get_hyperparams(result.carry.opt_state)["learning_rate"]
    np.testing.assert_allclose(held, np.broadcast_to(lrs[:, None], (3, 2)))
    # A learning rate of 0 never moves the online network from its initialisation; 1e-2 does.
    # (make_train splits the seed's key into (init key, eval key) and init draws the network first.)
    start = jax.vmap(lambda k: agent.init(jax.random.split(k)[0], {}).params)(rl.seed_keys([0, 1]))
    # (init is compiled in another program here: equal up to float32 rounding of the initializer.)
    for a, b in zip(_leaves(result.carry.params, 0), _leaves(start)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    moved = [np.abs(a - b).max() for a, b in zip(_leaves(result.carry.params, 1), _leaves(start))]
    assert max(moved) > 1e-3


def test_dqn_fills_its_buffer_with_the_transitions_it_saw(dqn_runs):
    result = dqn_runs[1][0]
    buffer = result.carry.buffer
    assert int(buffer.size) == 128 and int(result.carry.iteration) == STEPS // 2
    data = jax.tree_util.tree_map(np.asarray, buffer.data)
    # CartPole pays 1 per step; actions are 0 or 1.
    np.testing.assert_array_equal(data.reward, 1.0)
    assert set(np.unique(data.action).tolist()) <= {0, 1}
    # With num_envs=2, the next_obs of a transition is the obs stored two slots later (same
    # environment) exactly when the episode went on; where it terminated, next_obs is the final
    # observation and the environment restarted (no time-limit truncation within 128 steps).
    order = (np.arange(128) + int(buffer.position)) % 128  # oldest first
    obs, nxt, done = data.obs[order], data.next_obs[order], data.done[order]
    same = np.abs(nxt[:-2] - obs[2:]).max(1) < 1e-6
    np.testing.assert_array_equal(same, ~done[:-2])
    assert 0 < done.sum() < 64  # a near-random policy ends CartPole episodes every ~20 steps


@pytest.mark.parametrize("name", ["ppo", "reinforce"])
def test_other_agents_run_and_report_finite_metrics(env, name):
    if name == "ppo":
        config = rl.PPO_CONFIG._replace(hidden_sizes=(8,), num_envs=2, num_steps=16, num_minibatches=2)
        agent, steps = rl.ppo(env, optimizers.adam(1e-3), config), 32
    else:
        agent = rl.reinforce(env, optimizers.adam(1e-3), rl.ReinforceConfig(hidden_sizes=(8,), num_envs=2))
        steps = 2 * 500
    result = rl.train_many(agent, [0], total_steps=steps * EVALS, num_evals=EVALS, eval_episodes=1)
    returns = np.asarray(result.eval_return)
    assert np.all((returns >= 1) & (returns <= 500))  # CartPole returns are episode lengths
    for value in result.metrics.values():
        assert np.all(np.isfinite(np.asarray(value)))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: rl.make_env("CartPole-v2"), "env_name: expected one of CartPole-v1, Acrobot-v1"),
        (
            lambda: rl.dqn(rl.make_env(ENV), optimizers.adam(1e-3), rl.DqnConfig(discount=1.0)),
            "discount: expected a discount in [0, 1), got 1.0",
        ),
        (
            lambda: rl.dqn(rl.make_env(ENV), optimizers.adam(1e-3), rl.DqnConfig(epsilon_end=1.5)),
            "epsilon_end: expected a probability in [0, 1], got 1.5",
        ),
        (
            lambda: rl.a2c(rl.make_env(ENV), optimizers.adam(1e-3), rl.ActorCriticConfig(discount=-0.5)),
            "discount: expected a discount in [0, 1), got -0.5",
        ),
        (
            lambda: rl.make_train(_tiny_dqn(rl.make_env(ENV)), total_steps=3, num_evals=2),
            "total_steps: expected at least num_evals x steps_per_iteration = 4, got 3",
        ),
        (
            lambda: rl.train_many(_tiny_dqn(rl.make_env(ENV)), [0], {"learning_rate": 1e-3}, total_steps=64),
            "hyperparams: expected 1-D arrays of one common length",
        ),
    ],
)
def test_bad_input_one_line(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
