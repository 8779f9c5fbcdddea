"""Training multi-output models (detectors, localizers) with :func:`jax231.training.fit`.

Detectors and localizers have several outputs (class scores, boxes, confidences)
and ragged targets (padded box lists). ``fit`` trains them as pytree batches:
the inputs are ``data['image']``, the labels are the other arrays of ``data``,
and the loss ``loss_fn(outputs, batch) -> (per-example loss, {name: per-example})``
becomes fit's per-example loss with named terms (each reported in the history).
The update, data order, RNG convention, guard and compiled chunks are fit's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from jax231 import training
from jax231.training._options import check_positive
from jax231.types import Array, GradientTransformation, Model, PyTree

LossFn = Callable[[Any, Mapping[str, Array]], tuple[Array, dict[str, Array]]]


class TrainResult(NamedTuple):
    """What :func:`train_multitask` returns: the final ``state`` and ``history`` lists
    (``'step'``, ``'time'``, ``'loss'`` and every loss term, means over the chunk)."""

    state: training.TrainState
    history: dict[str, list]


@functools.lru_cache(maxsize=16)
def _fit_loss(loss_fn: LossFn) -> Callable[..., tuple[Array, dict[str, Array]]]:
    """``loss_fn(outputs, batch)`` as fit's ``loss(*, logits, labels)`` (cached: one object, one compilation)."""

    def loss(*, logits: PyTree, labels: Mapping[str, Array]) -> tuple[Array, dict[str, Array]]:
        return loss_fn(logits, labels)

    return loss


def _history(result: training.FitResult) -> dict[str, list]:
    """fit's history in train_multitask's names: ``'step'``, ``'time'``, ``'loss'``, the terms."""
    h = result.history
    history = {"step": list(h["step"]), "time": list(h["time"]), "loss": list(h["train_loss"])}
    history.update({k[len("train_loss/") :]: list(v) for k, v in h.items() if k.startswith("train_loss/")})
    return history


def train_multitask(
    model: Model,
    optimizer: GradientTransformation,
    loss_fn: LossFn,
    data: Mapping[str, Any],
    *,
    num_steps: int,
    batch_size: int,
    seed: int = 0,
    eval_every: int = 100,
    progress: bool = False,
    max_seconds: float | None = None,
    model_inputs: tuple[str, ...] = ("image",),
) -> TrainResult:
    """Trains ``model`` on ``data`` (a dict of arrays with ``'image'``) for ``num_steps`` updates.

    ``jax231.training.fit`` with ``train={'image': data['image'], 'label': the
    other arrays}``: update :math:`t` uses the examples ``epoch_permutation(
    data_key, t // (N // B), N)[(t mod (N // B)) B : ... + B]`` (the last
    ``N mod B`` of each epoch order skipped), keys from ``run_keys(seed)``, the
    dropout key ``fold_in(state.rng, t)``. Same seed, same parameters. fit's
    guard stops at the first update with a non-finite loss, gradient or update
    and returns the last good state.

    Args:
      model: ``Model(init, apply)``; ``apply``'s outputs may be any pytree.
      optimizer: a ``GradientTransformation``.
      loss_fn: ``(outputs, batch) -> (per-example loss (B,), {term: (B,)})``;
        ``batch`` holds every array of ``data`` but ``'image'``.
      data: ``{'image': (N, ...), ...}``; every array has ``N`` rows and is batched alike.
      num_steps: updates; batch_size: examples per update; seed: the run's seed.
      eval_every: updates per compiled chunk (one history row each).
      progress: show a progress bar on stderr.
      max_seconds: stop at the first chunk boundary past this wall-clock budget (as ``fit``).
      model_inputs: the arrays of ``data`` that ``apply`` receives: ``('image',)`` gives it
        ``data['image']``, more keys a dict of them (a two-stage detector samples its RoIs
        from the ground truth in the forward pass); the loss's ``batch`` is unchanged.

    Returns:
      A :class:`TrainResult`.
    """
    for name, value in (("num_steps", num_steps), ("batch_size", batch_size), ("eval_every", eval_every)):
        check_positive(name, value)
    if "image" not in data:
        raise ValueError(f"data: expected a dict with 'image', got keys {sorted(data)}")
    rows = {k: int(np.shape(v)[0]) for k, v in data.items()}
    n = rows["image"]
    if any(r != n for r in rows.values()):
        raise ValueError(f"data: expected {n} rows in every array, got {rows}")
    if batch_size > n:
        raise ValueError(f"batch_size: expected at most the {n} examples, got {batch_size}")
    model_inputs = tuple(model_inputs)
    missing = [k for k in model_inputs if k not in data]
    if model_inputs[:1] != ("image",) or missing:
        raise ValueError(f"model_inputs: expected 'image' first and keys of data {sorted(data)}, got {model_inputs!r}")
    inputs = data["image"] if len(model_inputs) == 1 else {k: jnp.asarray(data[k]) for k in model_inputs}
    train = {"image": inputs, "label": {k: jnp.asarray(v) for k, v in data.items() if k != "image"}}
    result = training.fit(
        model,
        optimizer,
        train=train,
        loss=_fit_loss(loss_fn),
        num_steps=num_steps,
        batch_size=batch_size,
        eval_every=eval_every,
        seed=seed,
        progress=progress,
        max_seconds=max_seconds,
        explosion_factor=None,
        check_initial_loss=False,
    )
    return TrainResult(result.state, _history(result))
