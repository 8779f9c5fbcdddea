"""The one primitive for algorithm loops that ``fit`` cannot drive: many steps of a general step.

``fit`` trains one model on one loss (:func:`jax231.training.run_chunk`). A GAN
(two networks, two optimizers, alternating updates) and the RL algorithms
(environment rollouts, buffers, then updates) have a step of their own, but
their loop is the same: ``num_steps`` applications of a pure
``step(state, batch) -> (state, metrics)`` on the data order of the core, in
one compiled ``lax.scan``, chunked on the host between reports. They run it
through :func:`run_steps` (pure, composes with ``jit``/``vmap``, so the RL
programs stay one jitted vmapped function) and :func:`run_in_chunks` (the host
driver with the progress bar); no other package writes a scan over training steps.

Update ``i`` of a call (the global step ``t = start + i``):

1. batch: without ``data``, the global step ``t`` itself (the step makes its
   own data, e.g. env rollouts, or reads ``t`` as an index); with ``data``, the examples ``perm_e[p*B:(p+1)*B]`` with ``e = t // S``,
   ``p = t % S``, ``S = N // B``, ``perm_e = epoch_permutation(data_key, e, N)``:
   the batch order of ``fit`` (:mod:`jax231._rng`);
2. step: ``state, metrics = step(state, batch)``;
3. guard (optional ``is_bad(metrics) -> bool``): from the first bad step on,
   the state stays the last good one (``alive`` drops, later steps are made
   but their results dropped, as a frozen member of a sweep).
"""

from __future__ import annotations

import time
from typing import Callable, Generic, NamedTuple, TypeVar

import jax
import jax.numpy as jnp
from jax import lax

from jax231._validation import check_positive_int
from jax231.training import _batch
from jax231.training._conv_layout import loop_body
from jax231.training._logging import ProgressBar
from jax231.training._steps import epoch_permutation
from jax231.types import Array, ArrayLike, PRNGKey, PyTree

S = TypeVar("S")
Step = Callable[[S, PyTree], tuple[S, PyTree]]
"""``step(state, batch) -> (state, metrics)``; ``batch`` is the global step ``t`` without data."""


class StepsOut(NamedTuple, Generic[S]):
    """What :func:`run_steps` returns.

    Attributes:
      state: the state after the steps (the last good one when the guard fired).
      metrics: every metric stacked over the steps, ``(num_steps, ...)``.
      alive: bool, no step was bad (always ``True`` without ``is_bad``).
      bad_step: the global step of the first bad step (-1: none).
    """

    state: S
    metrics: PyTree
    alive: Array
    bad_step: Array


def batch_at(data: PyTree, data_key: PRNGKey, t: Array | int, batch_size: int) -> PyTree:
    """The batch of global step ``t``: fit's epoch order (module docstring, 1.) over every leaf of ``data``."""
    n = _batch.leading_sizes(data)[0]
    per_epoch = n // batch_size
    order = epoch_permutation(data_key, t // per_epoch, n)
    idx = lax.dynamic_slice_in_dim(order, (t % per_epoch) * batch_size, batch_size)
    return _batch.take(data, idx)


def run_steps(
    step: Step,
    state: S,
    num_steps: int,
    *,
    start: ArrayLike = 0,
    data: PyTree = None,
    data_key: PRNGKey | None = None,
    batch_size: int | None = None,
    is_bad: Callable[[PyTree], Array] | None = None,
) -> StepsOut[S]:
    """``num_steps`` steps from global step ``start`` as one ``lax.scan`` (pure: jit or vmap it).

    Args:
      step: the pure step ``(state, batch) -> (state, metrics)`` (``metrics`` any
        pytree of arrays; scalars for ``is_bad`` and the progress bar).
      state: the state at step ``start``.
      num_steps: steps to make (static: the scan's length).
      start: the global step of the first one (traced is fine).
      data: optional on-device arrays (a pytree with leading axis ``N``) to batch.
      data_key: the data-order key (with ``data``).
      batch_size: examples per step, ``1 <= B <= N`` (with ``data``).
      is_bad: optional guard ``metrics -> bool`` (e.g. a non-finite loss).

    Returns:
      A :class:`StepsOut`.
    """

    step = loop_body(step)  # XLA:CPU's fast convolution in the scan body too (._conv_layout)

    def body(carry, t):
        cur, alive, bad_step = carry
        batch = t if data is None else batch_at(data, data_key, t, batch_size)
        new, metrics = step(cur, batch)
        if is_bad is None:
            return (new, alive, bad_step), metrics
        bad = alive & is_bad(metrics)
        keep = alive & ~bad
        new = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), new, cur)
        return (new, keep, jnp.where(bad, t, bad_step)), metrics

    ts = jnp.asarray(start, jnp.int32) + jnp.arange(num_steps, dtype=jnp.int32)
    carry0 = (state, jnp.array(True), jnp.int32(-1))
    (state, alive, bad_step), metrics = lax.scan(body, carry0, ts)
    return StepsOut(state, metrics, alive, bad_step)


def run_in_chunks(
    program: Callable[[S, int, int], tuple[S, dict[str, Array]]],
    state: S,
    num_steps: int,
    *,
    chunk_size: int,
    progress: bool = False,
    progress_metric: str | None = None,
    max_seconds: float | None = None,
) -> tuple[S, list[dict[str, Array]]]:
    """The host driver: ``program(state, start, length)`` for chunks of at most ``chunk_size`` steps.

    ``program`` is typically a jitted :func:`run_steps` (``length`` static). A
    progress bar moves between chunks (showing ``metrics[progress_metric][-1]``);
    the run stops at the first chunk boundary past ``max_seconds``.

    Returns:
      ``(state, the metrics of every chunk)``.

    Raises:
      ValueError: ``num_steps`` or ``chunk_size`` not a positive int.
    """
    check_positive_int("num_steps", num_steps)
    check_positive_int("chunk_size", chunk_size)
    bar = ProgressBar(num_steps) if progress else None
    chunks: list[dict[str, Array]] = []
    started, done = time.monotonic(), 0
    try:
        while done < num_steps:
            length = min(chunk_size, num_steps - done)
            state, metrics = program(state, done, length)
            chunks.append(metrics)
            done += length
            if bar is not None:
                shown = {} if progress_metric is None else {"train_loss": float(metrics[progress_metric][-1])}
                bar.update(done, shown)
            if max_seconds is not None and time.monotonic() - started > max_seconds:
                break
    finally:
        if bar is not None:
            bar.close()
    return state, chunks
