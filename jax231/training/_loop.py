"""The compiled inner loop of ``fit``: chunks of updates with the explosion guard."""

from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jax231.training import _guards
from jax231.training._state import TrainState, create_train_state
from jax231.training._steps import epoch_permutation, make_eval_step, make_train_step
from jax231.types import Array

TRAIN_METRICS = ("loss", "accuracy", "grad_norm", "update_ratio")


class _ChunkOut(NamedTuple):
    state: TrainState
    prev: TrainState | None
    initial_loss: Array
    num_done: Array
    sums: dict[str, Array]
    bad: Array
    bad_loss: Array


def _run_chunk(step, state, initial_loss, data_key, images, labels, num_steps, factor,
               *, batch_size):
    """Up to ``num_steps`` updates in one ``lax.while_loop``, stopping at an explosion.

    Update ``t`` uses the examples ``perm_e[p*B:(p+1)*B]`` with ``e = t // S``,
    ``p = t % S``, ``S = N // B`` and ``perm_e = epoch_permutation(data_key, e, N)``
    (computed in the loop at the chunk's first update and when ``p == 0``), so the data order depends on the
    global step only: any chunking, and any resumption, sees the same batches.
    When update ``t`` reports a bad loss (non-finite, or above ``factor`` times
    the loss of update 0) the loop stops there, ``bad`` set and ``num_done``
    counting the good updates only; ``state`` then holds the exploded update
    and must not be used. No earlier state is carried along (selecting between
    whole states every update costs about a fifth of a small step on CPU): the
    last good state, that of step ``t - 1``, is recomputed by :func:`replay`.
    """
    n = labels.shape[0]
    full_batch = batch_size == n
    steps_per_epoch = n // batch_size

    def order(t):
        return epoch_permutation(data_key, t // steps_per_epoch, n)

    # The order is computed in the loop, at the first update of the chunk and at
    # each epoch start (a permutation costs about 1.5 ms on CPU: not twice).
    perm0 = jnp.zeros((1 if full_batch else n,), jnp.int32)
    sums0 = {k: jnp.zeros((), jnp.float32) for k in TRAIN_METRICS}
    nan = jnp.array(jnp.nan, jnp.float32)
    carry0 = (state, perm0, jnp.zeros((), jnp.int32), sums0, jnp.array(False), nan,
              jnp.asarray(initial_loss, jnp.float32))

    def cond(c):
        return (c[2] < num_steps) & ~c[4]

    def body(c):
        cur, perm, i, sums, _, _, init = c
        t = cur.step
        if full_batch:
            batch = {"image": images, "label": labels}
        else:
            pos = t % steps_per_epoch
            perm = lax.cond((pos == 0) | (i == 0), lambda: order(t).astype(perm.dtype), lambda: perm)
            idx = lax.dynamic_slice_in_dim(perm, pos * batch_size, batch_size)
            batch = {"image": jnp.take(images, idx, axis=0), "label": jnp.take(labels, idx, axis=0)}
        new, m = step(cur, batch)
        loss = m["loss"]
        init = jnp.where(t == 0, loss, init)
        bad = _guards.is_exploded(loss, init, factor)
        sums = {k: jnp.where(bad, sums[k], sums[k] + m[k]) for k in sums}
        return (new, perm, i + jnp.where(bad, 0, 1).astype(jnp.int32), sums, bad,
                jnp.where(bad, loss, nan), init)

    cur, _, i, sums, bad, bad_loss, init = lax.while_loop(cond, body, carry0)
    return _ChunkOut(cur, None, init, i, sums, bad, bad_loss)


class _Runner(NamedTuple):
    step: Callable
    jit_step: Callable
    eval_step: Callable
    init: Callable
    chunk: Callable


def _build_runner(model, optimizer, loss, penalty) -> _Runner:
    step = make_train_step(model, optimizer, loss=loss, penalty=penalty)

    def init(rng, *, input_shape):
        return create_train_state(model, optimizer, rng=rng, input_shape=input_shape)

    # The chunk does not donate its input: the state before a chunk may be kept
    # (best snapshot, last good state); one copy per chunk is negligible.
    return _Runner(
        step=step,
        jit_step=jax.jit(step),
        eval_step=make_eval_step(model, loss=loss),
        init=jax.jit(init, static_argnames="input_shape"),
        chunk=jax.jit(functools.partial(_run_chunk, step), static_argnames="batch_size"),
    )


@functools.lru_cache(maxsize=64)
def _cached_runner(model, optimizer, loss, penalty) -> _Runner:
    return _build_runner(model, optimizer, loss, penalty)


def get_runner(model, optimizer, loss, penalty) -> _Runner:
    """The compiled functions of (model, optimizer, loss, penalty), built once per process.

    Reusing the same model and optimizer objects across calls of :func:`fit`
    (e.g. over seeds) therefore compiles once; the seed enters as data.
    """
    try:
        hash((model, optimizer, loss, penalty))
    except TypeError:
        return _build_runner(model, optimizer, loss, penalty)
    return _cached_runner(model, optimizer, loss, penalty)


def replay(chunk: Callable, state: TrainState, initial_loss: float, data_key, images, labels,
           num_steps: int, factor, *, batch_size: int) -> TrainState:
    """The state after ``num_steps`` updates from ``state``, recomputed by ``chunk``.

    ``fit`` calls it after an explosion to re-materialise the last good state
    from the start of its chunk (or of the chunk before): the same compiled
    program on the same inputs gives bitwise the same state it passed through.
    """
    if num_steps <= 0:
        return state
    return chunk(state, jnp.float32(initial_loss), data_key, images, labels, jnp.int32(num_steps),
                 factor, batch_size=batch_size).state


def run_iterator(jit_step, state, prev, initial_loss, batches, num_steps, factor) -> _ChunkOut:
    """The host-loop counterpart of :func:`_run_chunk` for an iterator of batches."""
    sums = {k: 0.0 for k in TRAIN_METRICS}
    bad, bad_loss, done = False, math.nan, 0
    for _ in range(num_steps):
        batch = next(batches, None)
        if batch is None:
            raise ValueError(f"train: the iterator ran out of batches at step {int(state.step)}")
        new, m = jit_step(state, {"image": jnp.asarray(batch["image"]), "label": jnp.asarray(batch["label"])})
        value = float(m["loss"])
        if int(state.step) == 0:
            initial_loss = value
        if bool(_guards.is_exploded(value, initial_loss, factor)):
            bad, bad_loss = True, value
            break
        state, prev = new, state
        sums = {k: sums[k] + float(m[k]) for k in sums}
        done += 1
    return _ChunkOut(state, prev, jnp.float32(initial_loss), jnp.int32(done),
                     sums, jnp.array(bad), jnp.float32(bad_loss))
