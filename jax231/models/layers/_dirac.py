"""Identity ("Dirac") initialisation of convolution filters."""

from __future__ import annotations

import jax.numpy as jnp

from jax231.models.layers import _checks
from jax231.types import Array, ArrayLike


def dirac(w: ArrayLike) -> Array:
    """``w`` with its first ``min(C_in, C_out)`` output filters replaced by the identity.

    .. math:: w_{u,v,c,o} = [u = \\lfloor F_h/2 \\rfloor][v = \\lfloor F_w/2 \\rfloor][c = o]
              \\quad (o < \\min(C_\\text{in}, C_\\text{out}))

    so that, with ``'same'`` padding, output channel ``o < C_in`` of the
    convolution starts as input channel ``o`` (a residual-like path through a
    plain network); the other output filters keep their random values.
    airbench's ``torch.nn.init.dirac_(w[:C_in])`` after PyTorch's default init.

    Args:
      w: HWIO filters ``(F_h, F_w, C_in, C_out)`` (odd sizes keep the centre exact).

    Returns:
      The filters, same shape and dtype.

    Raises:
      ValueError: when ``w`` is not rank 4.

    References:
      Zagoruyko & Komodakis, "DiracNets", 2017; K. Jordan, airbench, 2024.
    """
    _checks.check_rank("w", w, 4, layout="(F_h, F_w, C_in, C_out)")
    w = jnp.asarray(w)
    fh, fw, c_in, c_out = w.shape
    k = min(c_in, c_out)
    identity = jnp.zeros((fh, fw, c_in, k), w.dtype).at[fh // 2, fw // 2, jnp.arange(k), jnp.arange(k)].set(1)
    return w.at[..., :k].set(identity)
