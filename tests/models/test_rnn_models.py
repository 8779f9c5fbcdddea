"""Recurrent models: classifiers vs float64 NumPy loops, the char LM, sampling and truncated BPTT."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import parameterized

from jax231 import models
from jax231.models import RNN_CELLS as CELLS
from tests import test_utils


def key(seed: int) -> jax.Array:
    # 'rbg' keys compile much faster than threefry on XLA:CPU (see tests/models/test_models.key).
    return jax.random.key(seed, impl="rbg")


# --- float64 NumPy transcriptions of the cells (course formulas, gate orders i,f,o,g / r,z,n). --


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def np_last_hidden(cell, p, xs):
    p = {k: np.asarray(v, np.float64) for k, v in p.items()}
    n, t, _ = xs.shape
    hidden = p["wh"].shape[0]
    h = np.zeros((n, hidden))
    c = np.zeros((n, hidden))
    for step in range(t):
        x = xs[:, step]
        if cell == "rnn":
            h = np.tanh(x @ p["wx"] + h @ p["wh"] + p["b"])
        elif cell == "lstm":
            a = x @ p["wx"] + h @ p["wh"] + p["b"]
            i, f, o, g = np.split(a, 4, axis=1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
        else:
            ax = x @ p["wx"] + p["bx"]
            ah = h @ p["wh"] + p["bh"]
            r = _sigmoid(ax[:, :hidden] + ah[:, :hidden])
            z = _sigmoid(ax[:, hidden : 2 * hidden] + ah[:, hidden : 2 * hidden])
            m = np.tanh(ax[:, 2 * hidden :] + r * ah[:, 2 * hidden :])
            h = (1 - z) * m + z * h
    return h


class ClassifierTest(parameterized.TestCase):
    @parameterized.parameters("rnn", "lstm", "gru")
    def test_scores_equal_a_float64_numpy_loop(self, cell):
        with test_utils.x64():
            model = models.get(cell, hidden_dim=5, num_classes=3)
            params, state = model.init(key(0), (7, 2))
            params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
            # Non-zero biases so that every bias term is exercised.
            params["cell"] = {k: v + 0.1 * (k[0] == "b") for k, v in params["cell"].items()}
            xs = np.random.default_rng(0).normal(size=(4, 7, 2))
            logits, new_state = model.apply(params, state, xs, train=False)
            h = np_last_hidden(cell, params["cell"], xs)
            ref = h @ np.asarray(params["head"]["w"]) + np.asarray(params["head"]["b"])
            # float64 on both sides: only round-off differences remain.
            assert test_utils.rel_error(logits, ref) < 1e-10
            assert new_state == {}

    def test_lstm_forget_bias_is_configurable(self):
        params, _ = models.lstm_classifier(hidden_dim=3, forget_bias=1.0).init(key(0), (5, 2))
        np.testing.assert_array_equal(params["cell"]["b"], [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])


# --- Character-level language model. -------------------------------------------------------

TEXT = "hello world " * 8
VOCAB = sorted(set(TEXT))
ENCODE = {ch: i for i, ch in enumerate(VOCAB)}


def encode(text: str) -> jnp.ndarray:
    return jnp.asarray([ENCODE[c] for c in text], jnp.int32)


@pytest.mark.parametrize("cell", CELLS)
def test_apply_carries_the_state_across_calls(cell):
    lm = models.char_lm(vocab_size=len(VOCAB), hidden_dim=8, embed_dim=4, cell=cell)
    params = lm.init(key(0))
    tokens = encode(TEXT[:24]).reshape(2, 12)
    logits, carry = lm.apply(params, tokens)
    chex.assert_shape(logits, (2, 12, len(VOCAB)))
    first, carry_mid = lm.apply(params, tokens[:, :5])
    second, carry_end = lm.apply(params, tokens[:, 5:], carry_mid)
    # 1e-6: same float32 operations, split into two scans.
    chex.assert_trees_all_close(jnp.concatenate([first, second], axis=1), logits, rtol=1e-6, atol=1e-6)
    chex.assert_trees_all_close(carry_end, carry, rtol=1e-6, atol=1e-6)


def test_loss_is_the_mean_cross_entropy_and_stops_gradients_at_the_carry():
    lm = models.char_lm(vocab_size=len(VOCAB), hidden_dim=8, embed_dim=4, cell="lstm")
    params = lm.init(key(0))
    tokens = encode(TEXT[:26]).reshape(2, 13)
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    carry = jax.tree.map(lambda a: a + 0.3, lm.initial_carry(2))
    loss, new_carry = lm.loss(params, inputs, targets, carry)
    logits, ref_carry = lm.apply(params, inputs, carry)
    ref = optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()
    chex.assert_trees_all_close(loss, ref, rtol=1e-6)  # two float32 log-softmax implementations
    chex.assert_trees_all_close(new_carry, ref_carry)
    grad_carry = jax.grad(lambda c: lm.loss(params, inputs, targets, c)[0])(carry)
    chex.assert_trees_all_equal(grad_carry, jax.tree.map(jnp.zeros_like, carry))


def test_truncated_bptt_equals_manual_chunked_steps():
    # Reference: optax steps taken by hand, chunk after chunk, the state carried forward.
    lm = models.char_lm(vocab_size=len(VOCAB), hidden_dim=8, embed_dim=4, cell="gru")
    params = lm.init(key(1))
    tokens = encode(TEXT[: 2 * 25]).reshape(2, 25)  # 24 predictions -> 3 chunks of 7, 3 dropped
    opt = optax.adam(1e-2)
    new_params, _, losses = jax.jit(lambda p, s, t: models.train_tbptt(lm, opt, p, s, t, chunk_length=7))(
        params, opt.init(params), tokens
    )
    chex.assert_shape(losses, (3,))
    p, s, carry = params, opt.init(params), lm.initial_carry(2)
    loss_and_grad = jax.jit(jax.value_and_grad(lm.loss, has_aux=True))
    for k in range(3):
        x, y = tokens[:, 7 * k : 7 * k + 7], tokens[:, 7 * k + 1 : 7 * k + 8]
        (loss, carry), g = loss_and_grad(p, x, y, carry)
        chex.assert_trees_all_close(losses[k], loss, rtol=1e-5)
        u, s = opt.update(g, s, p)
        p = optax.apply_updates(p, u)
    # 1e-5: scanned vs unrolled float32 programs.
    chex.assert_trees_all_close(new_params, p, rtol=1e-5, atol=1e-5)


def test_char_lm_learns_a_repeated_phrase_and_greedy_sampling_continues_it():
    lm = models.char_lm(vocab_size=len(VOCAB), hidden_dim=32, embed_dim=8, cell="lstm")
    params = lm.init(key(0))
    tokens = jnp.stack([encode(TEXT[3 * k : 3 * k + 24]) for k in range(4)])  # four phases of the phrase
    opt = optax.adam(3e-2)
    epoch = jax.jit(lambda p, s: models.train_tbptt(lm, opt, p, s, tokens, chunk_length=8))
    state = opt.init(params)
    first = None
    for _ in range(60):
        params, state, losses = epoch(params, state)
        first = losses[0] if first is None else first
    assert float(losses.mean()) < 0.2 * float(first), (first, losses)
    # Temperature 1e-3 is greedy decoding: the phrase continues after its prefix.
    out = lm.sample(params, key(0), encode("hello wo"), 10, temperature=1e-3)
    assert "".join(VOCAB[int(i)] for i in out) == "rld hello "


def test_sampling_is_deterministic_per_seed_and_greedy_at_low_temperature():
    lm = models.char_lm(vocab_size=len(VOCAB), hidden_dim=8, embed_dim=4, cell="rnn")
    params = lm.init(key(2))
    prefix = encode("hel")
    sample = jax.jit(lambda k, t: lm.sample(params, k, prefix, 12, temperature=t))
    a, b = sample(key(5), 1.0), sample(key(5), 1.0)
    chex.assert_shape(a, (12,))
    np.testing.assert_array_equal(a, b)
    assert int(a.min()) >= 0 and int(a.max()) < len(VOCAB)
    # Greedy reference: argmax of the logits, fed back one token at a time.
    logits, carry = lm.apply(params, prefix[None])
    greedy = []
    for _ in range(12):
        token = jnp.argmax(logits[:, -1], axis=-1)
        greedy.append(int(token[0]))
        logits, carry = lm.apply(params, token[:, None], carry)
    np.testing.assert_array_equal(sample(key(7), 1e-4), greedy)
    # High temperature: samples from near-uniform, so different seeds disagree.
    hot = [sample(key(s), 100.0) for s in range(3)]
    assert not all(np.array_equal(hot[0], h) for h in hot[1:])


def test_char_lm_bad_input_raises():
    lm = models.char_lm(vocab_size=5, hidden_dim=4, embed_dim=3)
    params = lm.init(key(0))
    with pytest.raises(ValueError, match="temperature: expected a number > 0"):
        lm.sample(params, key(0), jnp.array([1]), 3, temperature=0.0)
    with pytest.raises(ValueError, match="prefix: expected a non-empty"):
        lm.sample(params, key(0), jnp.zeros((0,), jnp.int32), 3)
    with pytest.raises(ValueError, match=r"tokens: expected an integer array \(N, T\)"):
        lm.apply(params, jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match="L >= chunk_length \\+ 1"):
        models.train_tbptt(lm, optax.sgd(0.1), params, None, jnp.zeros((2, 4), jnp.int32), chunk_length=4)
    with pytest.raises(ValueError, match=r"cell: expected one of 'rnn', 'lstm', 'gru'"):
        models.char_lm(vocab_size=5, cell="transformer")
