"""The replay buffer returns exactly what was inserted (ring order, wrap-around, sampling)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import rl


def _transitions(start, n):
    idx = np.arange(start, start + n)
    return rl.Transition(
        obs=np.stack([idx, -idx], 1).astype(np.float32),
        action=idx.astype(np.int32),
        reward=idx.astype(np.float32) / 2,
        next_obs=np.stack([idx + 1, idx], 1).astype(np.float32),
        done=(idx % 3 == 0),
    )


def _example():
    return jax.tree_util.tree_map(lambda x: x[0], _transitions(0, 1))


def test_ring_buffer_keeps_the_last_capacity_transitions_in_their_slots():
    buffer = rl.replay_init(_example(), 10)
    add = jax.jit(rl.replay_add)
    for start in range(0, 23, 4):  # 6 batches of 4 = 24 transitions into 10 slots
        buffer = add(buffer, _transitions(start, 4))
    assert int(buffer.size) == 10 and int(buffer.position) == 24 % 10
    ids = np.asarray(buffer.data.action)
    np.testing.assert_array_equal(np.sort(ids), np.arange(14, 24))  # the last 10, nothing else
    np.testing.assert_array_equal(ids, np.arange(14, 24)[(np.arange(10) - 4) % 10])  # slot i holds id 14+((i-4)%10)
    expected = _transitions(0, 24)
    for got, want in zip(jax.tree_util.tree_leaves(buffer.data), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_array_equal(got, np.asarray(want)[ids])  # every field of a slot is one transition


def test_sample_returns_whole_inserted_transitions_from_the_filled_slots_only():
    buffer = rl.replay_add(rl.replay_init(_example(), 100), _transitions(0, 7))
    batch = jax.jit(rl.replay_sample, static_argnums=2)(buffer, jax.random.key(0), 5000)
    ids = np.asarray(batch.action)
    assert set(ids.tolist()) == set(range(7))  # all 7 inserted, never an empty slot
    want = _transitions(0, 7)
    for got, ref in zip(jax.tree_util.tree_leaves(batch), jax.tree_util.tree_leaves(want)):
        np.testing.assert_array_equal(got, np.asarray(ref)[ids])
    counts = np.bincount(ids, minlength=7)  # uniform: each ~5000/7, binomial std ~ 26
    assert np.all(np.abs(counts - 5000 / 7) < 5 * np.sqrt(5000 * (1 / 7) * (6 / 7)))


def test_buffer_vmaps_over_agents():
    buffers = jax.vmap(lambda _: rl.replay_init(_example(), 8))(jnp.arange(3))
    batches = jax.tree_util.tree_map(lambda x: np.stack([x, x + 100, x + 200]), _transitions(0, 5))
    buffers = jax.vmap(rl.replay_add)(buffers, batches)
    np.testing.assert_array_equal(buffers.data.action[:, :5], np.asarray(batches.action))
    np.testing.assert_array_equal(buffers.size, [5, 5, 5])


def test_buffer_smaller_than_a_batch_is_rejected():
    with pytest.raises(ValueError, match=r"^capacity: expected a buffer at least as large as batch_size=64, got 32$"):
        rl.replay_init(_example(), 32, batch_size=64)
    with pytest.raises(
        ValueError, match=r"^buffer_size: expected a buffer at least as large as batch_size=64, got 10$"
    ):
        rl.dqn(
            rl.make_env("CartPole-v1"),
            __import__("jax231.optimizers", fromlist=["adam"]).adam(1e-3),
            rl.DqnConfig(buffer_size=10, batch_size=64),
        )
