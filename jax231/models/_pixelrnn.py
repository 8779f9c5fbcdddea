"""PixelRNN, raster-scan variant: the character-level LSTM language model over pixels.

The image is read as a sequence of ``D = H W C`` tokens in raster order (the
intensity levels ``0 .. K-1``), preceded by a start token ``K``; the LSTM of
:func:`jax231.models.char_lm` (embedding, LSTM, affine head over ``K + 1``
tokens) predicts token ``t`` from tokens ``< t``:

.. math::
    h_t = \\mathrm{LSTM}(h_{t-1}, E[x_{t-1}]), \\qquad
    p(x_t \\mid x_{<t}) = \\mathrm{softmax}\\big((h_t W + b)_{0..K-1}\\big),

the start token's score dropped, so each factor is a distribution over the
``K`` levels and the likelihood is exact. This is the simplest PixelRNN (one
LSTM over the flattened image); the paper's Row LSTM and Diagonal BiLSTM add
2-D structure to the recurrence.

References:
  van den Oord et al., "Pixel Recurrent Neural Networks", ICML 2016;
  CS231n lecture 13, "Generative Models" (PixelRNN).
"""

from __future__ import annotations

import jax.numpy as jnp

from jax231.models import _generative_checks as checks
from jax231.models._autoregressive import (
    AutoregressiveModel,
    from_logits,
    to_levels,
)
from jax231.models._rnn import char_lm
from jax231.types import Array, ArrayLike, Params, PRNGKey, Shape

__all__ = ["pixel_rnn"]


def pixel_rnn(*, levels: int, hidden_dim: int = 128, embed_dim: int = 32) -> AutoregressiveModel:
    """A raster-scan LSTM image model (see the module docstring).

    Params: those of ``char_lm(vocab_size=levels + 1)``:
    ``{'embed': (K + 1, E), 'cell': {'wx', 'wh', 'b'}, 'head': {'w': (H, K + 1), 'b'}}``.

    Args:
      levels: ``K``.
      hidden_dim: LSTM hidden size ``H``.
      embed_dim: token embedding size ``E``.

    Returns:
      An :class:`AutoregressiveModel`.

    Raises:
      ValueError: ``levels`` < 2 or non-positive sizes.
    """
    levels = checks.check_levels(levels)
    checks.check_positive_int("hidden_dim", hidden_dim)
    checks.check_positive_int("embed_dim", embed_dim)
    lm = char_lm(vocab_size=levels + 1, hidden_dim=hidden_dim, embed_dim=embed_dim, cell="lstm")

    def init_fn(rng: PRNGKey, input_shape: Shape) -> Params:
        shape = tuple(input_shape)
        if len(shape) != 3 or any(int(s) < 1 for s in shape):
            raise ValueError(f"input_shape: expected (H, W, C) without the batch axis, got {shape!r}")
        return lm.init(rng)

    def logits_fn(params: Params, x: ArrayLike) -> Array:
        x = jnp.asarray(x)
        if x.ndim != 4:
            raise ValueError(f"x: expected images (N, H, W, C), got shape {x.shape}")
        tokens = to_levels(x, levels).reshape(x.shape[0], -1)  # (N, D), raster order
        start = jnp.full((x.shape[0], 1), levels, jnp.int32)
        inputs = jnp.concatenate([start, tokens[:, :-1]], axis=1)  # shift right by one
        scores, _ = lm.apply(params, inputs)  # (N, D, K + 1)
        return scores[..., :levels].reshape(*x.shape, levels)

    return from_logits(init_fn, logits_fn, levels)
