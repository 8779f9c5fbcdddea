"""The compiled programs of ``fit`` for one configuration, from the one compile cache."""

from __future__ import annotations

import functools
import math
from typing import Callable, Iterator, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jax231 import losses
from jax231.training import _batch, _cache, _core
from jax231.training._state import TrainState, create_train_state
from jax231.training._steps import EvalStep, LossName, TrainStep, make_eval_step, make_train_step
from jax231.types import Array, GradientTransformation, Model, Params


class Runner(NamedTuple):
    """The programs of one (model, optimizer, loss, penalty, batch_fn).

    Attributes:
      step: the pure train step.
      jit_step: ``jax.jit(step)`` (the iterator path).
      eval_step: the pure eval step, evaluating ``optimizer.eval_params`` when set.
      init: jitted ``init(rng, *, input_shape) -> TrainState``.
      chunk: jitted :func:`jax231.training._core.run_chunk` for one member.
    """

    step: TrainStep
    jit_step: TrainStep
    eval_step: EvalStep
    init: Callable[..., TrainState]
    chunk: Callable[..., _core.ChunkOut]


def eval_view(optimizer: GradientTransformation, state: TrainState) -> TrainState:
    """The state to evaluate: ``params`` replaced by ``optimizer.eval_params`` when it has one."""
    eval_params = getattr(optimizer, "eval_params", None)
    if eval_params is None:
        return state
    return state._replace(params=eval_params(state.opt_state, state.params))


def _l2_step(
    model: Model, optimizer: GradientTransformation, loss: LossName, penalty: Callable[[Params], Array] | None
) -> TrainStep:
    """The train step with an L2 strength as data: ``step(state, batch, l2)``.

    Adds ``jax231.losses.l2_penalty(params, strength=l2)`` (biases and norm
    parameters excluded) to ``penalty``; one program for every strength.
    """

    def step(state, batch, strength):
        def member_penalty(params):
            extra = losses.l2_penalty(params, strength=strength)
            return extra if penalty is None else penalty(params) + extra

        return make_train_step(model, optimizer, loss=loss, penalty=member_penalty)(state, batch)

    return step


def _build(
    model: Model,
    optimizer: GradientTransformation,
    loss: LossName,
    penalty: Callable[[Params], Array] | None,
    batch_fn: _core.BatchFn | None,
    with_l2: bool,
) -> Runner:
    if with_l2:
        step = _l2_step(model, optimizer, loss, penalty)
    else:
        step = make_train_step(model, optimizer, loss=loss, penalty=penalty)
    # One eval step per (model, loss), shared by every optimizer: evaluations compile once per model.
    plain_eval = _cache.cached(("eval", model, loss), lambda: make_eval_step(model, loss=loss))
    if getattr(optimizer, "eval_params", None) is None:
        eval_step = plain_eval
    else:

        def eval_step(state, batch):
            return plain_eval(eval_view(optimizer, state), batch)

    def init(rng, *, input_shape, named=False):  # named: a dict of shapes passed as sorted items (hashable)
        return create_train_state(model, optimizer, rng=rng, input_shape=dict(input_shape) if named else input_shape)

    # The chunk does not donate its input: the state before a chunk may be kept
    # (best snapshot, last good state); one copy per chunk is negligible.
    chunk = functools.partial(_core.run_chunk, step, batch_fn=batch_fn, members=False)
    return Runner(
        step=step,
        jit_step=jax.jit(step),
        eval_step=eval_step,
        init=jax.jit(init, static_argnames=("input_shape", "named")),
        chunk=jax.jit(chunk, static_argnames="batch_size"),
    )


def get_runner(
    model: Model,
    optimizer: GradientTransformation,
    loss: LossName,
    penalty: Callable[[Params], Array] | None,
    batch_fn: _core.BatchFn | None = None,
    with_l2: bool = False,
) -> Runner:
    """The programs of this configuration, built once per process (:mod:`._cache`).

    Reusing the same model and optimizer objects across calls of ``fit`` (over
    seeds, or over hyperparameters and L2 strengths passed as data) therefore
    compiles once.
    """
    key = ("fit", model, optimizer, loss, penalty, batch_fn, with_l2)
    return _cache.cached(key, lambda: _build(model, optimizer, loss, penalty, batch_fn, with_l2))


def run_iterator(jit_step, state, prev, initial_loss, batches: Iterator, num_steps: int, factor, step_args: tuple = ()):
    """The host-loop counterpart of ``run_chunk`` for an iterator of batches.

    Returns:
      ``(ChunkOut, prev)``: ``prev`` is the state before the last good update's
      successor, i.e. the last good state when the chunk ended bad.
    """
    sums = {k: 0.0 for k in _core.TRAIN_METRICS}
    bad, bad_loss, bad_step, done = False, math.nan, -1, 0
    for _ in range(num_steps):
        batch = next(batches, None)
        if batch is None:
            raise ValueError(f"train: the iterator ran out of batches at step {int(state.step)}")
        new, m = jit_step(state, _batch.to_device(batch), *step_args)
        t = int(state.step)
        if t == 0:
            initial_loss = float(m["loss"])
        if bool(_core.step_is_bad(m, jnp.float32(initial_loss), factor)):
            bad, bad_loss, bad_step = True, float(m["loss"]), t
            break
        state, prev = new, state
        sums = {
            k: sums.get(k, 0.0) + float(m[k])
            for k in _core.TRAIN_METRICS + tuple(sorted(k for k in m if k.startswith("loss/")))
        }
        done += 1
    out = _core.ChunkOut(
        state,
        np.float32(initial_loss),
        np.int32(done),
        sums,
        np.bool_(bad),
        np.float32(bad_loss),
        np.int32(bad_step),
        np.bool_(not bad),
    )
    return out, prev


def get_eval_step(model: Model, optimizer: GradientTransformation, loss: LossName = "softmax") -> EvalStep:
    """``fit``'s own eval step for ``(model, optimizer, loss)`` (evaluates ``eval_params``).

    The same object ``fit`` evaluates with (from the one compile cache), so an
    experiment evaluating other splits or sweep members compiles nothing new.
    """
    return get_runner(model, optimizer, loss, None).eval_step
