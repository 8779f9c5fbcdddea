"""Tabular RL: grid world, closed-form policy evaluation, value/Q/policy iteration, Q-learning.

References: a float64 NumPy transcription of the Bellman equations written here.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jax231 import rl

LAYOUT = (
    "....G",
    ".#.#P",
    "S....",
)


def _numpy_mdp(mdp):
    p = np.asarray(mdp.transitions, np.float64)
    r = np.sum(p * np.asarray(mdp.rewards, np.float64), axis=-1)
    return p, r, mdp.discount


def _numpy_policy_values(mdp, policy):
    """V^pi by solving (I - gamma P_pi) V = r_pi in float64."""
    p, r, gamma = _numpy_mdp(mdp)
    s = np.arange(p.shape[0])
    return np.linalg.solve(np.eye(p.shape[0]) - gamma * p[s, policy], r[s, policy])


@pytest.fixture(scope="module", params=[(rl.CLASSIC_LAYOUT, 0.2, 0.99), (LAYOUT, 0.1, 0.9)])
def mdp(request):
    layout, slip, discount = request.param
    return rl.grid_world(layout, slip=slip, discount=discount)


def test_grid_world_is_a_distribution_with_absorbing_terminals(mdp):
    p = np.asarray(mdp.transitions)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-6)
    for s in np.flatnonzero(np.asarray(mdp.terminal)):
        np.testing.assert_array_equal(p[s, :, s], 1.0)
        np.testing.assert_array_equal(np.asarray(mdp.rewards)[s], 0.0)


def test_classic_world_moves_and_slips():
    mdp = rl.grid_world(slip=0.2, step_reward=-0.04)
    # From the start (row 2, col 0 = state 8), "up" reaches state 4 w.p. 0.8, slips right to 9
    # w.p. 0.1, and left bumps into the border (stays at 8) w.p. 0.1.
    p = np.asarray(mdp.transitions)[8, rl.ACTIONS.index("up")]
    np.testing.assert_allclose(p[[4, 9, 8]], [0.8, 0.1, 0.1], atol=1e-6)
    # Entering the goal (state 3) from state 2 by moving right pays step + goal reward.
    assert np.asarray(mdp.rewards)[2, rl.ACTIONS.index("right"), 3] == pytest.approx(0.96)


def test_value_iteration_solves_the_optimal_policys_linear_system(mdp):
    result = rl.value_iteration(mdp, tol=1e-7)
    policy = np.asarray(result.policy)
    # V* must satisfy V^pi* = (I - gamma P_pi*)^-1 r_pi* for its own greedy policy (float64 solve);
    # value iteration stops at a sup-norm change tol, so it is within gamma tol / (1 - gamma) of V*
    # plus float32 rounding (values are O(1)).
    exact = _numpy_policy_values(mdp, policy)
    np.testing.assert_allclose(result.values, exact, atol=1e-4)
    np.testing.assert_allclose(rl.policy_evaluation(mdp, result.policy), exact, atol=1e-5)
    # And no other action improves on it (Bellman optimality in float64).
    p, r, gamma = _numpy_mdp(mdp)
    q = r + gamma * p @ exact
    assert np.all(q.max(1) <= exact + 1e-5)


def test_q_iteration_and_policy_iteration_agree_with_value_iteration(mdp):
    vi = rl.value_iteration(mdp, tol=1e-7)
    qi = rl.q_iteration(mdp, tol=1e-7)
    pi = rl.policy_iteration(mdp)
    np.testing.assert_allclose(qi.q_values, vi.q_values, atol=1e-4)
    np.testing.assert_allclose(pi.values, vi.values, atol=1e-4)
    np.testing.assert_array_equal(pi.policy, vi.policy)
    assert 1 <= int(pi.iterations) < int(vi.iterations)  # policy iteration: few exact steps


def test_policy_evaluation_of_a_stochastic_policy_matches_iterated_bellman_backups(mdp):
    probs = np.asarray(jax.nn.softmax(jax.random.normal(jax.random.key(0), mdp.transitions.shape[:2])))
    p, r, gamma = _numpy_mdp(mdp)
    v = np.zeros(p.shape[0])
    for _ in range(2000):  # gamma^2000 < 1e-9 for gamma <= 0.99
        v = np.sum(probs * (r + gamma * p @ v), axis=1)
    np.testing.assert_allclose(rl.policy_evaluation(mdp, probs), v, atol=1e-4)


def test_tabular_q_learning_converges_to_q_star():
    mdp = rl.grid_world(slip=0.2, discount=0.9)
    q_star = np.asarray(rl.value_iteration(mdp, tol=1e-7).q_values)
    state = rl.tabular_q_learning(mdp, jax.random.key(0), num_steps=200_000, epsilon=0.5)
    live = ~np.asarray(mdp.terminal)
    # 200k samples over 36 live pairs (>= 1,000 visits each, step sizes n^-0.7): errors of a few 1e-2;
    # 0.05 is about 10% of the smallest |Q*| and fails for a wrong target (e.g. no discount).
    assert np.asarray(state.visits)[live].min() > 1000
    np.testing.assert_allclose(np.asarray(state.q_values)[live], q_star[live], atol=0.05)
    np.testing.assert_array_equal(np.asarray(state.q_values).argmax(1)[live], q_star.argmax(1)[live])


def test_epsilon_greedy_frequencies():
    q = np.array([0.0, 2.0, 1.0])
    actions = np.asarray(rl.epsilon_greedy(jax.random.key(1), np.tile(q, (20_000, 1)), 0.3))
    freq = np.bincount(actions, minlength=3) / actions.size
    expected = np.array([0.1, 0.8, 0.1])  # 0.3 / 3 each, plus 0.7 on the greedy action
    np.testing.assert_allclose(freq, expected, atol=4 * np.sqrt(0.8 * 0.2 / actions.size))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: rl.grid_world(discount=1.0), "discount: expected a discount in [0, 1), got 1.0"),
        (lambda: rl.grid_world(discount=-0.1), "discount: expected a discount in [0, 1), got -0.1"),
        (lambda: rl.grid_world(slip=1.5), "slip: expected a probability in [0, 1], got 1.5"),
        (
            lambda: rl.tabular_q_learning(rl.grid_world(), jax.random.key(0), epsilon=1.2),
            "epsilon: expected a probability in [0, 1], got 1.2",
        ),
        (lambda: rl.linear_epsilon(-0.5, 0.1), "epsilon_start: expected a probability in [0, 1], got -0.5"),
        (lambda: rl.grid_world(("S.X",)), "layout: expected only the characters"),
    ],
)
def test_bad_input_one_line(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
