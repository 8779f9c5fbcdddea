"""The one compiled training loop: chunks of guarded updates on on-device data.

Every training path runs :func:`run_chunk`: ``fit`` for one model, and
``jax231.parallel.run_sweep`` for ``K`` members at once (``members=True``: the
step is the vmapped step, every per-run quantity has a leading axis ``K``).
Update ``t`` (the global step, see :mod:`jax231._rng`):

1. batch: the examples ``perm_e[p*B:(p+1)*B]``, ``e = t // S``, ``p = t % S``,
   ``S = N // B``, ``perm_e = epoch_permutation(data_key, e, N)`` (computed in
   the loop at the chunk's first update and at each epoch start); full batch
   when ``B == N``;
2. hook: ``batch = batch_fn(fold_in(hook_key, t), batch)`` when a ``batch_fn``
   is given (augmentation, input noise), on device; ``batch_fn(..., step=t)``
   when it declares a ``step`` keyword (epoch-dependent augmentation);
3. step: ``state, metrics = step(state, batch)`` (the pure train step; the
   optimizer's own state carries any per-step transform such as an EMA);
4. guard: the update is bad when its training loss is non-finite or above
   ``factor`` times the loss of update 0, or when the gradient, parameter or
   update norm is non-finite (a NaN input pixel behind a ReLU leaves the loss
   finite but not the gradient). The data order depends on ``t`` only, so any
   chunking and any resumption sees the same batches.

One member (``members=False``) stops at its first bad update: ``num_done``
counts the good ones and ``state`` holds the bad update (the caller recomputes
the last good state with :func:`replay`; selecting between whole states at
every update would cost about a fifth of a small step on CPU). Members of a
sweep cannot stop alone: a bad member freezes (its ``alive`` flag drops, its
state stays the one its bad update was judged on) while the others go on,
until every member is frozen, has reached its ``until`` step, or the chunk
ends. The caller recomputes a frozen member's last good state the same way,
by running the chunk again for it alone up to the step before (``until``):
carrying every member's previous state through the loop instead would copy
all states at every update (about an eighth of a small MLP step on CPU).
"""

from __future__ import annotations

import functools
from typing import Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jax231.training import _batch, _guards
from jax231.training._conv_layout import loop_body
from jax231.training._options import batch_fn_takes_step
from jax231.training._state import TrainState
from jax231.training._steps import Batch, TrainStep, epoch_permutation
from jax231.types import Array, ArrayLike, PRNGKey, PyTree

BatchFn = Callable[[PRNGKey, Batch], Batch]
"""The on-device hook ``batch_fn(key, batch) -> batch`` (augmentation, noise); one that declares a
``step`` keyword, ``batch_fn(key, batch, *, step)``, also gets the update's global step."""

TRAIN_METRICS = ("loss", "accuracy", "grad_norm", "update_ratio")
"""The step metrics summed over a chunk (``fit``'s history reports their means)."""


class LoopData(NamedTuple):
    """The data arguments of :func:`run_chunk` (all arrays: new values never recompile).

    Attributes:
      images: the training inputs on the device: an ``(N, ...)`` array or a
        pytree of arrays with the leading axis ``N`` (:mod:`._batch`).
      labels: the targets, a pytree with the same leading axis (``(N,)`` int32
        class labels, a dict of boxes and classes, tokens ``(N, T)``), or
        ``None`` for an unsupervised model (the batch then has no ``'label'``).
      data_key: the data-order key (``(K, 2)`` for a sweep).
      hook_key: the ``batch_fn`` key (``(K, 2)`` for a sweep).
      factor: float32 explosion factor (``inf`` tests finiteness only).
      step_args: extra arguments of the step (the sweep's per-member L2 strengths).
    """

    images: PyTree
    labels: PyTree
    data_key: Array
    hook_key: Array
    factor: Array
    step_args: tuple = ()


