"""Training a likelihood (or reconstruction) model with :func:`jax231.training.fit`.

``fit`` trains any ``Model`` on pytree batches; an unsupervised objective has no
labels (its target is the input itself), so the batches are ``{'image': x}``
alone. The adapter here makes a generative model a ``Model``:

* :func:`as_model` wraps any generative model with ``init(rng, input_shape)``
  and ``loss(params, x, rng) -> (N,)`` into a ``Model`` whose ``apply`` returns
  the per-example objective as a ``(N, 1)`` output (train mode draws the
  model's noise, e.g. the VAE's :math:`\\epsilon`, from ``fit``'s per-step key;
  eval mode uses the fixed key ``key(0)``, so validation is deterministic);
* :func:`objective_loss` reads it back (``labels`` is ``None``).

``fit``'s ``train_accuracy`` / ``val_accuracy`` are NaN (undefined without labels);
``train_loss`` / ``val_loss`` are the mean objective in nats per example.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jax231 import training
from jax231.models import Model
from jax231.types import Array, ArrayLike, ModelState, Params, PRNGKey, Shape

__all__ = ["as_model", "fit_generative", "objective_loss"]


def objective_loss(*, logits: ArrayLike, labels: ArrayLike) -> Array:
    """The per-example objective carried in ``logits[:, 0]`` by :func:`as_model` (``labels``: ``None``, ignored)."""
    del labels
    return jnp.asarray(logits)[:, 0]


@functools.cache
def as_model(generative: Any) -> Model:
    """A ``Model`` whose ``apply`` returns ``generative.loss(params, x, rng)[:, None]`` (cached per model).

    Args:
      generative: any object with ``init(rng, input_shape) -> params`` and
        ``loss(params, x, rng) -> (N,)`` (a :class:`~jax231.models.VAE`,
        :class:`~jax231.models.Autoencoder` or :class:`~jax231.models.AutoregressiveModel`).
    """

    def init_fn(rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]:
        return generative.init(rng, tuple(input_shape)), {}

    def apply_fn(
        params: Params, state: ModelState, x: ArrayLike, *, train: bool, rng: PRNGKey | None = None
    ) -> tuple[Array, ModelState]:
        key = rng if (train and rng is not None) else jax.random.PRNGKey(0)
        return generative.loss(params, x, key)[:, None], state

    return Model(init_fn, apply_fn)


def _as_arrays(images: ArrayLike) -> dict[str, Any]:
    return {"image": np.asarray(images, np.float32)}


def fit_generative(
    generative: Any, optimizer: Any, *, train: ArrayLike, val: ArrayLike | None = None, **fit_kwargs: Any
) -> training.FitResult:
    """``jax231.training.fit`` on the objective of ``generative`` (see the module docstring).

    Args:
      generative: a model with ``init`` and ``loss`` (see :func:`as_model`).
      optimizer: a ``GradientTransformation``.
      train: training images ``(N, H, W, C)``.
      val: optional validation images.
      **fit_kwargs: passed to ``fit`` (``num_steps``, ``batch_size``, ``eval_every``,
        ``seed``, ``progress``, ``max_seconds``, ...); ``loss`` and
        ``check_initial_loss`` are set here.

    Returns:
      ``fit``'s :class:`~jax231.training.FitResult`; ``result.state.params`` are
      the generative model's parameters.
    """
    return training.fit(
        as_model(generative),
        optimizer,
        train=_as_arrays(train),
        val=None if val is None else _as_arrays(val),
        loss=objective_loss,
        check_initial_loss=False,
        **fit_kwargs,
    )
