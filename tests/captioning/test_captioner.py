"""The captioner: teacher-forced loss vs a NumPy float64 transcription, sampling, training, bad input.

References: the forward pass (conv3x3 -> ReLU -> max-pool encoder, LSTM / RNN decoder, soft
attention) and the summed cross-entropy are transcribed in float64 NumPy below, from the
equations of ``jax231/models/_captioner.py``; greedy decoding is the limit temperature -> 0 of
sampling (issue 14's reference).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jax231 import captioning, models, optimizers

SHAPE, VOCAB, LENGTH = (4, 4, 1), 7, 5


def _tiny(**kwargs):
    options = {
        "image_shape": SHAPE,
        "vocab_size": VOCAB,
        "max_length": LENGTH,
        "widths": (3,),
        "embed_dim": 3,
        "hidden_dim": 4,
        "attention_dim": 2,
    }
    return models.captioner(**{**options, **kwargs})


def _np_tree(tree):
    return jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), tree)


def _np_encode(p, images):
    x = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))
    w, b = p["encoder"]["conv0"]["w"], p["encoder"]["conv0"]["b"]
    n, h, wd = images.shape[:3]
    y = np.zeros((n, h, wd, w.shape[-1]))
    for i in range(h):
        for j in range(wd):
            y[:, i, j] = np.einsum("nuvc,uvco->no", x[:, i : i + 3, j : j + 3], w) + b
    y = np.maximum(y, 0.0)
    y = y.reshape(n, h // 2, 2, wd // 2, 2, -1).max(axis=(2, 4))
    return y.reshape(n, -1, y.shape[-1])


def _np_loss(p, images, captions, *, cell, attention):
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))
    a = _np_encode(p, images)
    if "positions" in p:
        a = a + p["positions"]
    summary = a.mean(1) if attention else a.reshape(a.shape[0], -1)
    h = summary @ p["init_h"]["w"] + p["init_h"]["b"]
    c = np.zeros_like(h)
    total = np.zeros(len(images))
    for t in range(captions.shape[1] - 1):
        x = p["embed"][captions[:, t]]
        if attention:
            q = p["attention"]
            e = np.tanh(a @ q["wa"]["w"] + q["wa"]["b"] + (h @ q["wh"])[:, None]) @ q["v"]
            alpha = np.exp(e - e.max(1, keepdims=True))
            alpha /= alpha.sum(1, keepdims=True)
            z = (alpha[:, :, None] * a).sum(1)
            x = np.concatenate([x, z], 1)
        pre = x @ p["cell"]["wx"] + h @ p["cell"]["wh"] + p["cell"]["b"]
        if cell == "lstm":
            i, f, o, g = np.split(pre, 4, axis=1)
            c = sig(f) * c + sig(i) * np.tanh(g)
            h = sig(o) * np.tanh(c)
        else:
            h = np.tanh(pre)
        out = np.concatenate([h, z], 1) if attention else h
        s = out @ p["output"]["w"] + p["output"]["b"]
        logp = s - s.max(1, keepdims=True) - np.log(np.exp(s - s.max(1, keepdims=True)).sum(1, keepdims=True))
        target = captions[:, t + 1]
        total += np.where(target != 0, -logp[np.arange(len(target)), target], 0.0)
    return total


@pytest.mark.parametrize(
    "cell,attention,positions",
    [("lstm", False, False), ("lstm", True, False), ("rnn", True, False), ("lstm", True, True)],
)
def test_teacher_forced_loss_matches_numpy_float64(cell, attention, positions):
    model = _tiny(cell=cell, attention=attention, positions=positions)
    params = model.init(jax.random.PRNGKey(0))
    params["init_h"]["b"] = params["init_h"]["b"] + 0.3  # non-zero biases exercise every term
    params["output"]["b"] = params["output"]["b"] - 0.2
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(3,) + SHAPE).astype(np.float32)
    captions = np.array([[1, 3, 4, 2, 0], [1, 5, 2, 0, 0], [1, 6, 6, 3, 2]], np.int32)
    got = np.asarray(model.loss(params, images, captions))
    want = _np_loss(_np_tree(params), images.astype(np.float64), captions, cell=cell, attention=attention)
    # float32 forward pass of O(1) values through ~10 layers: relative error ~1e-6; 1e-5 leaves margin.
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert got[1] != pytest.approx(want[0])  # the pad mask matters: the examples differ


def test_encoder_classifier_matches_numpy_and_initialises_the_captioner():
    classifier = models.encoder_classifier(image_shape=SHAPE, widths=(3,), num_classes=5)
    params, state = classifier.init(jax.random.PRNGKey(3), SHAPE)
    params["head"]["b"] = params["head"]["b"] + 0.1
    images = np.random.default_rng(3).uniform(size=(4,) + SHAPE).astype(np.float32)
    logits, _ = classifier.apply(params, state, images, train=False)
    p = _np_tree(params)
    want = _np_encode(p, images.astype(np.float64)).max(axis=1) @ p["head"]["w"] + p["head"]["b"]
    np.testing.assert_allclose(np.asarray(logits), want, rtol=1e-5, atol=1e-6)  # float32 vs float64, one conv
    model = _tiny(attention=True)
    fresh = model.init(jax.random.PRNGKey(4))
    assert jax.tree_util.tree_structure(fresh["encoder"]) == jax.tree_util.tree_structure(params["encoder"])
    assert jax.tree_util.tree_map(np.shape, fresh["encoder"]) == jax.tree_util.tree_map(np.shape, params["encoder"])


@pytest.mark.parametrize("attention", [False, True])
def test_temperature_to_zero_equals_greedy(attention):
    model = _tiny(attention=attention, hidden_dim=8)
    params = model.init(jax.random.PRNGKey(1))
    params["output"]["w"] = 4.0 * params["output"]["w"]  # spread the scores: sampling at T = 1 varies
    images = np.random.default_rng(1).uniform(size=(64,) + SHAPE).astype(np.float32)
    greedy = model.sample(params, images)
    cold = model.sample(params, images, temperature=1e-6, rng=jax.random.PRNGKey(2))
    warm = model.sample(params, images, temperature=1.0, rng=jax.random.PRNGKey(2))
    np.testing.assert_array_equal(cold.tokens, greedy.tokens)
    assert np.any(np.asarray(warm.tokens) != np.asarray(greedy.tokens))
    assert greedy.tokens.shape == (64, LENGTH) and np.all(np.asarray(greedy.tokens[:, 0]) == 1)
    np.testing.assert_allclose(np.asarray(greedy.attention).sum(-1), 1.0, rtol=1e-5)
    # After <end> (id 2) only <pad> (id 0) follows.
    tokens = np.asarray(greedy.tokens)
    for row in tokens:
        ends = np.nonzero(row == 2)[0]
        if len(ends):
            assert np.all(row[ends[0] + 1 :] == 0)


def test_training_reduces_the_loss_and_is_reproducible():
    model = _tiny(attention=True)
    rng = np.random.default_rng(2)
    data = {
        "image": rng.uniform(size=(16,) + SHAPE).astype(np.float32),
        "caption": np.tile(np.array([[1, 3, 4, 2, 0]], np.int32), (16, 1)),
    }
    optimizer = optimizers.adam(3e-2)  # one instance: the compiled chunk is cached on (loss, optimizer)
    run = lambda: captioning.train_captioner(model, optimizer, data, num_steps=20, batch_size=8, eval_every=10)
    first, second = run(), run()
    initial = model.loss(model.init(jax.random.split(jax.random.PRNGKey(0))[0]), data["image"], data["caption"])
    final = model.loss(first.params, data["image"], data["caption"])
    assert float(final.mean()) < 0.5 * float(initial.mean())
    for a, b in zip(jax.tree_util.tree_leaves(first.params), jax.tree_util.tree_leaves(second.params)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda m, p, x: m.sample(p, x, temperature=0.0, rng=jax.random.PRNGKey(0)), "temperature"),
        (lambda m, p, x: m.sample(p, x, temperature=-1.0, rng=jax.random.PRNGKey(0)), "temperature"),
        (lambda m, p, x: m.sample(p, x[:, :2]), "images"),
        (lambda m, p, x: m.loss(p, x[..., 0], np.ones((2, 5), np.int32)), "images"),
        (lambda m, p, x: _tiny(hidden_dim=0), "hidden_dim"),
        (lambda m, p, x: _tiny(embed_dim=0), "embed_dim"),
        (lambda m, p, x: _tiny(image_shape=(5, 5, 1)), "image_shape"),
        (lambda m, p, x: models.encoder_classifier(image_shape=(5, 5, 1), widths=(3,), num_classes=2), "image_shape"),
        (lambda m, p, x: models.encoder_classifier(image_shape=SHAPE, widths=(3,), num_classes=0), "num_classes"),
    ],
)
def test_bad_input_one_line_value_error(call, name):
    model = _tiny()
    params = model.init(jax.random.PRNGKey(0))
    with pytest.raises(ValueError) as err:
        call(model, params, np.zeros((2,) + SHAPE, np.float32))
    assert str(err.value).startswith(f"{name}: expected") and "\n" not in str(err.value)
