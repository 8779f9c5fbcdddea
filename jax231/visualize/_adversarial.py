"""Fooling images (iterated gradient ascent to a target class) and the fast gradient sign method.

Fooling images (assignment 3): repeat ``x <- x + alpha * g / ||g||_2`` with
``g = d f_t(x) / d x``, ``f_t`` the target's raw score ``s_t`` (``objective='score'``, the
assignment's) or its log-probability ``s_t - log sum_j exp s_j`` (``objective='log_prob'``,
Szegedy et al.'s targeted loss: it also pushes the other scores down; on a ReLU network the
raw-score ascent can inflate every score and leave another class ahead for good) or the margin
``s_t - max_{j != t} s_j`` (``objective='margin'``, Carlini & Wagner's ``f_6`` with ``kappa = 0``:
only the strongest rival is pushed down). On a ReLU network every one of them stalls where the
ascent has switched off the last active hidden units: the scores are then the constant biases and
the gradient is zero (a dead-ReLU plateau; see the visualize experiment's CIFAR-10 notes). With a pixel
range, the components of ``g`` that would push a pixel already at a bound further out are dropped
first (a projected gradient step, so clipped pixels do not stall the ascent). The steps repeat
until the network predicts the target ``t`` (each image stops as soon as it is fooled) or
``max_steps`` have been taken.

FGSM (Goodfellow et al.): one step of size ``epsilon`` along the sign of the loss
gradient, ``x + epsilon * sign(d L(x, y) / d x)`` (untargeted, away from the label) or
``x - epsilon * sign(d L(x, t) / d x)`` (targeted, towards ``t``); the L-inf size of the
perturbation is ``epsilon`` (before clipping to the pixel range).

References:
  Szegedy et al., "Intriguing properties of neural networks", ICLR 2014; Goodfellow,
  Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015;
  CS231n lecture 12 and assignment 3.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jax231 import losses
from jax231.types import Array, ArrayLike
from jax231.visualize import _checks

__all__ = ["FOOLING_OBJECTIVES", "FoolingResult", "fgsm", "fooling_images", "l2_perturbation", "linf_perturbation"]


class FoolingResult(NamedTuple):
    """Fooling images and how they were reached.

    Attributes:
      images: ``(N, H, W, C)`` the perturbed images.
      fooled: ``(N,)`` bool, whether each is classified as its target.
      num_steps: ``(N,)`` int32, the gradient steps each took.
      linf: ``(N,)`` the L-inf norm of each perturbation ``max |x' - x|``.
      l2: ``(N,)`` its L2 norm ``||x' - x||_2``.
    """

    images: Array
    fooled: Array
    num_steps: Array
    linf: Array
    l2: Array


def linf_perturbation(original: ArrayLike, perturbed: ArrayLike) -> Array:
    """``(N,)`` ``max_{ijc} |x'_{ijc} - x_{ijc}|`` per image."""
    diff = jnp.abs(jnp.asarray(perturbed) - jnp.asarray(original))
    return diff.reshape(diff.shape[0], -1).max(axis=1)


def l2_perturbation(original: ArrayLike, perturbed: ArrayLike) -> Array:
    """``(N,)`` ``sqrt(sum_{ijc} (x'_{ijc} - x_{ijc})^2)`` per image."""
    diff = jnp.asarray(perturbed) - jnp.asarray(original)
    return jnp.sqrt(jnp.sum(diff.reshape(diff.shape[0], -1) ** 2, axis=1))


FOOLING_OBJECTIVES = ("score", "log_prob", "margin")


def _target_objective(logits_fn, x, targets, objective):
    scores = logits_fn(x)
    if objective == "log_prob":
        scores = jax.nn.log_softmax(scores, axis=1)
    target = jnp.take_along_axis(scores, targets[:, None], axis=1)[:, 0]
    if objective == "margin":  # s_t - max_{j != t} s_j (Carlini & Wagner's f_6 with kappa = 0).
        others = jnp.where(jax.nn.one_hot(targets, scores.shape[1], dtype=bool), -jnp.inf, scores)
        target = target - others.max(axis=1)
    return target.sum()


