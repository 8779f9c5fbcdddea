"""Intermediate activations of the project's VGG-style CNNs (``jax231.models.vgg``): the feature extractor.

Saliency, fooling and occlusion need only the class scores; t-SNE, style transfer and
DeepDream need the activations inside the network. :func:`vgg_activations` replays
``vgg``'s forward pass in inference mode from the parameter tree alone (stages
``stage_s/conv_j[/bn_j]``, hidden layers ``fc_i``, ``head``) and returns every layer's
output by name; its ``'logits'`` equal ``model.apply(params, state, x, train=False)``
(tested).

Layer names: ``'stage_s/conv_j'`` (after the activation), ``'stage_s/pool'``, ``'fc_i'``
(after the activation; the last one is the penultimate layer) and ``'logits'``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jax231.models import layers
from jax231.types import Array, ArrayLike, ModelState, Params

__all__ = ["FeatureExtractor", "check_extractor_input", "vgg_activations", "vgg_extractor"]

FeatureExtractor = Callable[[Array], dict[str, Array]]
"""``images (N, H, W, C) -> {layer name: activation}``."""


def _count(tree: Params, prefix: str) -> int:
    count = 0
    while f"{prefix}{count}" in tree:
        count += 1
    return count


def vgg_activations(
    params: Params, state: ModelState, images: ArrayLike, *, activation: str = "relu", head: bool = True
) -> dict[str, Array]:
    """Every layer's output of a ``jax231.models.vgg`` network, in inference mode.

    Args:
      params: the model's parameters.
      state: its batch-norm statistics (``{}`` without batch norm).
      images: ``(N, H, W, C)``, ``H`` and ``W`` divisible by ``2 ** num_stages``;
        without ``head`` any such size works (the convolutions are size-agnostic).
      activation: the model's activation name.
      head: also compute ``'fc_i'`` and ``'logits'`` (needs the training image size).

    Returns:
      ``{layer name: activation}`` (names in the module docstring).

    Raises:
      ValueError: ``images: expected (N, H, W, C) ...`` for a wrong rank, channel count
        or spatial size.
    """
    images = jnp.asarray(images)
    num_stages = _count(params, "stage_")
    channels = params["stage_0"]["conv_0"]["w"].shape[2]
    factor = 2**num_stages
    if images.ndim != 4 or images.shape[-1] != channels or images.shape[1] % factor or images.shape[2] % factor:
        raise ValueError(
            f"images: expected (N, H, W, {channels}) with H and W divisible by {factor}, got shape {images.shape}"
        )
    act = layers.get_activation(activation)
    out: dict[str, Array] = {}
    x = images
    for s in range(num_stages):
        stage, stats = params[f"stage_{s}"], state.get(f"stage_{s}", {})
        for j in range(_count(stage, "conv_")):
            conv = stage[f"conv_{j}"]
            x = layers.conv2d(x, conv["w"], conv.get("b"), stride=1, padding=1)
            if f"bn_{j}" in stage:
                bn, st = stage[f"bn_{j}"], stats[f"bn_{j}"]
                x, _, _ = layers.batch_norm(x, bn["gamma"], bn["beta"], st["mean"], st["var"], train=False)
            x = act(x)
            out[f"stage_{s}/conv_{j}"] = x
        x = layers.max_pool(x, window=2, stride=2)
        out[f"stage_{s}/pool"] = x
    if not head:
        return out
    h = layers.flatten(x)
    first = params["fc_0"] if "fc_0" in params else params["head"]
    if h.shape[-1] != first["w"].shape[0]:
        raise ValueError(
            f"images: expected the training image size for the classifier head "
            f"({first['w'].shape[0]} flattened features), got shape {images.shape}"
        )
    for i in range(_count(params, "fc_")):
        h = act(layers.affine(h, params[f"fc_{i}"]["w"], params[f"fc_{i}"]["b"]))
        out[f"fc_{i}"] = h
    out["logits"] = layers.affine(h, params["head"]["w"], params["head"]["b"])
    return out


def vgg_extractor(
    params: Params, state: ModelState, *, activation: str = "relu", head: bool = False
) -> FeatureExtractor:
    """:func:`vgg_activations` with the network fixed: ``images -> {layer: activation}``."""
    return lambda images: vgg_activations(params, state, images, activation=activation, head=head)


def check_extractor_input(name: str, extractor: FeatureExtractor, image: ArrayLike) -> Array:
    """Validates one ``(H, W, C)`` image against ``extractor`` (abstractly, no FLOPs); returns it.

    Raises:
      ValueError: ``<name>: expected ...`` when the extractor rejects the image's shape.
    """
    image = jnp.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"{name}: expected one (H, W, C) image, got shape {image.shape}")
    try:
        jax.eval_shape(extractor, image[None])
    except ValueError as err:
        message = str(err).split(": ", 1)[-1]
        raise ValueError(f"{name}: {message}") from None
    return image