class ChunkOut(NamedTuple):
    """What :func:`run_chunk` returns (leading axis ``K`` on every field for a sweep but ``state``'s;
    device arrays, or NumPy values from the host loop of an iterator).

    Attributes:
      state: the state after the chunk (one member: holds the bad update when ``bad``).
      initial_loss: the training loss of update 0 (NaN until it ran).
      num_done: good updates made in this chunk.
      sums: sums of :data:`TRAIN_METRICS` over the good updates (one member: also
        the step's ``'loss/<term>'`` metrics, :func:`summed_metrics`).
      bad: whether an update of this chunk was bad.
      bad_loss: the training loss of that update (NaN otherwise).
      bad_step: the global step of that update (-1 otherwise).
      alive: ``~bad`` and alive at the start.
    """

    state: TrainState
    initial_loss: ArrayLike
    num_done: ArrayLike
    sums: Mapping[str, ArrayLike]
    bad: ArrayLike
    bad_loss: ArrayLike
    bad_step: ArrayLike
    alive: ArrayLike


def step_is_bad(metrics: dict[str, Array], initial_loss: Array, factor: Array) -> Array:
    """The guard of one update (elementwise, so it also guards ``K`` members at once)."""
    finite = (
        jnp.isfinite(metrics["grad_norm"]) & jnp.isfinite(metrics["param_norm"]) & jnp.isfinite(metrics["update_norm"])
    )
    return _guards.is_exploded(metrics["loss"], initial_loss, factor) | ~finite


def summed_metrics(step: TrainStep, state: TrainState, data: LoopData, batch_size: int) -> tuple[str, ...]:
    """:data:`TRAIN_METRICS` and the step's ``'loss/<term>'`` metrics (a loss with named terms).

    Read from the step's abstract output (``jax.eval_shape``: traced, nothing runs).
    """

    def spec(a: Array) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((batch_size,) + tuple(a.shape[1:]), a.dtype)

    batch = _batch_of(jax.tree_util.tree_map(spec, data.images), jax.tree_util.tree_map(spec, data.labels))
    metrics = jax.eval_shape(step, state, batch, *data.step_args)[1]
    return TRAIN_METRICS + tuple(sorted(k for k in metrics if k.startswith("loss/")))


def _select(keep_new: Array, new: PyTree, old: PyTree) -> PyTree:
    """Member-wise ``where(keep_new, new, old)`` over whole states (leading axis ``K``)."""

    def pick(a: Array, b: Array) -> Array:
        return jnp.where(keep_new.reshape(keep_new.shape + (1,) * (a.ndim - 1)), a, b)

    return jax.tree_util.tree_map(pick, new, old)


def _batch_of(images: PyTree, labels: PyTree) -> dict[str, PyTree]:
    return {"image": images} if labels is None else {"image": images, "label": labels}


def _gather(data: LoopData, t: Array, i: Array, perm: Array, *, batch_size: int, members: bool) -> tuple[Batch, Array]:
    """The batch of update ``t`` and the (possibly refreshed) epoch order."""
    n = _batch.num_examples({"image": data.images})
    if batch_size == n:
        if not members:
            return _batch_of(data.images, data.labels), perm
        k = data.data_key.shape[0]
        return _batch_of(_batch.broadcast(data.images, k), _batch.broadcast(data.labels, k)), perm
    steps_per_epoch = n // batch_size
    pos = t % steps_per_epoch

    def order() -> Array:
        epoch = t // steps_per_epoch
        if members:
            return jax.vmap(lambda key: epoch_permutation(key, epoch, n))(data.data_key).astype(perm.dtype)
        return epoch_permutation(data.data_key, epoch, n).astype(perm.dtype)

    perm = lax.cond((pos == 0) | (i == 0), order, lambda: perm)
    idx = lax.dynamic_slice_in_dim(perm, pos * batch_size, batch_size, axis=perm.ndim - 1)
    return _batch_of(_batch.take(data.images, idx), _batch.take(data.labels, idx)), perm


