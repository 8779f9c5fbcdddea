"""Inverted dropout on activations (unit-wise and channel-wise) and DropConnect on weights."""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from jax231.models.layers import _checks
from jax231.types import Array, ArrayLike, PRNGKey


def _drop(
    x: ArrayLike,
    name: str,
    drop_rate: float | ArrayLike,
    rng: Optional[PRNGKey],
    train: bool,
    mask_shape: Optional[tuple[int, ...]] = None,
) -> Array:
    train = _checks.check_static_bool("train", train)
    x = jnp.asarray(x)
    if _checks.is_concrete(drop_rate):
        if jnp.ndim(drop_rate) != 0 or not 0.0 <= float(drop_rate) < 1.0:  # type: ignore[arg-type]
            _checks.fail("drop_rate", "a scalar in [0, 1) (the probability of dropping a unit)", drop_rate)
        if float(drop_rate) == 0.0:  # type: ignore[arg-type]  # concrete scalar
            return x
    if not train:
        return x
    if rng is None:
        _checks.fail("rng", f"a PRNG key when train=True and drop_rate > 0 (dropping `{name}`)", None)
    keep_prob = 1.0 - drop_rate
    # One draw per entry of `mask_shape` (x.shape by default), broadcast over the other axes.
    keep = jax.random.bernoulli(rng, keep_prob, x.shape if mask_shape is None else mask_shape)
    # Multiply by the scale 1/(1 - p) rather than divide: an exactly rounded product,
    # where XLA's vectorised division may differ by an ulp between evaluations.
    scale = jnp.asarray(1.0 / keep_prob, x.dtype)
    return jnp.where(keep, x * scale, jnp.zeros_like(x))


def dropout(x: ArrayLike, *, drop_rate: float | ArrayLike, rng: Optional[PRNGKey], train: bool) -> Array:
    """Inverted dropout: drop units with probability ``drop_rate``, rescale the rest.

    .. math:: y = \\frac{m \\odot x}{1 - p}, \\qquad m_i \\sim \\text{Bernoulli}(1 - p)

    with :math:`p` = ``drop_rate`` (the probability of *dropping*; stax's
    ``Dropout(rate)`` is the keep probability, a known trap). Scaling at
    training time keeps :math:`\\mathbb{E}[y] = x`, so evaluation is the
    identity.

    Args:
      x: activations, any shape.
      drop_rate: :math:`p \\in [0, 1)`. A traced ``drop_rate`` (e.g. under a
        vmapped sweep) is not range-checked.
      rng: PRNG key; may be ``None`` when ``train`` is False or ``drop_rate == 0``.
      train: a Python bool; ``False`` returns ``x`` unchanged.

    Returns:
      Array of the shape and dtype of ``x``.

    Raises:
      ValueError: when ``drop_rate`` is outside ``[0, 1)``, ``rng`` is missing
        at training time, or ``train`` is not a Python bool.

    References:
      Srivastava et al., "Dropout", JMLR 2014; CS231n notes, "Neural Networks
      Part 2", inverted dropout.
    """
    return _drop(x, "x", drop_rate, rng, train)


def drop_connect(w: ArrayLike, *, drop_rate: float | ArrayLike, rng: Optional[PRNGKey], train: bool) -> Array:
    """DropConnect: inverted dropout applied to a *weight* tensor.

    .. math:: \\tilde W = \\frac{M \\odot W}{1 - p}, \\qquad M_{ij} \\sim \\text{Bernoulli}(1 - p)

    Use the result in place of the weights, e.g. ``affine(x, drop_connect(w,
    ...), b)``: each connection (not each activation) is dropped, with one
    mask shared by the whole batch.

    Args:
      w: weights, any shape.
      drop_rate: :math:`p \\in [0, 1)`, the probability of dropping a weight.
      rng: PRNG key; may be ``None`` when ``train`` is False or ``drop_rate == 0``.
      train: a Python bool; ``False`` returns ``w`` unchanged.

    Returns:
      Array of the shape and dtype of ``w``.

    Raises:
      ValueError: as :func:`dropout`.

    References:
      Wan et al., "Regularization of Neural Networks using DropConnect", ICML 2013.
    """
    return _drop(w, "w", drop_rate, rng, train)


def spatial_dropout(x: ArrayLike, *, drop_rate: float | ArrayLike, rng: Optional[PRNGKey], train: bool) -> Array:
    """Spatial (channel) dropout: drop whole feature maps of a convolution.

    .. math:: y_{n,\\ldots,c} = \\frac{m_{n,c}\\, x_{n,\\ldots,c}}{1 - p}, \\qquad
              m_{n,c} \\sim \\text{Bernoulli}(1 - p)

    One mask entry per (example, channel), shared by every spatial position:
    neighbouring pixels of a feature map are strongly correlated, so dropping
    single activations barely regularises a convolution, while dropping whole
    channels does. Equals ``flax.linen.Dropout(p, broadcast_dims=(1, ..., d))``.

    Args:
      x: feature maps ``(N, *spatial, C)`` with at least one spatial axis.
      drop_rate: :math:`p \\in [0, 1)`, the probability of dropping a channel.
      rng: PRNG key; may be ``None`` when ``train`` is False or ``drop_rate == 0``.
      train: a Python bool; ``False`` returns ``x`` unchanged.

    Returns:
      Array of the shape and dtype of ``x``.

    Raises:
      ValueError: as :func:`dropout`, or when ``x`` has rank < 3.

    References:
      Tompson et al., "Efficient Object Localization Using Convolutional
      Networks", CVPR 2015 (SpatialDropout).
    """
    _checks.check_min_rank("x", x, 3, layout="(N, *spatial, C)")
    shape = jnp.shape(x)
    mask_shape = (shape[0],) + (1,) * (len(shape) - 2) + (shape[-1],)
    return _drop(x, "x", drop_rate, rng, train, mask_shape)
