"""Normalisation layers: batch (1-D and spatial), layer and group normalisation."""

from __future__ import annotations

from functools import partial
from typing import Optional

import jax
import jax.numpy as jnp
from jax import lax

from jax231.models.layers import _checks
from jax231.types import Array, ArrayLike


def _check_channel_param(name: str, value: ArrayLike, channels: int) -> None:
    _checks.check_shape(name, value, (channels,), why="one value per channel, the last axis of `x`")


BATCH_NORM_IMPLS = ("auto", "autodiff", "fused")
"""Training-mode implementations of :func:`batch_norm`: ``'autodiff'`` (JAX differentiates the
forward formula), ``'fused'`` (one-read statistics and the closed-form backward below) and ``'auto'``
(``'fused'`` unless the statistics are synchronised across devices with ``axis_name``)."""


def _batch_stats(x: Array) -> tuple[Array, Array]:
    """Biased statistics over every axis but the last from one read of ``x``: ``(mean, var)``.

    .. math:: \\mu = \\overline{x}, \\qquad \\sigma^2 = \\max(\\overline{x^2} - \\mu^2, 0)

    (flax.linen's ``use_fast_variance``). The two sums reduce ``x`` itself, so
    XLA:CPU hands both to YNNPACK's reduction with the square fused in; the
    two-pass form ``mean((x - mu)^2)`` made it write ``x - mu`` out as one more
    activation-sized array and read it back (13.8 of ~267 thread-ms of the
    preset's train step for the 128x32x32x32 layer, one-core trace). Its rounding
    error grows with :math:`(\\mu/\\sigma)^2` -- small for the outputs of a
    convolution that feeds batch norm; ``impl='autodiff'`` keeps the two-pass form.
    """
    axes = tuple(range(x.ndim - 1))
    mean = jnp.mean(x, axis=axes)
    mean_sq = jnp.mean(jnp.square(x), axis=axes)
    return mean, jnp.maximum(mean_sq - jnp.square(mean), 0.0)


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def _batch_norm_fused(x: Array, gamma: Array, beta: Array, eps: float) -> tuple[Array, Array, Array]:
    mean, var = _batch_stats(x)
    scale = lax.rsqrt(var + eps) * gamma
    return x * scale + (beta - mean * scale), mean, var


def _batch_norm_fused_fwd(x: Array, gamma: Array, beta: Array, eps: float):
    mean, var = _batch_stats(x)
    inv_std = lax.rsqrt(var + eps)
    scale = inv_std * gamma
    # Residuals: x itself (alive anyway as the convolution's output), not x_hat.
    return (x * scale + (beta - mean * scale), mean, var), (x, mean, inv_std, gamma)


def _batch_norm_fused_bwd(eps: float, residuals, cotangents):
    r"""The closed-form batch-norm backward of the course (assignment 2, ``batchnorm_backward_alt``).

    With :math:`m` examples per channel, :math:`\hat x = (x - \mu)/\sigma`:

    .. math::
        \frac{\partial L}{\partial \beta} = \sum dy, \quad
        \frac{\partial L}{\partial \gamma} = \sum dy\,\hat x, \quad
        \frac{\partial L}{\partial x} = \frac{\gamma}{m\sigma}\Big(m\,dy - \sum dy
        - \hat x \sum dy\,\hat x\Big),

    two reductions and one elementwise pass, where autodiff of the forward
    formula makes several passes over the activation; :math:`\hat x` is recomputed
    from :math:`x` where it is needed, and :math:`\sum dy\,\hat x = (\sum dy\,x -
    \mu \sum dy)/\sigma`, so both sums read the arrays as they are. The cotangents of the
    returned batch mean and variance (zero in training, where they only feed
    the running averages) are added exactly: :math:`d\mu/m` and
    :math:`2\,d\sigma^2 (x - \mu)/m`.
    """
    x, mean, inv_std, gamma = residuals
    dy, d_mean, d_var = cotangents
    axes = tuple(range(dy.ndim - 1))
    m = dy.size // dy.shape[-1]
    d_beta = jnp.sum(dy, axis=axes)
    # sum(dy * x_hat) = (sum(dy * x) - mu * sum(dy)) / sigma: both sums read dy and x as they are.
    d_gamma = (jnp.sum(dy * x, axis=axes) - mean * d_beta) * inv_std
    x_hat = (x - mean) * inv_std
    dx = (gamma * inv_std / m) * (m * dy - d_beta - x_hat * d_gamma)
    dx = dx + d_mean / m + (2.0 / m) * d_var * (x - mean)
    return dx, d_gamma, d_beta


_batch_norm_fused.defvjp(_batch_norm_fused_fwd, _batch_norm_fused_bwd)


