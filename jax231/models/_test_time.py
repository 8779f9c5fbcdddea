"""Test-time averaging: test-time augmentation (TTA) and Monte-Carlo averaging (MC dropout).

Both replace one prediction by the mean of the class probabilities of several
forward passes:

* TTA (:func:`tta_predict`): passes over deterministic augmented *views* of
  the images (crops and mirrors), the notes' "average the predictions over
  augmented copies" (AlexNet's 10 crops);
* MC averaging (:func:`mc_predict`, :func:`mc_dropout_predict`): passes over
  ``T`` random keys of a stochastic network (dropout masks, Gaussian noise,
  fractional-pooling regions), which marginalises the noise numerically and
  gives a spread (Gal & Ghahramani's uncertainty).

References:
  CS231n notes, "Neural Networks Part 2" (dropout: "the forward pass at test
  time ... marginalise the noise") and "Neural Networks Part 3" (model
  ensembles); Krizhevsky et al., "ImageNet Classification with Deep
  Convolutional Neural Networks", 2012 (10-crop test); Gal & Ghahramani,
  "Dropout as a Bayesian Approximation", ICML 2016.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jax231.models import layers
from jax231.models._model import Model
from jax231.types import Array, ArrayLike, ModelState, Params, PRNGKey

__all__ = ["McPrediction", "mc_dropout_predict", "mc_predict", "tta_predict", "tta_views"]

CROPS = (1, 5)
PAD_MODES = ("constant", "edge", "reflect")
"""``pad_mode`` choices of :func:`tta_views` (``jnp.pad``'s: zeros, repeated edge pixels, mirror)."""


class McPrediction(NamedTuple):
    """Monte-Carlo averaged prediction.

    Attributes:
      mean: ``(N, C)`` mean of the ``T`` softmax probability vectors.
      std: ``(N, C)`` their standard deviation (population, over ``T``).
    """

    mean: Array
    std: Array


def _check_num_samples(num_samples: Any) -> int:
    if isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral) or num_samples < 1:
        raise ValueError(f"num_samples: expected an int >= 1 (the number T of passes), got {num_samples!r}")
    return int(num_samples)


def mc_predict(predict: Callable[[PRNGKey], ArrayLike], rng: PRNGKey, *, num_samples: int) -> McPrediction:
    """Averages the softmax probabilities of ``T`` stochastic passes.

    .. math:: \\bar p = \\frac{1}{T} \\sum_{t=1}^T \\mathrm{softmax}(f(x; k_t)), \\qquad
              s = \\sqrt{\\frac{1}{T} \\sum_t (\\mathrm{softmax}(f(x; k_t)) - \\bar p)^2}

    with :math:`k_1..k_T` = ``jax.random.split(rng, T)`` and :math:`T` =
    ``num_samples``. The passes run under one ``vmap``.

    Args:
      predict: ``key -> logits (N, C)``, e.g. a model's apply with a dropout key.
      rng: PRNG key of the ``T`` draws.
      num_samples: :math:`T \\ge 1`.

    Returns:
      An :class:`McPrediction`.

    Raises:
      ValueError: when ``num_samples`` < 1.
    """
    num_samples = _check_num_samples(num_samples)
    probs = jax.vmap(lambda key: layers.softmax(jnp.asarray(predict(key))))(jax.random.split(rng, num_samples))
    return McPrediction(mean=jnp.mean(probs, axis=0), std=jnp.std(probs, axis=0))


def mc_dropout_predict(
    model: Model, params: Params, state: ModelState, x: ArrayLike, *, rng: PRNGKey, num_samples: int
) -> McPrediction:
    """Monte-Carlo dropout: :func:`mc_predict` over ``model.apply(..., train=True, rng=k_t)``.

    Keeps dropout (and any other stochastic layer) active at test time and
    averages ``T`` masks. ``train=True`` also switches batch norm to batch
    statistics (its new state is discarded): use it with models whose only
    train/test difference is dropout or noise, or evaluate large batches.

    Args:
      model: a :class:`~jax231.models.Model`.
      params: its parameters.
      state: its state (returned unchanged).
      x: inputs ``(N, ...)``.
      rng: PRNG key of the masks.
      num_samples: :math:`T \\ge 1` masks.

    Returns:
      An :class:`McPrediction` of ``(N, C)`` mean probabilities and their spread.

    Raises:
      ValueError: when ``num_samples`` < 1.
    """
    return mc_predict(lambda key: model.apply(params, state, x, train=True, rng=key)[0], rng, num_samples=num_samples)


