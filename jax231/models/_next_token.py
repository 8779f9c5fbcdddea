"""The character-level language model as a many-to-one classifier: the next token of a window.

The training core (``fit``, ``run_sweep``) trains ``Model(init, apply)`` pairs on
``{'image', 'label'}`` arrays with one integer label per example. A language model
fits that contract when an example is a window of ``T`` tokens (``image``: int
``(N, T)``) and its label is the token that follows the window (``label``: ``(N,)``):
:func:`next_token_rnn` is :func:`jax231.models.char_lm` read at its last position,
with the same parameters (``{'embed', 'cell' or 'cells', 'head'}``), so a model
trained here samples with ``char_lm(...).sample``.
"""

from __future__ import annotations

from typing import Optional

import jax.numpy as jnp

from jax231.models import _helpers, _model
from jax231.models._rnn import char_lm
from jax231.types import Array, ArrayLike, ModelState, Params, PRNGKey, Shape

__all__ = ["next_token_rnn"]


def next_token_rnn(
    *,
    vocab_size: int,
    hidden_dim: int = 128,
    embed_dim: int = 32,
    cell: str = "lstm",
    init: str = "xavier",
    num_layers: int = 1,
    num_classes: Optional[int] = None,
) -> _model.Model:
    """Scores of the token after each window: the last logits of :func:`char_lm`.

    .. math::  e_t = E[x_t], \\quad h_t = \\mathrm{cell}(h_{t-1}, e_t), \\quad
               s = h_T W + b \\in \\mathbb{R}^V, \\qquad h_0 = 0

    so the softmax cross-entropy of ``s`` against the label is the language model's
    next-token loss :math:`-\\log p(x_{T+1} \\mid x_{\\le T})` at the window's end.

    Args:
      vocab_size: number of tokens ``V`` (also the number of classes).
      hidden_dim: hidden size ``H``.
      embed_dim: embedding size ``E``.
      cell: ``'rnn'``, ``'lstm'`` or ``'gru'``.
      init: initializer name of the embedding and weights (biases are zero).
      num_layers: number of stacked recurrent layers.
      num_classes: accepted for the uniform model API; must equal ``vocab_size`` when given.

    Returns:
      ``Model(init, apply)`` taking integer tokens ``x`` of shape ``(N, T)`` and
      returning ``(N, V)`` scores; no state, deterministic.

    Raises:
      ValueError: for the arguments :func:`char_lm` refuses, a ``num_classes``
        other than ``vocab_size``, an input shape that is not ``(T,)``, or tokens
        that are not an integer ``(N, T)`` array.
    """
    if num_classes is not None and num_classes != vocab_size:
        _helpers.fail("num_classes", f"the vocabulary size {vocab_size} (the classes are the next tokens)", num_classes)
    lm = char_lm(
        vocab_size=vocab_size, hidden_dim=hidden_dim, embed_dim=embed_dim, cell=cell, init=init, num_layers=num_layers
    )

    def init_fn(rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]:
        _helpers.check_input_shape("next_token_rnn", input_shape, rank=1, layout="(T,)")
        return lm.init(rng), {}

    def apply_fn(
        params: Params, state: ModelState, x: ArrayLike, *, train: bool, rng: Optional[PRNGKey] = None
    ) -> tuple[Array, ModelState]:
        del train, rng  # deterministic model
        logits, _ = lm.apply(params, jnp.asarray(x))  # (N, T, V); char_lm checks the tokens
        return logits[:, -1], state

    return _model.Model(init_fn, apply_fn)
