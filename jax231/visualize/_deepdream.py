"""DeepDream: gradient ascent on the image to amplify whatever a layer already sees in it.

Each step (one jitted ``lax.fori_loop``): jitter by a random circular shift, ascend
``1/2 mean(a_l(x)^2)`` with the step ``x <- x + lr * g / mean|g|``, undo the shift,
clip to the pixel range.

With the project's own small CIFAR-10/digits CNN (there are no ImageNet weights here),
the pictures demonstrate the method -- the patterns a small network's layer responds to,
amplified -- not the famous dog-faces-everywhere results of Inception trained on ImageNet.

References:
  Mordvintsev, Olah & Tyka, "Inceptionism: Going Deeper into Neural Networks", Google
  Research blog, 2015; CS231n lecture 12.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from jax231.types import Array, ArrayLike, PRNGKey
from jax231.visualize import _checks
from jax231.visualize._blur import jitter
from jax231.visualize._extractor import FeatureExtractor, check_extractor_input

__all__ = ["deep_dream"]


@functools.partial(jax.jit, static_argnames=("extractor", "layer", "num_steps", "max_jitter", "clip"))
def _dream(extractor, image, rng, *, layer, num_steps, learning_rate, max_jitter, clip):
    def objective(x):
        return 0.5 * jnp.mean(extractor(x)[layer] ** 2)

    def step(t, x):
        dr, dc = jax.random.randint(jax.random.fold_in(rng, t), (2,), -max_jitter, max_jitter + 1)
        x = jitter(x, dr, dc)
        g = jax.grad(objective)(x)
        x = x + learning_rate * g / jnp.maximum(jnp.mean(jnp.abs(g)), 1e-12)
        return _checks.clip_to(jitter(x, -dr, -dc), clip)

    return lax.fori_loop(0, num_steps, step, image[None])[0]


def deep_dream(
    extractor: FeatureExtractor,
    image: ArrayLike,
    *,
    layer: str,
    rng: PRNGKey,
    num_steps: int = 50,
    learning_rate: float = 0.01,
    max_jitter: int = 2,
    clip: tuple[float, float] | None = (0.0, 1.0),
) -> Array:
    """The ``(H, W, C)`` image after ``num_steps`` of amplifying ``layer``'s activations.

    Raises:
      ValueError: ``image: expected ...`` for a shape the extractor rejects; ``layer: expected
        layers among ...`` for an unknown layer.
    """
    image = check_extractor_input("image", extractor, image)
    available = tuple(jax.eval_shape(extractor, image[None]))
    if layer not in available:
        raise ValueError(f"layer: expected one of {sorted(available)}, got {layer!r}")
    if not isinstance(max_jitter, int) or max_jitter < 0:
        raise ValueError(f"max_jitter: expected an int >= 0, got {max_jitter!r}")
    return _dream(
        extractor,
        image,
        rng,
        layer=layer,
        num_steps=_checks.check_steps("num_steps", num_steps),
        learning_rate=_checks.check_positive("learning_rate", learning_rate),
        max_jitter=max_jitter,
        clip=None if clip is None else tuple(clip),
    )
