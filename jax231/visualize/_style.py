"""Neural style transfer: content and Gram-matrix style losses, total variation, and the optimisation.

With ``F^l`` the ``(H_l W_l, C_l)`` activations of layer ``l`` of a feature extractor:

* Gram matrix ``G^l = F^{l T} F^l / (H_l W_l C_l)`` (``normalize``; the assignment's
  convention);
* content loss ``w_c * sum (F^l(x) - F^l(c))^2`` at the content layer;
* style loss ``sum_l w_l * sum (G^l(x) - G^l(s))^2`` over the style layers;
* total variation ``w_tv * (sum (x_{i+1,j} - x_{i,j})^2 + sum (x_{i,j+1} - x_{i,j})^2)``.

:func:`style_transfer` minimises their sum over the pixels of ``x`` (started at the
content image, or at noise) with ``jax231.optimizers.adam`` in one jitted ``lax.scan``.

With the project's own small CIFAR-10/digits CNN as the extractor (there are no ImageNet
weights here), the results demonstrate the method -- colours and textures of the style
image moved onto the layout of the content image -- not the painterly pictures of
Gatys et al. with VGG-19.

References:
  Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks",
  CVPR 2016; Johnson, Alahi & Fei-Fei 2016; CS231n lecture 12 and assignment 3.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jax231 import optimizers
from jax231.types import Array, ArrayLike, PRNGKey
from jax231.visualize import _checks
from jax231.visualize._extractor import FeatureExtractor, check_extractor_input

__all__ = ["StyleTransferResult", "content_loss", "gram_matrix", "style_loss", "style_transfer", "total_variation_loss"]


class StyleTransferResult(NamedTuple):
    """The stylised image and the loss along the way.

    Attributes:
      image: ``(H, W, C)`` the result.
      losses: ``(num_steps,)`` the total loss before each step.
    """

    image: Array
    losses: Array


def gram_matrix(features: ArrayLike, *, normalize: bool = True) -> Array:
    """``(N, C, C)`` Gram matrices ``F^T F`` of ``(N, H, W, C)`` activations (``/ (H W C)`` if ``normalize``)."""
    features = jnp.asarray(features)
    if features.ndim != 4:
        raise ValueError(f"features: expected (N, H, W, C) activations, got shape {features.shape}")
    n, h, w, c = features.shape
    flat = features.reshape(n, h * w, c)
    gram = jnp.einsum("nkc,nkd->ncd", flat, flat)
    return gram / (h * w * c) if normalize else gram


def content_loss(current: ArrayLike, target: ArrayLike, *, weight: float) -> Array:
    """``weight * sum (current - target)^2`` (a scalar)."""
    return weight * jnp.sum((jnp.asarray(current) - jnp.asarray(target)) ** 2)


def style_loss(activations: dict[str, Array], target_grams: dict[str, Array], weights: dict[str, float]) -> Array:
    """``sum_l weights[l] * sum (G(activations[l]) - target_grams[l])^2`` over the layers of ``weights``."""
    return sum(w * jnp.sum((gram_matrix(activations[l]) - target_grams[l]) ** 2) for l, w in weights.items())  # type: ignore[return-value]  # 0 if no weights


def total_variation_loss(images: ArrayLike, *, weight: float) -> Array:
    """``weight * sum`` of squared differences of vertically and horizontally adjacent pixels, ``(N, H, W, C)``."""
    x = jnp.asarray(images)
    return weight * (jnp.sum((x[:, 1:] - x[:, :-1]) ** 2) + jnp.sum((x[:, :, 1:] - x[:, :, :-1]) ** 2))


def _check_layers(name: str, requested: Sequence[str], available: Sequence[str]) -> None:
    missing = [layer for layer in requested if layer not in available]
    if missing or not requested:
        raise ValueError(f"{name}: expected layers among {sorted(available)}, got {list(requested)}")


@functools.partial(jax.jit, static_argnames=("extractor", "content_layer", "style_weights", "num_steps", "clip"))
def _optimise(
    extractor,
    content_image,
    style_image,
    x0,
    *,
    content_layer,
    content_weight,
    style_weights,
    tv_weight,
    num_steps,
    learning_rate,
    clip,
):
    weights = dict(style_weights)
    content_target = extractor(content_image[None])[content_layer]
    style_acts = extractor(style_image[None])
    style_targets = {layer: gram_matrix(style_acts[layer]) for layer in weights}

    def total_loss(x):
        acts = extractor(x)
        return (
            content_loss(acts[content_layer], content_target, weight=content_weight)
            + style_loss(acts, style_targets, weights)
            + total_variation_loss(x, weight=tv_weight)
        )

    optimizer = optimizers.adam(learning_rate)

    def step(carry, _):
        x, opt_state = carry
        value, grad = jax.value_and_grad(total_loss)(x)
        updates, opt_state = optimizer.update(grad, opt_state, x)
        return (_checks.clip_to(optimizers.apply_updates(x, updates), clip), opt_state), value

    x0 = x0[None]
    (x, _), values = lax.scan(step, (x0, optimizer.init(x0)), None, length=num_steps)
    return StyleTransferResult(x[0], values)


def style_transfer(
    extractor: FeatureExtractor,
    content_image: ArrayLike,
    style_image: ArrayLike,
    *,
    content_layer: str,
    style_layers: Sequence[str],
    style_weights: Sequence[float],
    content_weight: float = 1.0,
    tv_weight: float = 0.0,
    num_steps: int = 200,
    learning_rate: float = 0.02,
    rng: PRNGKey | None = None,
    clip: tuple[float, float] | None = (0.0, 1.0),
) -> StyleTransferResult:
    """Minimises content + style + total-variation loss over the pixels (Adam, one jitted scan).

    Args:
      extractor: ``images -> {layer: activation}`` (hashable; e.g. :func:`vgg_extractor`).
      content_image: ``(H, W, C)`` image whose layout is kept.
      style_image: ``(H', W', C)`` image whose Gram matrices are matched (any size the
        extractor takes).
      content_layer: the extractor layer of the content loss.
      style_layers: the layers of the style loss ...
      style_weights: ... and their weights (same length).
      content_weight: ``w_c``.
      tv_weight: ``w_tv``.
      num_steps: Adam steps.
      learning_rate: Adam's step size.
      rng: when given, start from uniform noise in the pixel range instead of the content image.
      clip: the pixel range, or None.

    Raises:
      ValueError: ``content_image: expected ...`` / ``style_image: expected ...`` for shapes the
        extractor rejects; unknown layers; mismatched weights.
    """
    content_image = check_extractor_input("content_image", extractor, content_image)
    style_image = check_extractor_input("style_image", extractor, style_image)
    if style_image.shape[-1] != content_image.shape[-1]:
        raise ValueError(
            f"style_image: expected {content_image.shape[-1]} channels like content_image, "
            f"got shape {style_image.shape}"
        )
    available = tuple(jax.eval_shape(extractor, content_image[None]))
    _check_layers("content_layer", [content_layer], available)
    _check_layers("style_layers", list(style_layers), available)
    if len(style_weights) != len(style_layers):
        raise ValueError(
            f"style_weights: expected {len(style_layers)} weights (one per style layer), got {len(style_weights)}"
        )
    low, high = clip if clip is not None else (0.0, 1.0)
    x0 = content_image if rng is None else jax.random.uniform(rng, content_image.shape, minval=low, maxval=high)
    return _optimise(
        extractor,
        content_image,
        style_image,
        x0,
        content_layer=content_layer,
        content_weight=float(content_weight),
        style_weights=tuple((l, float(w)) for l, w in zip(style_layers, style_weights)),
        tv_weight=float(tv_weight),
        num_steps=_checks.check_steps("num_steps", num_steps),
        learning_rate=_checks.check_positive("learning_rate", learning_rate),
        clip=None if clip is None else tuple(clip),
    )
