"""The GAN game's losses: the discriminator's cross-entropy and the two generator objectives.

With :math:`D(x) = \\sigma(l(x))` the discriminator's probability that ``x`` is
real and :math:`G(z)` the generator, the minimax game of Goodfellow et al. is

.. math::
    \\min_G \\max_D \\; \\mathbb{E}_{x}[\\log D(x)] + \\mathbb{E}_{z}[\\log(1 - D(G(z)))].

The discriminator minimises the binary cross-entropy of real (target 1, or
:math:`1 - \\alpha` with one-sided label smoothing :math:`\\alpha`) against fake
(target 0) examples. The generator either minimises :math:`\\log(1 - D(G(z)))`
(``'minimax'``, the game as written) or maximises :math:`\\log D(G(z))`
(``'non_saturating'``). Both have the same fixed point, but early in training
:math:`D(G(z)) \\approx 0` and the minimax gradient
:math:`\\partial_l \\log(1 - \\sigma(l)) = -\\sigma(l) \\to 0` vanishes, whereas
the non-saturating one, :math:`\\partial_l (-\\log \\sigma(l)) = -(1 - \\sigma(l))
\\to -1`, stays large (the notes' argument; tested).

All losses are per example ``(N,)`` from logits (numerically stable softplus forms:
:math:`-\\log\\sigma(l) = \\mathrm{softplus}(-l)`, :math:`-\\log(1 - \\sigma(l)) = \\mathrm{softplus}(l)`).

References:
  Goodfellow et al., "Generative Adversarial Nets", 2014, section 3;
  Salimans et al., "Improved Techniques for Training GANs", 2016 (one-sided label smoothing);
  CS231n lecture 13 and assignment 3.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jax231.types import Array, ArrayLike

__all__ = ["GENERATOR_LOSSES", "discriminator_loss", "generator_loss"]

GENERATOR_LOSSES = ("minimax", "non_saturating")


def discriminator_loss(*, real_logits: ArrayLike, fake_logits: ArrayLike, label_smoothing: float = 0.0) -> Array:
    """Per-example discriminator loss, one real and one fake example per row.

    .. math::
        -(1 - \\alpha) \\log D(x) - \\alpha \\log(1 - D(x)) - \\log(1 - D(G(z)))

    with :math:`\\alpha` = ``label_smoothing`` (one-sided: only the real targets move).

    Args:
      real_logits: :math:`l(x)` of real examples, ``(N,)`` or ``(N, 1)``.
      fake_logits: :math:`l(G(z))`, same shape.
      label_smoothing: :math:`\\alpha \\in [0, 1)`.

    Returns:
      ``(N,)`` losses.

    Raises:
      ValueError: ``label_smoothing`` outside ``[0, 1)`` or mismatched shapes.
    """
    if not 0.0 <= float(label_smoothing) < 1.0:
        raise ValueError(f"label_smoothing: expected a float in [0, 1), got {label_smoothing!r}")
    real, fake = _flat("real_logits", real_logits), _flat("fake_logits", fake_logits)
    if real.shape != fake.shape:
        raise ValueError(f"fake_logits: expected the shape of real_logits {real.shape}, got {fake.shape}")
    target = 1.0 - label_smoothing
    real_loss = target * jax.nn.softplus(-real) + (1.0 - target) * jax.nn.softplus(real)
    return real_loss + jax.nn.softplus(fake)


def generator_loss(*, fake_logits: ArrayLike, kind: str = "non_saturating") -> Array:
    """Per-example generator loss: ``'minimax'`` :math:`\\log(1 - D(G(z)))` or ``'non_saturating'`` :math:`-\\log D(G(z))`.

    Args:
      fake_logits: :math:`l(G(z))`, ``(N,)`` or ``(N, 1)``.
      kind: one of :data:`GENERATOR_LOSSES`.

    Returns:
      ``(N,)`` losses (the minimax one is negative: :math:`\\log(1 - D) = -\\mathrm{softplus}(l)`).

    Raises:
      ValueError: an unknown ``kind``.
    """
    if kind not in GENERATOR_LOSSES:
        raise ValueError(f"kind: expected one of {list(GENERATOR_LOSSES)}, got {kind!r}")
    fake = _flat("fake_logits", fake_logits)
    return -jax.nn.softplus(fake) if kind == "minimax" else jax.nn.softplus(-fake)


def _flat(name: str, logits: ArrayLike) -> Array:
    logits = jnp.asarray(logits)
    if logits.ndim == 2 and logits.shape[1] == 1:
        return logits[:, 0]
    if logits.ndim != 1:
        raise ValueError(f"{name}: expected one logit per example, (N,) or (N, 1), got shape {logits.shape}")
    return logits