def batch_norm(
    x: ArrayLike,
    gamma: ArrayLike,
    beta: ArrayLike,
    running_mean: ArrayLike,
    running_var: ArrayLike,
    *,
    train: bool,
    momentum: float = 0.9,
    eps: float = 1e-5,
    axis_name: Optional[str] = None,
    impl: str = "auto",
) -> tuple[Array, Array, Array]:
    """Batch normalisation over every axis but the last (the channels).

    Training (``train=True``), with :math:`B` all the axes but the last:

    .. math::
        \\mu = \\frac{1}{|B|}\\sum_B x, \\qquad
        \\sigma^2 = \\frac{1}{|B|}\\sum_B (x - \\mu)^2 \\quad\\text{(biased)},

        y = \\gamma \\frac{x - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}} + \\beta,

        \\hat\\mu \\leftarrow m\\,\\hat\\mu + (1 - m)\\,\\mu, \\qquad
        \\hat\\sigma^2 \\leftarrow m\\,\\hat\\sigma^2 + (1 - m)\\,\\sigma^2,

    with :math:`\\gamma` = ``gamma``, :math:`\\beta` = ``beta``, :math:`m` =
    ``momentum``, :math:`\\epsilon` = ``eps`` and :math:`\\hat\\mu,
    \\hat\\sigma^2` = ``running_mean``, ``running_var``. The running variance
    averages the *biased* batch variance, as ``flax.linen.BatchNorm`` and the
    course's ``batchnorm_forward`` do (PyTorch uses the unbiased one).

    Evaluation (``train=False``): :math:`y = \\gamma (x - \\hat\\mu) /
    \\sqrt{\\hat\\sigma^2 + \\epsilon} + \\beta`; the running statistics are
    returned unchanged.

    For ``x`` of shape ``(N, D)`` this is the 1-D batch norm; for ``(N, H, W,
    C)`` it is spatial batch norm (statistics per channel over N, H, W).

    Args:
      x: inputs, shape ``(..., C)`` of rank >= 2.
      gamma: scale, shape ``(C,)``.
      beta: shift, shape ``(C,)``.
      running_mean: running mean, shape ``(C,)``.
      running_var: running variance, shape ``(C,)``.
      train: a Python bool: batch statistics (True) or running ones (False).
      momentum: :math:`m`, the weight of the old running statistics.
      eps: :math:`\\epsilon`, added to the variance.
      axis_name: when given (inside ``pmap`` / ``shard_map``), the batch mean
        and variance are averaged over that mapped axis with ``lax.pmean``
        (synchronised batch norm; exact when every device holds as many
        examples).
      impl: ``'autodiff'``, ``'fused'`` or ``'auto'`` (see
        :data:`BATCH_NORM_IMPLS`); the same values up to float32 rounding.
        ``'fused'`` takes the variance as :math:`\\overline{x^2} - \\mu^2` from
        one read of ``x`` (``'autodiff'``: the two-pass form) and supplies the
        closed-form backward; with the reshape max pool it made the preset's
        batch norm -> ReLU -> pool stage 7x cheaper forward + backward than
        autodiff + ``reduce_window`` on a 128x32x32x32 activation (26 vs 191 ms,
        ``python -m benchmarks.bench_cnn --layers``, loaded 2-core machine), and
        the whole VGG train step 164 -> 134-143 CPU ms on one core. It is not
        available with ``axis_name`` (``'auto'`` then differentiates).

    Returns:
      ``(y, new_running_mean, new_running_var)``; ``y`` has the shape of ``x``.

    Raises:
      ValueError: when ``x`` has rank < 2, a per-channel argument is not
        ``(C,)``, ``train`` is not a Python bool, or ``impl`` is unknown
        (or ``'fused'`` with ``axis_name``).

    References:
      Ioffe & Szegedy, "Batch Normalization", 2015; CS231n assignment 2.
    """
    _checks.check_min_rank("x", x, 2, layout="(N, ..., C)")
    train = _checks.check_static_bool("train", train)
    x = jnp.asarray(x)
    channels = x.shape[-1]
    for name, value in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean), ("running_var", running_var)):
        _check_channel_param(name, value, channels)
    if impl not in BATCH_NORM_IMPLS:
        raise ValueError(f"impl: expected one of {', '.join(BATCH_NORM_IMPLS)}, got {impl!r}")
    if impl == "fused" and axis_name is not None:
        raise ValueError(
            f"impl: 'fused' cannot synchronise statistics over axis_name={axis_name!r}; expected 'auto' or 'autodiff'"
        )
    if not train:
        y = (x - running_mean) * lax.rsqrt(running_var + eps) * gamma + beta
        return y, jnp.asarray(running_mean), jnp.asarray(running_var)
    if axis_name is None and impl != "autodiff":
        y, mean, var = _batch_norm_fused(x, jnp.asarray(gamma), jnp.asarray(beta), eps)
        return (
            y,
            jnp.asarray(momentum * running_mean + (1.0 - momentum) * mean),
            jnp.asarray(momentum * running_var + (1.0 - momentum) * var),
        )
    axes = tuple(range(x.ndim - 1))
    # 1. Batch mean (averaged across devices for synchronised BN).
    mean = jnp.mean(x, axis=axes)
    if axis_name is not None:
        mean = lax.pmean(mean, axis_name)
    # 2. Biased batch variance, two-pass for accuracy.
    centred = x - mean
    var = jnp.mean(jnp.square(centred), axis=axes)
    if axis_name is not None:
        var = lax.pmean(var, axis_name)
    # 3. Normalise, scale and shift.
    y = centred * lax.rsqrt(var + eps) * gamma + beta
    # 4. Exponential moving averages of the statistics.
    new_mean = momentum * running_mean + (1.0 - momentum) * mean
    new_var = momentum * running_var + (1.0 - momentum) * var
    return y, jnp.asarray(new_mean), jnp.asarray(new_var)


