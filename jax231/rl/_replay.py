"""Experience replay as arrays: a ring buffer whose leaves are stacked transitions.

Every leaf of the stored pytree gets a leading axis of length ``capacity``;
``add`` writes a batch at the write position (wrapping around) and ``sample``
draws uniformly among the filled slots. All of it is jittable and vmappable, so
the buffer lives inside the training program.

References:
  Lin, "Self-improving reactive agents based on reinforcement learning, planning and
  teaching", Machine Learning 1992; Mnih et al., Nature 2015 (experience replay in DQN).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jax231.rl import _checks
from jax231.types import Array, PRNGKey, PyTree


class ReplayBuffer(NamedTuple):
    """A ring buffer of transitions.

    Attributes:
      data: the stored pytree, each leaf ``(capacity, ...)``.
      position: int32 scalar, the next slot written.
      size: int32 scalar, the number of filled slots (<= capacity).
    """

    data: PyTree
    position: Array
    size: Array


def replay_init(example: PyTree, capacity: int, *, batch_size: int | None = None) -> ReplayBuffer:
    """An empty buffer for transitions shaped like ``example`` (one transition, no batch axis).

    Args:
      example: one transition (a pytree of arrays).
      capacity: number of slots, >= 1.
      batch_size: the size of the batches that will be sampled; checked to be <= ``capacity``.

    Returns:
      An empty :class:`ReplayBuffer`.

    Raises:
      ValueError: ``capacity: expected ... >= batch_size ...`` when the buffer is smaller than a batch.
    """
    capacity = _checks.check_positive_int("capacity", capacity)
    if batch_size is not None:
        batch_size = _checks.check_positive_int("batch_size", batch_size)
        if capacity < batch_size:
            raise ValueError(
                f"capacity: expected a buffer at least as large as batch_size={batch_size}, got {capacity}"
            )
    data = jax.tree_util.tree_map(lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.result_type(x)), example)
    return ReplayBuffer(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def replay_capacity(buffer: ReplayBuffer) -> int:
    """The number of slots (static)."""
    return jax.tree_util.tree_leaves(buffer.data)[0].shape[0]


def replay_add(buffer: ReplayBuffer, batch: PyTree) -> ReplayBuffer:
    """Writes a batch of ``n`` transitions (leading axis ``n`` <= capacity) at the write position."""
    capacity = replay_capacity(buffer)
    n = jax.tree_util.tree_leaves(batch)[0].shape[0]
    if n > capacity:
        raise ValueError(f"batch: expected at most capacity={capacity} transitions, got {n}")
    slots = (buffer.position + jnp.arange(n)) % capacity
    data = jax.tree_util.tree_map(lambda d, x: d.at[slots].set(jnp.asarray(x, d.dtype)), buffer.data, batch)
    return ReplayBuffer(data, (buffer.position + n) % capacity, jnp.minimum(buffer.size + n, capacity))


def replay_sample(buffer: ReplayBuffer, rng: PRNGKey, batch_size: int) -> PyTree:
    """``batch_size`` transitions drawn uniformly, with replacement, among the filled slots.

    Sampling an empty buffer returns slot 0 (zeros); callers start learning once
    enough transitions are stored.
    """
    index = jax.random.randint(rng, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return jax.tree_util.tree_map(lambda d: d[index], buffer.data)
