"""Training a :class:`~jax231.models.Captioner` by teacher forcing, with :func:`jax231.training.fit`.

A captioner's forward pass reads the image and the caption (the teacher-forced
inputs), so ``fit`` gets a dict input ``{'image': images, 'caption': tokens}``
and no labels: the adapter :func:`_as_model`'s ``apply`` returns the
per-example loss ``L_i = model.loss(w, x_i, y_i)`` and fit's loss reads it back.
The update ``w <- w + update(grad mean_i L_i(w))``, data order, RNG convention,
guard and compiled chunks are fit's.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax.numpy as jnp

from jax231 import training
from jax231.models import Model
from jax231.training._options import check_positive
from jax231.types import Array, ArrayLike, GradientTransformation, ModelState, OptState, Params, PRNGKey


class CaptionTrainResult(NamedTuple):
    """Final ``params`` and ``opt_state``; ``history``: ``'step'``, ``'time'``, ``'loss'`` (chunk means)."""

    params: Params
    opt_state: OptState
    history: dict[str, list]


@functools.lru_cache(maxsize=16)
def _as_model(captioner: Any) -> Model:
    """A ``Model`` over ``{'image', 'caption'}`` whose output is the per-example caption loss (cached)."""

    def init(rng: PRNGKey, input_shape: Any) -> tuple[Params, ModelState]:
        del input_shape  # the captioner knows its image shape and vocabulary
        return captioner.init(rng), {}

    def apply(
        params: Params, state: ModelState, x: Mapping[str, Array], *, train: bool, rng: PRNGKey | None = None
    ) -> tuple[Array, ModelState]:
        return captioner.loss(params, x["image"], x["caption"]), state

    return Model(init, apply)


def _per_example(*, logits: ArrayLike, labels: None) -> Array:
    """The per-example loss :func:`_as_model` returned (no labels: the caption is an input)."""
    return jnp.asarray(logits)


def train_captioner(
    model: Any,
    optimizer: GradientTransformation,
    data: Mapping[str, Any],
    *,
    num_steps: int,
    batch_size: int,
    seed: int = 0,
    eval_every: int = 100,
    progress: bool = False,
    max_seconds: float | None = None,
) -> CaptionTrainResult:
    """Trains ``model`` on ``data = {'image': (N, H, W, C), 'caption': (N, T)}`` for ``num_steps`` updates.

    ``jax231.training.fit`` (see the module docstring): update :math:`t` uses the
    examples ``epoch_permutation(data_key, t // (N // B), N)[(t mod (N // B)) B :][:B]``
    with the keys of ``run_keys(seed)``: same seed, same parameters.

    Args:
      model: a :class:`~jax231.models.Captioner`.
      optimizer: a ``GradientTransformation``.
      data: the images and their token ids.
      num_steps, batch_size, seed: updates, examples per update, the run's seed.
      eval_every: updates per compiled chunk (one history row each).
      progress: a progress bar on stderr.
      max_seconds: stop at the first chunk boundary past this wall-clock budget.

    Returns:
      A :class:`CaptionTrainResult`.
    """
    for name, value in (("num_steps", num_steps), ("batch_size", batch_size), ("eval_every", eval_every)):
        check_positive(name, value)
    images, captions = jnp.asarray(data["image"]), jnp.asarray(data["caption"], jnp.int32)
    if captions.ndim != 2 or captions.shape[0] != images.shape[0]:
        raise ValueError(f"data: expected 'caption' of shape ({images.shape[0]}, T), got {tuple(captions.shape)}")
    if batch_size > images.shape[0]:
        raise ValueError(f"batch_size: expected at most the {images.shape[0]} examples, got {batch_size}")
    result = training.fit(
        _as_model(model),
        optimizer,
        train={"image": {"image": images, "caption": captions}},
        loss=_per_example,
        num_steps=num_steps,
        batch_size=batch_size,
        eval_every=eval_every,
        seed=seed,
        progress=progress,
        max_seconds=max_seconds,
        explosion_factor=None,
        check_initial_loss=False,
    )
    history = {
        "step": list(result.history["step"]),
        "time": list(result.history["time"]),
        "loss": list(result.history["train_loss"]),
    }
    return CaptionTrainResult(result.state.params, result.state.opt_state, history)
