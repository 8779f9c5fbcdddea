"""A training loop for models whose loss needs more than ``(logits, labels)``.

:func:`jax231.training.fit` trains a model on ``{'image', 'label'}`` with a per-example
``loss(logits=, labels=)`` and reports argmax accuracy; detectors and localizers have
several outputs (class scores, boxes, confidences) and ragged targets (padded box lists),
so they are trained here: the same pure update ``w <- w + update(grad L(w))`` with the
same :class:`jax231.training.TrainState`, data order (:func:`epoch_permutation`) and
compiled chunks of updates (one ``lax.scan`` between two evaluations), over any dict of
on-device arrays and a loss ``loss_fn(outputs, batch) -> (per-example loss, {name: per-example})``.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jax231 import training
from jax231.types import Array

LossFn = Callable[[Any, Mapping[str, Array]], tuple[Array, dict[str, Array]]]


class TrainResult(NamedTuple):
    """What :func:`train_multitask` returns: the final ``state`` and ``history`` lists
    (``'step'``, ``'time'``, ``'loss'`` and every loss term, means over the chunk)."""

    state: training.TrainState
    history: dict[str, list]


def _make_step(model, optimizer, loss_fn: LossFn):
    def objective(params, model_state, batch, rng):
        outputs, new_state = model.apply(params, model_state, batch["image"], train=True, rng=rng)
        per_example, terms = loss_fn(outputs, batch)
        return jnp.mean(per_example), ({k: jnp.mean(v) for k, v in terms.items()}, new_state)

    def step(state: training.TrainState, batch):
        rng = jax.random.fold_in(state.rng, state.step)
        (value, (terms, model_state)), grads = jax.value_and_grad(objective, has_aux=True)(
            state.params, state.model_state, batch, rng)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = jax.tree_util.tree_map(lambda w, u: (w + u).astype(w.dtype), state.params, updates)
        new = training.TrainState(params=params, model_state=model_state, opt_state=opt_state,
                                  step=state.step + 1, rng=state.rng)
        return new, {"loss": value, **terms}

    return step


@functools.partial(jax.jit, static_argnames=("step", "num_steps", "batch_size"), donate_argnums=(1,))
def _chunk(step, state, data_key, arrays, *, num_steps, batch_size):
    n = jax.tree_util.tree_leaves(arrays)[0].shape[0]
    per_epoch = n // batch_size

    def body(s, _):
        t = s.step
        perm = training.epoch_permutation(data_key, t // per_epoch, n)
        idx = jax.lax.dynamic_slice_in_dim(perm, (t % per_epoch) * batch_size, batch_size)
        s, metrics = step(s, {k: jnp.take(v, idx, axis=0) for k, v in arrays.items()})
        return s, metrics

    state, metrics = jax.lax.scan(body, state, None, length=num_steps)
    return state, {k: jnp.mean(v) for k, v in metrics.items()}


def train_multitask(
    model: Any,
    optimizer: Any,
    loss_fn: LossFn,
    data: Mapping[str, Any],
    *,
    num_steps: int,
    batch_size: int,
    seed: int = 0,
    eval_every: int = 100,
    progress: bool = False,
    max_seconds: float | None = None,
) -> TrainResult:
    """Trains ``model`` on ``data`` (a dict of arrays with ``'image'``) for ``num_steps`` updates.

    Update :math:`t` uses the examples ``epoch_permutation(data_key, t // (N // B), N)``
    ``[(t mod (N // B)) B : ... + B]`` (the last ``N mod B`` of each epoch order skipped),
    with ``init_key, data_key = split(key(seed))`` as in ``fit``; the dropout key of update
    :math:`t` is ``fold_in(state.rng, t)``. Same seed, same parameters.

    Args:
      model: ``Model(init, apply)``; ``apply``'s outputs may be any pytree.
      optimizer: a ``GradientTransformation``.
      loss_fn: ``(outputs, batch) -> (per-example loss (B,), {term: (B,)})``.
      data: ``{'image': (N, ...), ...}``; every array has ``N`` rows and is batched alike.
      num_steps: updates; batch_size: examples per update; seed: the run's seed.
      eval_every: updates per compiled chunk (one history row each).
      progress: show a progress bar on stderr.
      max_seconds: stop at the first chunk boundary past this wall-clock budget (as ``fit``).

    Returns:
      A :class:`TrainResult`.
    """
    for name, value in (("num_steps", num_steps), ("batch_size", batch_size), ("eval_every", eval_every)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    if "image" not in data:
        raise ValueError(f"data: expected a dict with 'image', got keys {sorted(data)}")
    arrays = {k: jnp.asarray(v) for k, v in data.items()}
    n = arrays["image"].shape[0]
    if any(v.shape[0] != n for v in arrays.values()):
        raise ValueError(f"data: expected {n} rows in every array, got { {k: v.shape[0] for k, v in arrays.items()} }")
    if batch_size > n:
        raise ValueError(f"batch_size: expected at most the {n} examples, got {batch_size}")
    init_key, data_key = jax.random.split(jax.random.PRNGKey(seed))
    state = training.create_train_state(model, optimizer, rng=init_key, input_shape=tuple(arrays["image"].shape[1:]))
    step = _cached_step(model, optimizer, loss_fn)
    history: dict[str, list] = {"step": [], "time": []}
    bar = training.ProgressBar(num_steps) if progress else None
    start, t = time.monotonic(), 0
    while t < num_steps:
        length = min(eval_every, num_steps - t)
        state, metrics = _chunk(step, state, data_key, arrays, num_steps=length, batch_size=batch_size)
        t += length
        history["step"].append(t)
        history["time"].append(time.monotonic() - start)
        for k, v in metrics.items():
            history.setdefault(k, []).append(float(v))
        if not math.isfinite(history["loss"][-1]):
            break
        if max_seconds is not None and time.monotonic() - start > max_seconds:
            break
        if bar is not None:
            bar.update(t, {"train_loss": history["loss"][-1]})
    if bar is not None:
        bar.close()
    return TrainResult(state, history)


@functools.lru_cache(maxsize=16)
def _cached_step(model, optimizer, loss_fn):
    return _make_step(model, optimizer, loss_fn)