@functools.partial(jax.jit, static_argnames=("logits_fn", "max_steps", "clip", "objective"))
def _fool(logits_fn, images, targets, step_size, max_steps, clip, objective):
    grad_fn = jax.grad(lambda x: _target_objective(logits_fn, x, targets, objective))

    def predicted_target(x):
        return jnp.argmax(logits_fn(x), axis=1) == targets

    def cond(carry):
        x, _, it = carry
        return (it < max_steps) & ~jnp.all(predicted_target(x))

    def body(carry):
        x, steps, it = carry
        active = ~predicted_target(x)
        g = grad_fn(x)
        if clip is not None:  # Projected gradient: drop components pushing clipped pixels out of range.
            g = jnp.where(((x <= clip[0]) & (g < 0)) | ((x >= clip[1]) & (g > 0)), 0.0, g)
        norm = jnp.sqrt(jnp.sum(g * g, axis=(1, 2, 3), keepdims=True))
        step = step_size * g / jnp.maximum(norm, 1e-12)
        x = jnp.where(active[:, None, None, None], _checks.clip_to(x + step, clip), x)
        return x, steps + active.astype(jnp.int32), it + 1

    init = (images, jnp.zeros(images.shape[0], jnp.int32), jnp.asarray(0, jnp.int32))
    x, steps, _ = lax.while_loop(cond, body, init)
    return FoolingResult(x, predicted_target(x), steps, linf_perturbation(images, x), l2_perturbation(images, x))


def fooling_images(
    logits_fn: _checks.LogitsFn,
    images: ArrayLike,
    targets: ArrayLike,
    *,
    step_size: float = 0.1,
    max_steps: int = 100,
    clip: tuple[float, float] | None = None,
    objective: str = "score",
) -> FoolingResult:
    """Iterated L2-normalised gradient ascent on the target's score until the target is predicted.

    One jitted ``lax.while_loop``; images already classified as their target stop moving.

    Args:
      logits_fn: ``images -> (N, K)`` class scores (a hashable function: it is a static
        argument of the compiled loop).
      images: ``(N, H, W, C)`` float images.
      targets: the target class of each image (int or ``(N,)`` ints in ``[0, K)``).
      step_size: ``alpha``, the L2 length of each step.
      max_steps: the most steps.
      clip: the valid pixel range ``(low, high)`` to stay in, or None.
      objective: ``'score'`` (ascend ``s_t``), ``'log_prob'`` (ascend ``log softmax(s)_t``) or
        ``'margin'`` (ascend ``s_t - max_{j != t} s_j``).

    Returns:
      A :class:`FoolingResult`.

    Raises:
      ValueError: ``targets: expected class indices in [0, K), ...`` and other bad input.
    """
    images = _checks.check_images("images", images)
    targets = _checks.check_classes("targets", targets, _checks.num_classes_of(logits_fn, images), images.shape[0])
    if objective not in FOOLING_OBJECTIVES:
        raise ValueError(f"objective: expected one of {FOOLING_OBJECTIVES}, got {objective!r}")
    return _fool(
        logits_fn,
        images,
        targets,
        _checks.check_positive("step_size", step_size),
        _checks.check_steps("max_steps", max_steps),
        None if clip is None else tuple(clip),
        objective,
    )


def fgsm(
    logits_fn: _checks.LogitsFn,
    images: ArrayLike,
    labels: ArrayLike,
    *,
    epsilon: float,
    targeted: bool = False,
    clip: tuple[float, float] | None = None,
) -> Array:
    """The fast gradient sign method: one L-inf step of size ``epsilon`` on the softmax loss.

    Args:
      logits_fn: ``images -> (N, K)`` class scores.
      images: ``(N, H, W, C)`` float images.
      labels: the true classes (untargeted: the step raises their loss) or, with
        ``targeted``, the target classes (the step lowers their loss).
      epsilon: the L-inf size of the perturbation.
      targeted: step towards ``labels`` instead of away from them.
      clip: the valid pixel range, or None.

    Returns:
      The perturbed ``(N, H, W, C)`` images.
    """
    images = _checks.check_images("images", images)
    labels = _checks.check_classes("labels", labels, _checks.num_classes_of(logits_fn, images), images.shape[0])
    epsilon = _checks.check_positive("epsilon", epsilon)

    def loss(x):
        return losses.softmax_cross_entropy(logits=logits_fn(x), labels=labels).sum()

    direction = jnp.sign(jax.grad(loss)(images))
    return _checks.clip_to(images + (-epsilon if targeted else epsilon) * direction, clip)
