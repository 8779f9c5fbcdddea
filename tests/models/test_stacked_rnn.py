"""Stacked (multi-layer) RNN/LSTM/GRU against flax.linen and float64 NumPy; gradient clipping in TBPTT."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jax231 import models, optimizers

N, T, D, H, C, LAYERS = 3, 6, 4, 5, 7, 3


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _np_step(cell, p, carry, x):
    """The cells' formulas (layers._recurrent docstrings) in float64."""
    if cell == "rnn":
        return np.tanh(x @ p["wx"] + carry @ p["wh"] + p["b"])
    if cell == "lstm":
        h, c = carry
        a = x @ p["wx"] + h @ p["wh"] + p["b"]
        i, f, o, g = (
            _sigmoid(a[:, :H]),
            _sigmoid(a[:, H : 2 * H]),
            _sigmoid(a[:, 2 * H : 3 * H]),
            np.tanh(a[:, 3 * H :]),
        )
        c = f * c + i * g
        return o * np.tanh(c), c
    ax, ah = x @ p["wx"] + p["bx"], carry @ p["wh"] + p["bh"]
    r, z = _sigmoid(ax[:, :H] + ah[:, :H]), _sigmoid(ax[:, H : 2 * H] + ah[:, H : 2 * H])
    n = np.tanh(ax[:, 2 * H :] + r * ah[:, 2 * H :])
    return (1 - z) * n + z * carry


def _np_stacked_classifier(cell, params, xs):
    hs = np.asarray(xs, np.float64)
    for layer in range(LAYERS):
        p = {k: np.asarray(v, np.float64) for k, v in params["cells"][f"layer_{layer}"].items()}
        carry = (np.zeros((N, H)), np.zeros((N, H))) if cell == "lstm" else np.zeros((N, H))
        outs = []
        for t in range(T):
            carry = _np_step(cell, p, carry, hs[:, t])
            outs.append(carry[0] if cell == "lstm" else carry)
        hs = np.stack(outs, axis=1)
    return hs[:, -1] @ np.asarray(params["head"]["w"], np.float64) + np.asarray(params["head"]["b"], np.float64)


def _randomised(params, seed=0):
    """Nonzero biases (init_rnn's are zero, which would hide a bias bug)."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree_util.tree_unflatten(
        treedef, [v + 0.3 * jax.random.normal(k, v.shape) for v, k in zip(leaves, keys)]
    )


FACTORIES = {"rnn": models.rnn_classifier, "lstm": models.lstm_classifier, "gru": models.gru_classifier}


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_stacked_classifier_matches_a_float64_numpy_transcription(cell):
    model = FACTORIES[cell](hidden_dim=H, num_classes=C, num_layers=LAYERS)
    params, state = model.init(jax.random.key(0), (T, D))
    params = _randomised(params)
    xs = jax.random.normal(jax.random.key(1), (N, T, D))
    logits, _ = jax.jit(lambda p, x: model.apply(p, state, x, train=False))(params, xs)
    # float32 through 3 layers x 6 steps of O(1) values against float64.
    np.testing.assert_allclose(logits, _np_stacked_classifier(cell, params, xs), rtol=1e-4, atol=1e-5)
    gates, biases = {"rnn": (1, 1), "lstm": (4, 1), "gru": (3, 2)}[cell]
    expected = gates * (D * H + H * H + biases * H) + (LAYERS - 1) * gates * (2 * H * H + biases * H) + H * C + C
    assert models.count_params(params) == expected


class FlaxStackedLSTM(nn.Module):
    @nn.compact
    def __call__(self, xs):
        for layer in range(LAYERS):
            xs = nn.RNN(nn.LSTMCell(H, name=f"cell_{layer}"))(xs)
        return nn.Dense(C, name="head")(xs[:, -1])


def _to_flax_lstm(p):
    def split(a):  # our gate order: i, f, o, g
        return dict(zip("ifog", np.split(np.asarray(a), 4, axis=-1)))

    wx, wh, b = split(p["wx"]), split(p["wh"]), split(p["b"])
    cell = {f"i{g}": {"kernel": wx[g]} for g in "ifgo"}
    cell.update({f"h{g}": {"kernel": wh[g], "bias": b[g]} for g in "ifgo"})
    return cell


def test_stacked_lstm_classifier_matches_flax_stacked_rnn():
    model = models.lstm_classifier(hidden_dim=H, num_classes=C, num_layers=LAYERS)
    params, state = model.init(jax.random.key(2), (T, D))
    params = _randomised(params, seed=3)
    xs = jax.random.normal(jax.random.key(4), (N, T, D))
    flax_params = {f"cell_{i}": _to_flax_lstm(params["cells"][f"layer_{i}"]) for i in range(LAYERS)}
    flax_params["head"] = {"kernel": params["head"]["w"], "bias": params["head"]["b"]}
    ref = FlaxStackedLSTM().apply({"params": flax_params}, xs)
    ours, _ = model.apply(params, state, xs, train=False)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_stacked_char_lm_carries_every_layer_across_calls(cell):
    lm = models.char_lm(vocab_size=9, hidden_dim=6, embed_dim=4, cell=cell, num_layers=2)
    params = _randomised(lm.init(jax.random.key(0)))
    tokens = jax.random.randint(jax.random.key(1), (2, 10), 0, 9)
    whole, _ = lm.apply(params, tokens)
    first, carry = lm.apply(params, tokens[:, :4])
    rest, _ = lm.apply(params, tokens[:, 4:], carry)
    np.testing.assert_allclose(jnp.concatenate([first, rest], axis=1), whole, rtol=1e-5, atol=1e-6)
    assert len(carry) == 2  # one carry per layer
    assert lm.sample(params, jax.random.key(2), jnp.array([1, 2]), 5).shape == (5,)


@pytest.mark.parametrize("max_grad_norm", [0.05, 1e6])
def test_train_tbptt_clips_each_chunk_gradient_by_its_global_norm(max_grad_norm):
    lm = models.char_lm(vocab_size=9, hidden_dim=6, embed_dim=4, cell="lstm", num_layers=2)
    params = lm.init(jax.random.key(0))
    tokens = jax.random.randint(jax.random.key(1), (2, 6), 0, 9)  # one chunk of 5
    opt = optimizers.sgd(0.5)
    new, _, losses = models.train_tbptt(
        lm, opt, params, opt.init(params), tokens, chunk_length=5, max_grad_norm=max_grad_norm
    )
    grads = jax.grad(lambda p: lm.loss(p, tokens[:, :5], tokens[:, 1:], lm.initial_carry(2))[0])(params)
    clipped, _ = optax.clip_by_global_norm(max_grad_norm).update(grads, optax.EmptyState())
    expected = jax.tree_util.tree_map(lambda p, g: p - 0.5 * g, params, clipped)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), new, expected)
    assert losses.shape == (1,)
    if max_grad_norm < 1:  # the clip was active: the step is shorter than the raw gradient's
        assert float(optax.tree.norm(grads)) > max_grad_norm


def test_stacking_and_clipping_bad_input():
    with pytest.raises(ValueError, match="num_layers"):
        models.lstm_classifier(num_layers=0)
    lm = models.char_lm(vocab_size=5, hidden_dim=4, embed_dim=3)
    params = lm.init(jax.random.key(0))
    opt = optimizers.sgd(0.1)
    with pytest.raises(ValueError, match=r"^max_grad_norm: expected a value > 0 or None, got 0.0$"):
        models.train_tbptt(
            lm, opt, params, opt.init(params), jnp.zeros((1, 8), jnp.int32), chunk_length=4, max_grad_norm=0.0
        )