def tta_views(
    images: ArrayLike, *, flip: bool = True, crops: int = 5, pad: int = 4, pad_mode: str = "constant"
) -> Array:
    """Deterministic augmented copies of a batch: crops of the zero-padded images and mirrors.

    ``crops=5`` takes, from the images zero-padded by ``pad`` on every side,
    the centre (the original image) and the four corner crops of the input
    size (the pad-and-crop of training at its extreme offsets); ``crops=1``
    keeps the image only. ``flip`` adds the horizontal mirror of every view.
    AlexNet's "10 crops" are ``crops=5, flip=True``.

    Args:
      images: ``(N, H, W, C)``.
      flip: add mirrored views.
      crops: 1 or 5.
      pad: zeros on each side before cropping (>= 0; ``crops=5`` with
        ``pad=0`` repeats the image five times).
      pad_mode: what the padding holds, one of :data:`PAD_MODES`: zeros
        (``'constant'``), the repeated edge pixels (``'edge'``, the views of a
        training translation that repeats edges) or the mirror (``'reflect'``).

    Returns:
      ``(V, N, H, W, C)`` with ``V = crops * (2 if flip else 1)``; view 0 is the image.

    Raises:
      ValueError: for ``crops`` not in (1, 5), a negative ``pad``, an unknown ``pad_mode``
        or a non-NHWC batch.
    """
    if pad_mode not in PAD_MODES:
        raise ValueError(f"pad_mode: expected one of {PAD_MODES}, got {pad_mode!r}")
    if crops not in CROPS:
        raise ValueError(f"crops: expected one of {list(CROPS)}, got {crops!r}")
    if isinstance(pad, bool) or not isinstance(pad, numbers.Integral) or pad < 0:
        raise ValueError(f"pad: expected an int >= 0, got {pad!r}")
    images = jnp.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images: expected shape (N, H, W, C), got {images.shape}")
    _, h, w, _ = images.shape
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode=pad_mode)
    offsets = [(pad, pad)] if crops == 1 else [(pad, pad), (0, 0), (0, 2 * pad), (2 * pad, 0), (2 * pad, 2 * pad)]
    views = [padded[:, i : i + h, j : j + w] for i, j in offsets]
    if flip:
        views += [v[:, :, ::-1] for v in views]
    return jnp.stack(views)


def tta_predict(
    predict: Callable[[Array], ArrayLike],
    images: ArrayLike,
    *,
    flip: bool = True,
    crops: int = 5,
    pad: int = 4,
    pad_mode: str = "constant",
) -> Array:
    """Test-time augmentation: the mean softmax probabilities over the :func:`tta_views`.

    .. math:: \\bar p(x) = \\frac{1}{V} \\sum_{v=1}^{V} \\mathrm{softmax}(f(T_v x))

    with :math:`T_v` the ``V`` deterministic views (crops, mirrors) and
    :math:`f` = ``predict``. Take ``argmax`` of the result for the class.

    Args:
      predict: ``images (N, H, W, C) -> logits (N, C)``, e.g.
        ``lambda x: model.apply(params, state, x, train=False)[0]``.
      images: ``(N, H, W, C)``.
      flip: include mirrored views.
      crops: 1 or 5 crops (see :func:`tta_views`).
      pad: padding of the crops.
      pad_mode: what the padding holds (see :func:`tta_views`).

    Returns:
      ``(N, C)`` mean probabilities.

    Raises:
      ValueError: as :func:`tta_views`.
    """
    views = tta_views(images, flip=flip, crops=crops, pad=pad, pad_mode=pad_mode)
    return jnp.mean(jax.vmap(lambda v: layers.softmax(jnp.asarray(predict(v))))(views), axis=0)
