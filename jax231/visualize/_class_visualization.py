"""Class visualisation: an image that maximises a class score, by regularised gradient ascent.

.. math:: I^* = \\arg\\max_I \\; s_y(I) - \\lambda \\|I\\|_2^2

Each step (one jitted ``lax.fori_loop``): jitter the image by a random circular shift
of up to ``max_jitter`` pixels, take a normalised gradient step
``I <- I + lr * g / ||g||_2`` on the regularised score, undo the shift, clip to the
pixel range, and every ``blur_every`` steps blur with a Gaussian of ``blur_sigma``
(the implicit regulariser of Yosinski et al.).

References:
  Simonyan et al. 2014; Yosinski et al., "Understanding Neural Networks Through Deep
  Visualization", ICML Deep Learning Workshop 2015; CS231n assignment 3.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jax231.types import Array, PRNGKey, Shape
from jax231.visualize import _checks
from jax231.visualize._blur import gaussian_blur, jitter

__all__ = ["class_visualization"]


@functools.partial(
    jax.jit, static_argnames=("logits_fn", "shape", "num_steps", "max_jitter", "blur_every", "blur_sigma", "clip")
)
def _ascend(
    logits_fn,
    rng,
    classes,
    *,
    shape,
    num_steps,
    learning_rate,
    l2,
    max_jitter,
    blur_every,
    blur_sigma,
    clip,
    init_scale,
):
    k_init, k_loop = jax.random.split(rng)
    low, high = clip if clip is not None else (0.0, 1.0)
    x0 = (low + high) / 2 + init_scale * jax.random.normal(k_init, (classes.shape[0], *shape))

    def objective(x):
        scores = jnp.take_along_axis(logits_fn(x), classes[:, None], axis=1)[:, 0]
        return jnp.sum(scores - l2 * jnp.sum(x * x, axis=(1, 2, 3)))

    def step(t, x):
        dr, dc = jax.random.randint(jax.random.fold_in(k_loop, t), (2,), -max_jitter, max_jitter + 1)
        x = jitter(x, dr, dc)
        g = jax.grad(objective)(x)
        norm = jnp.sqrt(jnp.sum(g * g, axis=(1, 2, 3), keepdims=True))
        x = jitter(x + learning_rate * g / jnp.maximum(norm, 1e-12), -dr, -dc)
        x = _checks.clip_to(x, clip)
        if blur_every:
            x = lax.cond((t + 1) % blur_every == 0, lambda y: gaussian_blur(y, sigma=blur_sigma), lambda y: y, x)
        return x

    return lax.fori_loop(0, num_steps, step, x0)


def class_visualization(
    logits_fn: _checks.LogitsFn,
    classes,
    *,
    rng: PRNGKey,
    input_shape: Shape,
    num_steps: int = 200,
    learning_rate: float = 0.5,
    l2: float = 1e-3,
    max_jitter: int = 2,
    blur_every: int = 10,
    blur_sigma: float = 0.5,
    clip: tuple[float, float] | None = (0.0, 1.0),
    init_scale: float = 0.1,
) -> Array:
    """One image per class in ``classes`` that the network scores highly for it.

    Args:
      logits_fn: ``images -> (N, K)`` class scores (hashable; static in the compiled loop).
      classes: int or ``(N,)`` ints in ``[0, K)``: the class of each image to make.
      rng: PRNG key (initial noise and jitter).
      input_shape: ``(H, W, C)`` of one image.
      num_steps: gradient steps.
      learning_rate: the L2 length of each step.
      l2: ``lambda`` of the L2 penalty.
      max_jitter: largest random shift in pixels (0 = none).
      blur_every: blur period in steps (0 = never).
      blur_sigma: the blur's standard deviation in pixels.
      clip: the pixel range, or None; the images start at its middle plus noise.
      init_scale: standard deviation of the initial noise.

    Returns:
      ``(N, H, W, C)`` images.

    Raises:
      ValueError: ``classes: expected class indices in [0, K), ...`` and other bad input.
    """
    shape = tuple(int(s) for s in input_shape)
    probe = jnp.zeros((1, *shape))
    num_classes = _checks.num_classes_of(logits_fn, probe)
    count = 1 if np.ndim(classes) == 0 else len(classes)
    classes = _checks.check_classes("classes", classes, num_classes, count)
    if not isinstance(max_jitter, int) or max_jitter < 0:
        raise ValueError(f"max_jitter: expected an int >= 0, got {max_jitter!r}")
    if not isinstance(blur_every, int) or blur_every < 0:
        raise ValueError(f"blur_every: expected an int >= 0, got {blur_every!r}")
    if l2 < 0:
        raise ValueError(f"l2: expected a number >= 0, got {l2!r}")
    return _ascend(
        logits_fn,
        rng,
        classes,
        shape=shape,
        num_steps=_checks.check_steps("num_steps", num_steps),
        learning_rate=_checks.check_positive("learning_rate", learning_rate),
        l2=float(l2),
        max_jitter=max_jitter,
        blur_every=blur_every,
        blur_sigma=_checks.check_positive("blur_sigma", blur_sigma),
        clip=None if clip is None else tuple(clip),
        init_scale=float(init_scale),
    )
