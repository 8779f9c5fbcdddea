"""next_token_rnn: the char LM read at the end of each window, with the same parameters."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import models


@pytest.mark.parametrize("cell, num_layers", [("lstm", 1), ("gru", 2)])
def test_logits_are_char_lm_logits_at_the_last_position(cell, num_layers):
    model = models.get(
        "next_token_rnn", vocab_size=11, hidden_dim=8, embed_dim=5, cell=cell, num_layers=num_layers, num_classes=11
    )
    params, state = model.init(jax.random.key(3), (6,))
    lm = models.char_lm(vocab_size=11, hidden_dim=8, embed_dim=5, cell=cell, num_layers=num_layers)
    # Same layout, same initialisation as the language model itself.
    chex_tree = jax.tree_util.tree_structure(lm.init(jax.random.key(3)))
    assert jax.tree_util.tree_structure(params) == chex_tree
    tokens = jnp.asarray(np.random.RandomState(0).randint(0, 11, (4, 6)), jnp.int32)
    logits, new_state = model.apply(params, state, tokens, train=True)
    reference, _ = lm.apply(params, tokens)
    np.testing.assert_array_equal(logits, reference[:, -1])
    assert logits.shape == (4, 11) and new_state == {}


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="num_classes"):
        models.next_token_rnn(vocab_size=5, num_classes=10)
    model = models.next_token_rnn(vocab_size=5)
    with pytest.raises(ValueError, match="input_shape"):
        model.init(jax.random.key(0), (6, 1))
    params, state = model.init(jax.random.key(0), (6,))
    with pytest.raises(ValueError, match="tokens"):
        model.apply(params, state, jnp.ones((2, 6)), train=False)
