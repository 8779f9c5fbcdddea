"""Fractional max pooling (Graham 2014): random pooling regions for a non-integer ratio."""

from __future__ import annotations

import math
import numbers
from typing import Optional, Sequence, Union

import jax
import jax.numpy as jnp

from jax231.models.layers import _checks
from jax231.types import Array, ArrayLike, PRNGKey

Ratio = Union[float, Sequence[float]]


def _check_ratio(ratio: Ratio) -> tuple[float, float]:
    """``(r_h, r_w)``, each a float > 1 (a scalar applies to both axes)."""
    values = tuple(ratio) if isinstance(ratio, (tuple, list)) else (ratio, ratio)
    ok = len(values) == 2 and all(
        isinstance(r, numbers.Real) and not isinstance(r, bool) and math.isfinite(r) and r > 1  # type: ignore[operator]  # Real has no __gt__ stub
        for r in values
    )
    if not ok:
        raise ValueError(f"ratio: expected a float > 1 or a pair of them (the size reduction), got {ratio!r}")
    return float(values[0]), float(values[1])


def fractional_output_size(size: int, ratio: float) -> int:
    """Output size :math:`N_\\text{out} = \\lfloor N_\\text{in} / \\alpha \\rfloor` (TensorFlow's rule).

    Raises:
      ValueError: when the ratio is <= 1 or leaves no output.
    """
    alpha = _check_ratio(ratio)[0]
    out = int(size // alpha)
    if out < 1:
        raise ValueError(f"ratio: expected at most the input size {size} (one output at least), got {ratio!r}")
    return out


def pooling_boundaries(rng: PRNGKey, size: int, out_size: int, *, pseudo_random: bool = True) -> Array:
    """Boundaries :math:`0 = a_0 < a_1 < \\dots < a_{N_\\text{out}} = N_\\text{in}` of the pooling regions.

    With :math:`\\alpha = N_\\text{in} / N_\\text{out}` every increment
    :math:`a_i - a_{i-1}` is :math:`\\lfloor\\alpha\\rfloor` or
    :math:`\\lceil\\alpha\\rceil`:

    * pseudo-random (``pseudo_random=True``): :math:`a_i = \\lceil \\alpha (i + u)
      \\rceil - \\lceil \\alpha u \\rceil`, :math:`u \\sim U(0, 1)`;
    * random: the :math:`N_\\text{in} \\bmod N_\\text{out}` larger increments
      placed by a uniformly random permutation.

    Args:
      rng: PRNG key of the draw.
      size: input size :math:`N_\\text{in}`.
      out_size: output size :math:`N_\\text{out}` in ``[1, N_in]``.
      pseudo_random: which of the two sequences of Graham (2014).

    Returns:
      int32 array of shape ``(out_size + 1,)``.
    """
    q, r = divmod(size, out_size)
    if pseudo_random:
        alpha = size / out_size
        u = jax.random.uniform(rng, ())
        i = jnp.arange(out_size + 1)
        a = jnp.ceil(alpha * (i + u)) - jnp.ceil(alpha * u)
        # a_N = N_in exactly; clip guards the float rounding of alpha * (N + u).
        return jnp.clip(a, 0, size).astype(jnp.int32).at[-1].set(size)
    larger = jax.random.permutation(rng, out_size) < r
    increments = q + larger.astype(jnp.int32)
    return jnp.concatenate([jnp.zeros((1,), jnp.int32), jnp.cumsum(increments, dtype=jnp.int32)])


def _max_over_regions(x: Array, boundaries: Array, axis: int, *, overlapping: bool, max_len: int) -> Array:
    """Max of ``x`` along ``axis`` over ``[a_i, a_{i+1})`` (or ``[a_i, a_{i+1}]`` when overlapping)."""
    starts = boundaries[:-1]
    ends = boundaries[1:] + (1 if overlapping else 0)
    ends = jnp.minimum(ends, x.shape[axis])
    # Gather max_len rows per region; rows past the region's end repeat its last row (max unchanged).
    idx = jnp.minimum(starts[:, None] + jnp.arange(max_len)[None, :], ends[:, None] - 1)
    return jnp.max(jnp.take(x, idx, axis=axis), axis=axis + 1)


def max_pool_regions(
    x: ArrayLike, row_boundaries: ArrayLike, col_boundaries: ArrayLike, *, overlapping: bool = True
) -> Array:
    """Max pooling over the rectangular regions given by two boundary sequences.

    .. math:: y_{n,i,j,c} = \\max_{a_i \\le u < a_{i+1}\\ (\\le),\\; b_j \\le v < b_{j+1}\\ (\\le)} x_{n,u,v,c}

    with the upper bounds inclusive when ``overlapping`` (neighbouring regions
    share their border row/column; the last one is clipped to the image), as
    ``tf.nn.fractional_max_pool``'s ``row_pooling_sequence`` /
    ``col_pooling_sequence``.

    Args:
      x: images ``(N, H, W, C)``.
      row_boundaries: int ``(H_out + 1,)``, increasing from 0 to ``H``.
      col_boundaries: int ``(W_out + 1,)``, increasing from 0 to ``W``.
      overlapping: share region borders.

    Returns:
      ``(N, H_out, W_out, C)``.
    """
    _checks.check_rank("x", x, 4, layout="(N, H, W, C)")
    x = jnp.asarray(x)
    rows, cols = jnp.asarray(row_boundaries, jnp.int32), jnp.asarray(col_boundaries, jnp.int32)
    for name, b, size in (("row_boundaries", rows, x.shape[1]), ("col_boundaries", cols, x.shape[2])):
        if b.ndim != 1 or b.shape[0] < 2 or b.shape[0] > size + 1:
            raise ValueError(f"{name}: expected shape (out + 1,) with 1 <= out <= {size}, got {b.shape}")
    extra = 2 if overlapping else 1

    def widest(b: Array, size: int) -> int:
        # Static bound on a region's length: ceil(N_in / N_out) + 1 covers every sequence here.
        return min(size, -(-size // (b.shape[0] - 1)) + extra)

    h = _max_over_regions(x, rows, 1, overlapping=overlapping, max_len=widest(rows, x.shape[1]))
    return _max_over_regions(h, cols, 2, overlapping=overlapping, max_len=widest(cols, x.shape[2]))


def fractional_max_pool(
    x: ArrayLike,
    *,
    ratio: Ratio = math.sqrt(2),
    rng: Optional[PRNGKey],
    pseudo_random: bool = True,
    overlapping: bool = True,
) -> Array:
    """Fractional max pooling: shrink ``H x W`` by a non-integer ``ratio`` with random regions.

    The output is :math:`\\lfloor H / \\alpha \\rfloor \\times \\lfloor W / \\alpha
    \\rfloor` (``alpha = ratio``, e.g. :math:`\\sqrt 2`, so a stack of such layers
    shrinks the image more gently than 2x2 pooling). Each call draws new
    regions (:func:`pooling_boundaries`, shared by the batch, as TensorFlow)
    and takes the max over each (:func:`max_pool_regions`). Regions are random
    at test time too: Graham marginalises them by averaging the predictions of
    several draws (e.g. :func:`jax231.models.mc_predict` over rngs), or fixes
    one draw (a fixed key) for a deterministic network.

    Args:
      x: images ``(N, H, W, C)``.
      ratio: :math:`\\alpha > 1`, a float or ``(alpha_h, alpha_w)``.
      rng: PRNG key of the region draw (required, at train and test time).
      pseudo_random: pseudo-random (True) or random (False) sequences.
      overlapping: regions share borders (Graham's best results).

    Returns:
      ``(N, floor(H / alpha_h), floor(W / alpha_w), C)``.

    Raises:
      ValueError: when ``ratio`` is not > 1 (or leaves no output), ``rng`` is
        None, or ``x`` is not rank 4.

    References:
      Graham, "Fractional Max-Pooling", arXiv:1412.6071, 2014;
      ``tf.nn.fractional_max_pool``.
    """
    r_h, r_w = _check_ratio(ratio)
    _checks.check_rank("x", x, 4, layout="(N, H, W, C)")
    if rng is None:
        raise ValueError("rng: expected a PRNG key (the pooling regions are random), got None")
    _, height, width, _ = jnp.shape(x)
    k_rows, k_cols = jax.random.split(rng)
    rows = pooling_boundaries(k_rows, height, fractional_output_size(height, r_h), pseudo_random=pseudo_random)
    cols = pooling_boundaries(k_cols, width, fractional_output_size(width, r_w), pseudo_random=pseudo_random)
    return max_pool_regions(x, rows, cols, overlapping=overlapping)
