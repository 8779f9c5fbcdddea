"""RandAugment-style random composition of the augmentation ops (the notes' "go crazy").

Per example, ``num_ops`` operations are drawn uniformly, with replacement, from
:data:`OPS` and applied one after the other at one global ``magnitude``
:math:`m \\in [0, 1]`; each op is a single-step :class:`._augment.Augment` of
:func:`._augment.apply_params` (the same formulas as ``augment_batch``) whose
strength is :math:`m` times the op's maximum in :data:`MAX_STRENGTH`, with a
random sign for the signed ops. There are two hyperparameters, ``num_ops``
(RandAugment's :math:`N`) and ``magnitude`` (its :math:`M`, here on
``[0, 1]`` rather than ``[0, 30]``), so the policy is searched by a small grid.

AutoAugment's *learned* policy (a controller trained by reinforcement learning
to pick ops, probabilities and magnitudes) is out of scope: only the random
composition is implemented.

Magnitudes of the colour ops are in input units and assume pixel values of
order 1 (``[0, 1]`` or standardised).

References:
  Cubuk, Zoph, Shlens & Le, "RandAugment: Practical automated data
  augmentation with a reduced search space", CVPR Workshops 2020;
  Cubuk et al., "AutoAugment", CVPR 2019 (not implemented);
  CS231n lecture 7, data augmentation.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import lax

from jax231.pipelines import _warp
from jax231.pipelines._augment import Augment, AugmentParams, apply_params
from jax231.types import Array, ArrayLike, PRNGKey

OPS = (
    "identity",
    "flip",
    "translate_x",
    "translate_y",
    "rotate",
    "scale",
    "shear_x",
    "shear_y",
    "brightness",
    "contrast",
    "saturation",
    "cutout",
)
"""The operations, in the order of their index (``saturation`` is the identity unless C = 3)."""

MAX_STRENGTH = {
    "translate_x": 0.3,  # fraction of the width
    "translate_y": 0.3,  # fraction of the height
    "rotate": 30.0,  # degrees
    "scale": 0.3,  # relative zoom change
    "shear_x": 0.3,
    "shear_y": 0.3,
    "brightness": 0.3,  # additive
    "contrast": 0.9,  # relative factor change
    "saturation": 0.9,  # relative factor change
    "cutout": 0.5,  # side as a fraction of min(H, W)
}
"""An op's strength at ``magnitude = 1`` (RandAugment's ``M = 30`` range, rescaled)."""

_OFF = Augment(pad_crop=0, flip=False)


def _neutral() -> AugmentParams:
    """Draws of one example that leave every step a no-op."""
    zero2 = jnp.zeros((2,), jnp.int32)
    return AugmentParams(
        crop=zero2,
        shift=zero2,
        flip=jnp.zeros((), bool),
        brightness=jnp.zeros(()),
        contrast=jnp.ones(()),
        saturation=jnp.ones(()),
        cutout=zero2,
        warp=jnp.eye(2, 3),
    )


def _warp_op(hw: tuple[int, int], **transform: Any) -> AugmentParams:
    matrix, offset = _warp.affine_matrix(hw, **transform)
    return _neutral()._replace(warp=jnp.concatenate([matrix, offset[:, None]], axis=1))


def _op_branches(hw: tuple[int, int], channels: int, magnitude: float) -> list[Callable[[PRNGKey, Array], Array]]:
    """One ``(key, image) -> image`` per entry of :data:`OPS`."""
    h, w = hw
    neutral = _neutral()
    strength = {name: magnitude * value for name, value in MAX_STRENGTH.items()}

    def signed(key: PRNGKey, value: float) -> Array:
        return jnp.where(jax.random.bernoulli(key), value, -value)

    def with_params(cfg: Augment, draw: Callable[[PRNGKey], AugmentParams]) -> Callable[[PRNGKey, Array], Array]:
        return lambda key, x: apply_params(draw(key), x, cfg)

    warp_cfg = _OFF._replace(rotate=1.0)  # any non-zero warp field switches step 0 on
    side = int(round(strength["cutout"] * min(h, w)))  # 0 at magnitude 0: the identity
    branches = {
        "identity": lambda key, x: x,
        "flip": lambda key, x: x[:, ::-1],
        "translate_x": with_params(
            warp_cfg, lambda k: _warp_op(hw, translation=(0.0, signed(k, strength["translate_x"] * w)))
        ),
        "translate_y": with_params(
            warp_cfg, lambda k: _warp_op(hw, translation=(signed(k, strength["translate_y"] * h), 0.0))
        ),
        "rotate": with_params(warp_cfg, lambda k: _warp_op(hw, rotation=signed(k, math.radians(strength["rotate"])))),
        "scale": with_params(warp_cfg, lambda k: _warp_op(hw, scale=1.0 + signed(k, strength["scale"]))),
        "shear_x": with_params(warp_cfg, lambda k: _warp_op(hw, shear=signed(k, strength["shear_x"]))),
        "shear_y": with_params(warp_cfg, lambda k: neutral._replace(warp=_shear_y(hw, signed(k, strength["shear_y"])))),
        "brightness": with_params(
            _OFF._replace(brightness=1.0), lambda k: neutral._replace(brightness=signed(k, strength["brightness"]))
        ),
        "contrast": with_params(
            _OFF._replace(contrast=1.0), lambda k: neutral._replace(contrast=1.0 + signed(k, strength["contrast"]))
        ),
        "saturation": (
            with_params(
                _OFF._replace(saturation=1.0),
                lambda k: neutral._replace(saturation=1.0 + signed(k, strength["saturation"])),
            )
            if channels == 3
            else (lambda key, x: x)
        ),
        "cutout": with_params(
            _OFF._replace(cutout=side),
            lambda k: neutral._replace(
                cutout=jnp.stack(
                    [jax.random.randint(k, (), 0, h), jax.random.randint(jax.random.fold_in(k, 1), (), 0, w)]
                )
            ),
        )
        if side
        else (lambda key, x: x),
    }
    return [branches[name] for name in OPS]


def _shear_y(hw: tuple[int, int], k: Array) -> Array:
    """``[A | b]`` of a vertical shear (rows move by ``k`` times the column) about the centre."""
    forward = jnp.array([[1.0, 0.0], [0.0, 1.0]]).at[0, 1].set(k)
    inverse = jnp.linalg.inv(forward)
    centre = jnp.array([(hw[0] - 1) / 2, (hw[1] - 1) / 2])
    return jnp.concatenate([inverse, (centre - inverse @ centre)[:, None]], axis=1)


def _check(num_ops: object, magnitude: object) -> None:
    if isinstance(num_ops, bool) or not isinstance(num_ops, numbers.Integral) or num_ops < 0:
        raise ValueError(f"num_ops: expected an int >= 0, got {num_ops!r}")
    # (`numbers.Real` has no `__ge__` in the stubs, so mypy rejects `0 <= magnitude`.)
    if isinstance(magnitude, bool) or not isinstance(magnitude, numbers.Real) or not 0 <= magnitude <= 1:  # type: ignore[operator]
        raise ValueError(f"magnitude: expected a float in [0, 1], got {magnitude!r}")


def rand_augment(rng: PRNGKey, images: ArrayLike, *, num_ops: int = 2, magnitude: float = 0.5) -> Array:
    """RandAugment on a batch of images: ``num_ops`` random ops per example at one magnitude.

    For every example :math:`x` and :math:`t = 1..N`: draw an op
    :math:`o_t \\sim U(\\text{OPS})` and apply it, :math:`x \\leftarrow o_t(x; m)`,
    with :math:`N` = ``num_ops`` and :math:`m` = ``magnitude`` (see the module
    docstring). Runs under ``jit``; one ``lax.switch`` per step (under ``vmap``
    every op is evaluated and one selected, cheap for 32x32 images).

    Args:
      rng: PRNG key; the same key gives the same batch.
      images: ``(B, H, W, C)`` floating images.
      num_ops: :math:`N \\ge 0` ops per example (0 returns the images).
      magnitude: :math:`m \\in [0, 1]`, the strength of every op relative to :data:`MAX_STRENGTH`.

    Returns:
      Augmented images, the shape and dtype of ``images``.

    Raises:
      ValueError: on a bad ``num_ops`` or ``magnitude``, or images that are not
        floating ``(B, H, W, C)``.
    """
    _check(num_ops, magnitude)
    images = jnp.asarray(images)
    if images.ndim != 4 or not jnp.issubdtype(images.dtype, jnp.floating):
        raise ValueError(f"images: expected floating (B, H, W, C), got {images.dtype} {images.shape}")
    if num_ops == 0:
        return images
    branches = _op_branches((images.shape[1], images.shape[2]), images.shape[3], float(magnitude))

    def one(key: PRNGKey, x: Array) -> Array:
        for step_key in jax.random.split(key, num_ops):
            k_choice, k_op = jax.random.split(step_key)
            index = jax.random.randint(k_choice, (), 0, len(OPS))
            x = lax.switch(index, branches, k_op, x).astype(x.dtype)
        return x

    return jax.vmap(one)(jax.random.split(rng, images.shape[0]), images)