def spatial_batch_norm(
    x: ArrayLike,
    gamma: ArrayLike,
    beta: ArrayLike,
    running_mean: ArrayLike,
    running_var: ArrayLike,
    *,
    train: bool,
    momentum: float = 0.9,
    eps: float = 1e-5,
    axis_name: Optional[str] = None,
) -> tuple[Array, Array, Array]:
    """Spatial batch normalisation: :func:`batch_norm` per channel over N, H, W.

    Same formula and arguments as :func:`batch_norm`, but ``x`` must be
    ``(N, H, W, C)``.

    Raises:
      ValueError: when ``x`` is not rank 4, or as :func:`batch_norm`.
    """
    _checks.check_rank("x", x, 4, layout="(N, H, W, C)")
    return batch_norm(
        x, gamma, beta, running_mean, running_var, train=train, momentum=momentum, eps=eps, axis_name=axis_name
    )


def layer_norm(x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, *, eps: float = 1e-5) -> Array:
    """Layer normalisation over the last axis of each example.

    .. math::
        \\mu = \\frac{1}{C}\\sum_c x_c, \\quad \\sigma^2 = \\frac{1}{C}\\sum_c (x_c - \\mu)^2,
        \\quad y = \\gamma \\frac{x - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}} + \\beta

    (``flax.linen.LayerNorm`` with its default reduction over the last axis).
    No running statistics: training and evaluation are the same.

    Args:
      x: inputs, shape ``(..., C)``.
      gamma: scale, shape ``(C,)``.
      beta: shift, shape ``(C,)``.
      eps: :math:`\\epsilon`.

    Returns:
      Shape of ``x``.

    References:
      Ba, Kiros & Hinton, "Layer Normalization", 2016.
    """
    _checks.check_min_rank("x", x, 1, layout="(..., C)")
    x = jnp.asarray(x)
    _check_channel_param("gamma", gamma, x.shape[-1])
    _check_channel_param("beta", beta, x.shape[-1])
    mean = jnp.mean(x, axis=-1, keepdims=True)
    centred = x - mean
    var = jnp.mean(jnp.square(centred), axis=-1, keepdims=True)
    return centred * lax.rsqrt(var + eps) * gamma + beta


def group_norm(x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, *, num_groups: int, eps: float = 1e-5) -> Array:
    """Group normalisation: channels split into ``num_groups`` groups of ``C/G``.

    For every example and group :math:`g`, with :math:`S_g` the spatial
    positions times the channels of the group:

    .. math::
        \\mu_g = \\frac{1}{|S_g|}\\sum_{S_g} x, \\quad
        \\sigma_g^2 = \\frac{1}{|S_g|}\\sum_{S_g} (x - \\mu_g)^2, \\quad
        y = \\gamma \\frac{x - \\mu_g}{\\sqrt{\\sigma_g^2 + \\epsilon}} + \\beta

    (``flax.linen.GroupNorm``: ``num_groups = 1`` is layer norm over all
    non-batch axes, ``num_groups = C`` is instance norm).

    Args:
      x: inputs, shape ``(N, ..., C)``.
      gamma: scale, shape ``(C,)``.
      beta: shift, shape ``(C,)``.
      num_groups: :math:`G`, which must divide ``C``.
      eps: :math:`\\epsilon`.

    Returns:
      Shape of ``x``.

    Raises:
      ValueError: when ``num_groups`` does not divide ``C``, or on shapes.

    References:
      Wu & He, "Group Normalization", 2018 (CS231n assignment 2).
    """
    _checks.check_min_rank("x", x, 2, layout="(N, ..., C)")
    num_groups = _checks.check_positive_int("num_groups", num_groups)
    x = jnp.asarray(x)
    channels = x.shape[-1]
    if channels % num_groups != 0:
        _checks.fail("num_groups", f"a divisor of the {channels} channels of `x` (shape {x.shape})", num_groups)
    _check_channel_param("gamma", gamma, channels)
    _check_channel_param("beta", beta, channels)
    grouped = x.reshape(x.shape[:-1] + (num_groups, channels // num_groups))
    axes = tuple(range(1, x.ndim - 1)) + (x.ndim,)  # spatial axes and channels-in-group
    mean = jnp.mean(grouped, axis=axes, keepdims=True)
    centred = grouped - mean
    var = jnp.mean(jnp.square(centred), axis=axes, keepdims=True)
    normalised = (centred * lax.rsqrt(var + eps)).reshape(x.shape)
    return normalised * gamma + beta