def _hook(batch_fn: BatchFn, hook_key: Array, t: Array, batch: Batch, *, members: bool) -> Batch:
    if batch_fn_takes_step(batch_fn):  # batch_fn(key, batch, *, step): the step is shared by all members
        stepped: Callable[..., Batch] = batch_fn
        batch_fn = functools.partial(stepped, step=t)
    if not members:
        return batch_fn(jax.random.fold_in(hook_key, t), batch)
    keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(hook_key, t)
    return jax.vmap(batch_fn)(keys, batch)


def run_chunk(
    step: TrainStep,
    state: TrainState,
    initial_loss: Array,
    alive: Array,
    data: LoopData,
    start: Array,
    num_steps: Array,
    until: Array | None = None,
    *,
    batch_size: int,
    batch_fn: BatchFn | None = None,
    members: bool = False,
) -> ChunkOut:
    """Up to ``num_steps`` guarded updates from global step ``start`` in one ``lax.while_loop``.

    Args:
      step: the pure train step ``(state, batch, *data.step_args) -> (state, metrics)``
        (for a sweep, the vmapped step with per-member metrics ``(K,)``).
      state: the state at step ``start``.
      initial_loss: the loss of update 0 (NaN before it ran); ``(K,)`` for a sweep.
      alive: bool, ``(K,)`` for a sweep: frozen members make no update.
      data: the :class:`LoopData`.
      start: int32, the global step of the first update (shared by all members).
      num_steps: int32, updates to make (a traced bound: one program for every length).
      until: a sweep's optional ``(K,)`` int32 global steps: member ``k`` makes
        the updates of steps ``< until[k]`` only (the replay of a frozen
        member's last good state); ``None``: no per-member bound.
      batch_size: examples per update (static).
      batch_fn: optional on-device hook ``(key, batch) -> batch`` (static).
      members: ``True`` for a sweep (static).

    Returns:
      A :class:`ChunkOut`.
    """
    n = _batch.num_examples({"image": data.images})
    step = loop_body(step)  # XLA:CPU's fast convolution in the loop body too (._conv_layout)
    shape = alive.shape
    perm_shape = (1,) if batch_size == n else (n,)
    perm0 = jnp.zeros((data.data_key.shape[0],) + perm_shape if members else perm_shape, jnp.int32)
    zeros = jnp.zeros(shape, jnp.float32)
    summed = TRAIN_METRICS if members else summed_metrics(step, state, data, batch_size)
    carry0 = (
        state,
        perm0,
        jnp.zeros((), jnp.int32),
        jnp.zeros(shape, jnp.int32),
        {k: zeros for k in summed},
        alive,
        zeros + jnp.nan,
        jnp.full(shape, -1, jnp.int32),
        jnp.asarray(initial_loss, jnp.float32),
    )

    def cond(c: tuple) -> Array:
        return (c[2] < num_steps) & jnp.any(c[5])

    def body(c: tuple) -> tuple:
        cur, perm, i, done, sums, live, bad_loss, bad_step, init = c
        t = start + i
        if until is not None:
            live = live & (t < until)
        batch, perm = _gather(data, t, i, perm, batch_size=batch_size, members=members)
        if batch_fn is not None:
            batch = _hook(batch_fn, data.hook_key, t, batch, members=members)
        new, m = step(cur, batch, *data.step_args)
        init = jnp.where(t == 0, m["loss"], init)
        bad = live & step_is_bad(m, init, data.factor)
        ok = live & ~bad
        sums = {k: jnp.where(ok, sums[k] + m[k], sums[k]) for k in sums}
        if members:  # a member that is not ok keeps its state; one pass over the states, only then
            new = lax.cond(jnp.all(ok), lambda: new, lambda: _select(ok, new, cur))
        return (
            new,
            perm,
            i + 1,
            done + ok.astype(jnp.int32),
            sums,
            ok,
            jnp.where(bad, m["loss"], bad_loss),
            jnp.where(bad, t, bad_step),
            init,
        )

    cur, _, _, done, sums, _, bad_loss, bad_step, init = lax.while_loop(cond, body, carry0)
    bad = bad_step >= 0  # set by a bad update only (reaching ``until`` is not one)
    return ChunkOut(cur, init, done, sums, bad, bad_loss, bad_step, alive & ~bad)
