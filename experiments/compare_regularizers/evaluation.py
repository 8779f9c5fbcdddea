"""Test-time variants of a trained net: test-time augmentation and Monte-Carlo averaging.

A variant does not train anything: it evaluates the members of an arm that
trains the same way (same model, optimizer, penalty, hook) by the mean softmax
of several forward passes instead of one (:mod:`jax231.models`' test-time
functions):

* ``tta``: deterministic views, crops of the zero-padded image and mirrors
  (:func:`jax231.models.tta_predict`), :math:`\\bar p = \\frac1V \\sum_v
  \\mathrm{softmax}(f(T_v x))`;
* ``mc_dropout``: ``T`` passes in train mode with independent dropout masks
  (:func:`jax231.models.mc_dropout_predict`);
* ``mc_regions``: ``T`` passes in eval mode with independent keys, i.e. new
  pooling regions of fractional max pooling (:func:`jax231.models.mc_predict`),
  Graham's marginalisation over region draws.

The Monte-Carlo kinds also give the spread: the standard deviation over the
``T`` passes of the probability of the predicted class, reported separately for
correctly and wrongly classified examples (an uncertainty that is larger on the
wrong ones is informative).

Keys: the passes of seed ``s`` use ``fold_in(PRNGKey(s), TEST_TIME_FOLD)``,
a key that no training stream uses (``jax231.training.run_keys`` splits
``PRNGKey(s)`` and folds in 1).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp

from jax231 import models

KINDS = ("tta", "mc_dropout", "mc_regions")
"""The test-time variants (see the module docstring)."""

TEST_TIME_FOLD = 2
"""The passes' key of seed ``s``: ``fold_in(PRNGKey(s), TEST_TIME_FOLD)``."""


class Variant(NamedTuple):
    """How a variant evaluates a trained net.

    Attributes:
      kind: one of :data:`KINDS`.
      num_samples: ``T``, passes of the Monte-Carlo kinds (ignored by ``tta``).
      flip: ``tta``: add mirrored views.
      crops: ``tta``: 1 or 5 crops of the padded image.
      pad: ``tta``: zero padding before cropping.
    """

    kind: str
    num_samples: int = 1
    flip: bool = True
    crops: int = 5
    pad: int = 4

    def describe(self) -> str:
        """A short label for the report, e.g. ``'TTA 5 crops (pad 1)'`` or ``'MC dropout, T = 20'``."""
        if self.kind == "tta":
            views = f"{self.crops} crop{'s' if self.crops > 1 else ''} (pad {self.pad})"
            return f"TTA {views}{' + mirrors' if self.flip else ''}"
        what = "MC dropout" if self.kind == "mc_dropout" else "mean over pooling-region draws"
        return f"{what}, T = {self.num_samples}"


def check(variant: Variant) -> Variant:
    """``variant`` if its kind is known and ``T >= 1``; a ``ValueError`` naming the field otherwise."""
    if variant.kind not in KINDS:
        raise ValueError(f"variant.kind: expected one of {list(KINDS)}, got {variant.kind!r}")
    if variant.kind != "tta" and (isinstance(variant.num_samples, bool) or variant.num_samples < 1):
        raise ValueError(f"num_samples: expected an int >= 1 (the number T of passes), got {variant.num_samples!r}")
    return variant


def member_probabilities(
    model: models.Model, variant: Variant, params: Any, state: Any, x: jax.Array, key: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """One member's ``(mean, std)`` class probabilities ``(N, C)`` over the passes (std 0 for TTA)."""
    if variant.kind == "tta":
        mean = models.tta_predict(
            lambda v: model.apply(params, state, v, train=False)[0],
            x,
            flip=variant.flip,
            crops=variant.crops,
            pad=variant.pad,
        )
        return mean, jnp.zeros_like(mean)
    if variant.kind == "mc_dropout":
        pred = models.mc_dropout_predict(model, params, state, x, rng=key, num_samples=variant.num_samples)
    else:
        pred = models.mc_predict(
            lambda k: model.apply(params, state, x, train=False, rng=k)[0], key, num_samples=variant.num_samples
        )
    return pred.mean, pred.std


def test_time_metrics(
    model: models.Model, variant: Variant, params: Any, model_state: Any, data: Mapping[str, jax.Array], key: jax.Array
) -> dict[str, jax.Array]:
    """Loss, accuracy and spread of the averaged prediction of stacked members.

    .. math:: \\bar p = \\frac1K \\sum_k \\bar p_k,\\qquad L = -\\frac1N \\sum_i \\log \\bar p(y_i|x_i)

    with :math:`\\bar p_k` member ``k``'s mean over the passes
    (:func:`member_probabilities`); the spread is the members' mean std of the
    predicted class's probability, averaged over the right (``spread_right``) and
    the wrong (``spread_wrong``; NaN when there are none) examples.

    Args:
      model: the members' model.
      variant: the variant.
      params: member parameters stacked on a leading axis ``K``.
      model_state: member states stacked the same way.
      data: ``{'image', 'label'}``.
      key: key of the passes (shared by the members).

    Returns:
      ``{'loss', 'accuracy', 'spread_right', 'spread_wrong'}`` scalars.
    """
    means, stds = jax.vmap(functools.partial(member_probabilities, model, variant), in_axes=(0, 0, None, None))(
        params, model_state, data["image"], key
    )
    probs, spread = jnp.mean(means, axis=0), jnp.mean(stds, axis=0)
    labels = data["label"]
    p_true = jnp.take_along_axis(probs, labels[:, None], axis=-1)[:, 0]
    loss = -jnp.mean(jnp.log(jnp.maximum(p_true, jnp.finfo(probs.dtype).tiny)))
    predicted = jnp.argmax(probs, axis=-1)
    right = predicted == labels
    spread_pred = jnp.take_along_axis(spread, predicted[:, None], axis=-1)[:, 0]

    def mean_where(mask: jax.Array) -> jax.Array:
        count = jnp.sum(mask)
        return jnp.where(count > 0, jnp.sum(spread_pred * mask) / jnp.maximum(count, 1), jnp.nan)

    return {
        "loss": loss,
        "accuracy": jnp.mean(right.astype(jnp.float32)),
        "spread_right": mean_where(right),
        "spread_wrong": mean_where(~right),
    }


@functools.lru_cache(maxsize=32)
def compiled(model: models.Model, variant: Variant) -> Callable[..., dict[str, jax.Array]]:
    """Jitted :func:`test_time_metrics` of ``(model, variant)``, compiled once per process."""
    return jax.jit(functools.partial(test_time_metrics, model, check(variant)))


def key_of(seed: int) -> jax.Array:
    """The passes' key of seed ``seed`` (see :data:`TEST_TIME_FOLD`)."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), TEST_TIME_FOLD)
