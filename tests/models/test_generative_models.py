"""Generative models of jax231.models: masked convolutions, PixelCNN/PixelRNN, VAE, autoencoder."""

from __future__ import annotations

import functools
import itertools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jax231 import models
from jax231.models import _autoregressive


def _numpy_masked_conv(x, w, b, mask_type, colors):
    """Float64 transcription: zero-pad F//2, then y[n,i,j,o] = b[o] + sum_{u,v,c} x[n,i+u,j+v,c] w[u,v,c,o] m[u,v,c,o]."""
    x, w, b = (np.asarray(a, np.float64) for a in (x, w, b))
    f, _, c_in, c_out = w.shape
    c = f // 2
    group_in = (np.arange(c_in) * colors) // c_in
    group_out = (np.arange(c_out) * colors) // c_out
    mask = np.zeros(w.shape)
    for u, v in itertools.product(range(f), range(f)):
        if u < c or (u == c and v < c):
            mask[u, v] = 1.0
        elif u == c and v == c:
            for i, o in itertools.product(range(c_in), range(c_out)):
                ok = group_in[i] < group_out[o] if mask_type == "A" else group_in[i] <= group_out[o]
                mask[u, v, i, o] = float(ok)
    xp = np.pad(x, ((0, 0), (c, c), (c, c), (0, 0)))
    n, h, wd, _ = x.shape
    y = np.zeros((n, h, wd, c_out))
    for i, j in itertools.product(range(h), range(wd)):
        patch = xp[:, i : i + f, j : j + f, :]
        y[:, i, j, :] = np.einsum("nuvc,uvco->no", patch, w * mask) + b
    return y


@pytest.mark.parametrize(
    "mask_type,colors,c_in,c_out", [("A", 1, 1, 4), ("B", 1, 4, 4), ("A", 3, 3, 6), ("B", 3, 6, 9)]
)
def test_masked_conv_matches_float64_transcription(mask_type, colors, c_in, c_out):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 6, c_in))
    w = rng.normal(size=(3, 3, c_in, c_out))
    b = rng.normal(size=(c_out,))
    got = models.masked_conv2d(
        jnp.asarray(x, jnp.float32),
        jnp.asarray(w, jnp.float32),
        jnp.asarray(b, jnp.float32),
        mask_type=mask_type,
        colors=colors,
    )
    # float32 sums of 3*3*9 = 81 products of O(1) terms: absolute error well under 1e-4.
    np.testing.assert_allclose(got, _numpy_masked_conv(x, w, b, mask_type, colors), atol=1e-4)


def _raster_dependence(logits_fn, shape):
    """(D, D) matrix: entry (i, j) is |d sum(logits at i) / d x_j| for a random image (``jax.jacrev``)."""
    x = jax.random.uniform(jax.random.key(1), (1, *shape))
    num_dims = math.prod(shape)
    jacobian = jax.jit(jax.jacrev(lambda x: jnp.sum(logits_fn(x).reshape(num_dims, -1), axis=-1)))(x)
    return np.abs(np.asarray(jacobian).reshape(num_dims, num_dims))


def _single_layer(mask_type, colors):
    w = jax.random.normal(jax.random.key(0), (3, 3, colors, 2 * colors))
    return lambda x: models.masked_conv2d(x, w, None, mask_type=mask_type, colors=colors)


@pytest.mark.parametrize("mask_type,colors", [("A", 1), ("B", 1), ("A", 3), ("B", 3)])
def test_masked_conv_autoregressive_property(mask_type, colors):
    # Output channel block c of pixel p (raster index p * colors + c) must not see inputs after it;
    # type A also hides the input of its own index, type B shows it.
    shape = (4, 4, colors)
    w_layer = _single_layer(mask_type, colors)
    grads = _raster_dependence(lambda x: w_layer(x).reshape(1, 4, 4, colors, 2), shape)
    d = grads.shape[0]
    i, j = np.meshgrid(np.arange(d), np.arange(d), indexing="ij")
    hidden = j >= i if mask_type == "A" else j > i
    assert np.all(grads[hidden] == 0.0)
    # ...and they do see something: the left neighbour in the same row for every pixel with one.
    left = [(p * colors, (p - 1) * colors) for p in range(1, 16) if p % 4 != 0]
    assert all(grads[a, b] > 0 for a, b in left)
    if mask_type == "B":
        assert np.all(np.diag(grads) > 0)


@pytest.mark.parametrize(
    "factory,shape",
    [
        (lambda: models.pixel_cnn(levels=5, features=6, num_layers=2, first_window=3, head_features=6), (4, 4, 1)),
        (lambda: models.pixel_cnn(levels=4, features=6, num_layers=1, first_window=3, head_features=6), (3, 3, 3)),
        (lambda: models.pixel_rnn(levels=5, hidden_dim=8, embed_dim=4), (3, 4, 1)),
    ],
)
def test_models_are_autoregressive_by_grad(factory, shape):
    model = factory()
    params = model.init(jax.random.key(0), shape)
    if "embed" in params:
        # PixelRNN reads integer levels (gradient zero everywhere); differentiate through the embedding instead.
        logits_fn = jax.jit(lambda x: model.logits(params, x))
        x = jax.random.uniform(jax.random.key(1), (1, *shape))
        base = model.logits(params, x)
        d = math.prod(shape)
        for j in range(d):  # changing pixel j changes no output at i <= j, and changes some output later
            k = _autoregressive.to_levels(x, 5).reshape(d)
            k2 = k.at[j].set((k[j] + 2) % 5).reshape(1, *shape) / 4.0
            delta = jnp.abs(logits_fn(k2) - base).reshape(d, -1).max(axis=1)
            assert np.all(np.asarray(delta[: j + 1]) == 0.0), j
            if j < d - 1:
                assert float(delta[j + 1 :].max()) > 0
        return
    grads = _raster_dependence(lambda x: model.logits(params, x), shape)
    i, j = np.meshgrid(np.arange(grads.shape[0]), np.arange(grads.shape[0]), indexing="ij")
    assert np.all(grads[j >= i] == 0.0)
    # ...and the earlier pixels do matter (a ReLU may be inactive at this input for a few of them).
    assert np.mean(grads[j < i] > 0) > 0.5


def test_conv_impls_compute_the_same_pixel_cnn_and_gan():
    """``conv_impl`` reaches every convolution: im2col (the experiment's choice) equals XLA's.

    Forward passes only: the im2col layer's VJP is checked against XLA's in the layer tests.
    """
    x = jax.random.uniform(jax.random.key(0), (2, 4, 4, 3))
    z = jax.random.normal(jax.random.key(2), (3, 2))
    impls = ("xla", "im2col")
    pcnn = {
        i: models.pixel_cnn(levels=5, features=6, num_layers=1, first_window=3, head_features=6, conv_impl=i)
        for i in impls
    }
    gens = {i: models.dcgan_generator(image_shape=(4, 4, 3), width=2, conv_impl=i) for i in impls}
    discs = {i: models.dcgan_discriminator(width=2, conv_impl=i) for i in impls}
    params = pcnn["xla"].init(jax.random.key(1), (4, 4, 3))
    g_params, g_state = gens["xla"].init(jax.random.key(3), (2,))
    d_params, d_state = discs["xla"].init(jax.random.key(4), (4, 4, 3))

    @functools.partial(jax.jit, static_argnums=0)
    def outputs(impl):
        fake = gens[impl].apply(g_params, g_state, z, train=True)[0]
        return pcnn[impl].logits(params, x), fake, discs[impl].apply(d_params, d_state, x, train=True)[0]

    # float32 sums of at most 3*3*8 = 72 O(1) products, in a different order: 1e-4 absolute.
    chex.assert_trees_all_close(outputs("im2col"), outputs("xla"), atol=1e-4, rtol=1e-4)


def test_pixel_cnn_param_count_and_shapes():
    model = models.pixel_cnn(levels=17, features=8, num_layers=2, first_window=5, head_features=16)
    params = model.init(jax.random.key(0), (8, 8, 1))
    # conv_a 5*5*1*8 + 8, two blocks 3*3*8*8 + 8, head_1 8*16 + 16, head_2 16*17 + 17.
    assert models.count_params(params) == (200 + 8) + 2 * (576 + 8) + (128 + 16) + (272 + 17)
    x = jax.random.uniform(jax.random.key(1), (3, 8, 8, 1))
    chex.assert_shape(jax.eval_shape(model.logits, params, x), (3, 8, 8, 1, 17))
    chex.assert_shape(jax.eval_shape(model.loss, params, x), (3,))


def test_categorical_nll_matches_scipy():
    logits = np.random.default_rng(0).normal(size=(2, 3, 5))
    targets = np.array([[0, 4, 2], [1, 1, 3]])
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    expected = -np.array(
        [sum(stats.multinomial.logpmf(np.eye(5)[t], 1, p[n, d]) for d, t in enumerate(targets[n])) for n in range(2)]
    )
    np.testing.assert_allclose(_autoregressive.categorical_nll(logits, targets), expected, rtol=1e-5)


def test_sampler_draws_valid_levels_reproducibly_and_respects_temperature():
    model = models.pixel_cnn(levels=5, features=8, num_layers=1, first_window=3, head_features=8)
    params = model.init(jax.random.key(0), (4, 4, 1))
    # Random biases, so that no pixel's scores tie (pixel 0 sees no input: its scores are the biases).
    params = jax.tree_util.tree_map_with_path(
        lambda path, v: jax.random.normal(jax.random.key(7), v.shape) if path[-1].key == "b" else v, params
    )
    sample = jax.jit(model.sample, static_argnums=(2, 3))
    a = sample(params, jax.random.key(3), 6, (4, 4, 1), temperature=1.0)
    b = sample(params, jax.random.key(3), 6, (4, 4, 1), temperature=1.0)
    chex.assert_shape(a, (6, 4, 4, 1))
    np.testing.assert_array_equal(a, b)
    levels = np.asarray(a) * 4
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-6)
    # A near-zero temperature is greedy: every draw is the argmax of the model given the pixels drawn before.
    greedy = sample(params, jax.random.key(4), 6, (4, 4, 1), temperature=1e-4)
    k = np.asarray(_autoregressive.to_levels(greedy, 5))
    scores = np.sort(np.asarray(model.logits(params, greedy)), -1)
    clear = scores[..., -1] - scores[..., -2] > 1e-2  # where the argmax is not a near-tie
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(np.argmax(model.logits(params, greedy), -1)[clear], k[clear])


def test_pixel_rnn_loss_is_the_chain_rule_of_its_char_lm():
    model = models.pixel_rnn(levels=5, hidden_dim=8, embed_dim=4)
    params = model.init(jax.random.key(0), (2, 3, 1))
    x = jnp.asarray(np.random.default_rng(1).integers(0, 5, size=(2, 2, 3, 1)) / 4.0, jnp.float32)
    lm = models.char_lm(vocab_size=6, hidden_dim=8, embed_dim=4)
    tokens = np.asarray(_autoregressive.to_levels(x, 5)).reshape(2, 6)
    inputs = np.concatenate([np.full((2, 1), 5), tokens[:, :-1]], axis=1)
    scores = np.asarray(lm.apply(params, jnp.asarray(inputs))[0], np.float64)[..., :5]
    logp = scores - np.log(np.exp(scores).sum(-1, keepdims=True))
    expected = -np.take_along_axis(logp, tokens[..., None], -1)[..., 0].sum(-1)
    np.testing.assert_allclose(model.loss(params, x), expected, rtol=1e-5)


# ----------------------------------------------------------------------------- VAE
def test_closed_form_kl_equals_monte_carlo():
    rng = np.random.default_rng(0)
    mean, log_var = rng.normal(size=(3, 4)) * 0.7, rng.normal(size=(3, 4)) * 0.5
    closed = np.asarray(models.gaussian_kl(mean, log_var))
    num = 200_000
    z = models.reparameterize(
        jax.random.key(0), jnp.broadcast_to(mean, (num, 3, 4)), jnp.broadcast_to(log_var, (num, 3, 4))
    )
    log_q = models.gaussian_log_density(z, mean, log_var)
    log_p = models.gaussian_log_density(z, jnp.zeros_like(z), jnp.zeros_like(z))
    terms = np.asarray(log_q - log_p, np.float64)  # (num, 3)
    stderr = terms.std(axis=0) / math.sqrt(num)
    assert np.all(np.abs(terms.mean(axis=0) - closed) < 4 * stderr), (terms.mean(0), closed, stderr)
    # scipy's log density is the reference of the Gaussian log-density.
    np.testing.assert_allclose(
        models.gaussian_log_density(z[:5], mean, log_var),
        stats.norm.logpdf(np.asarray(z[:5]), mean, np.exp(0.5 * log_var)).sum(-1),
        rtol=1e-5,
    )


@pytest.mark.parametrize("decoder", ["categorical", "bernoulli", "gaussian"])
def test_elbo_below_importance_sampled_log_likelihood(decoder):
    vae = models.vae(image_shape=(4, 4, 1), latent_dim=3, hidden_dims=(16,), decoder=decoder, levels=5)
    params = vae.init(jax.random.key(0), (4, 4, 1))
    x = jnp.asarray(np.random.default_rng(0).integers(0, 5, size=(6, 4, 4, 1)) / 4.0, jnp.float32)
    if decoder == "bernoulli":
        x = jnp.round(x)
    elbos = jax.vmap(lambda k: vae.elbo(params, x, k))(jax.random.split(jax.random.key(1), 128))
    elbo = np.asarray(elbos.mean(0))
    iwae = np.asarray(vae.importance_log_likelihood(params, x, jax.random.key(2), 128))
    # E[IWAE_S] >= ELBO (Jensen). The ELBO here averages 128 draws (standard error a few % of its
    # spread); the gap at this untrained model is several nats, far above both estimators' noise.
    assert np.all(iwae >= elbo), (iwae, elbo)


def test_vae_decoder_log_likelihoods_match_scipy():
    z = jnp.ones((2, 3))
    x = jnp.asarray(np.random.default_rng(0).integers(0, 5, size=(2, 2, 2, 1)) / 4.0, jnp.float32)
    for decoder in ("bernoulli", "gaussian"):
        vae = models.vae(image_shape=(2, 2, 1), latent_dim=3, hidden_dims=(8,), decoder=decoder)
        params = vae.init(jax.random.key(0))
        s = np.asarray(vae.decode(params, z), np.float64)
        xx = np.round(np.asarray(x)) if decoder == "bernoulli" else np.asarray(x)
        if decoder == "bernoulli":
            expected = stats.bernoulli.logpmf(xx, 1 / (1 + np.exp(-s))).reshape(2, -1).sum(-1)
        else:
            sd = np.exp(0.5 * np.asarray(params["log_var"], np.float64))
            expected = stats.norm.logpdf(xx, 1 / (1 + np.exp(-s)), sd).reshape(2, -1).sum(-1)
        np.testing.assert_allclose(vae.log_likelihood(params, jnp.asarray(xx, jnp.float32), z), expected, rtol=1e-5)


def test_vae_and_autoencoder_shapes():
    vae = models.vae(image_shape=(8, 8, 1), latent_dim=4, hidden_dims=(32,))
    params = vae.init(jax.random.key(0), (8, 8, 1))
    chex.assert_shape(vae.sample(params, jax.random.key(1), 5), (5, 8, 8, 1))
    chex.assert_shape(vae.decode(params, jnp.zeros((2, 4))), (2, 8, 8, 1, 17))
    ae = models.autoencoder(image_shape=(8, 8, 1), code_dim=3, hidden_dims=(16,))
    p = ae.init(jax.random.key(0))
    x = jax.random.uniform(jax.random.key(1), (4, 8, 8, 1))
    chex.assert_shape(ae.encode(p, x), (4, 3))
    np.testing.assert_allclose(
        ae.loss(p, x), np.sum((np.asarray(ae.decode(p, ae.encode(p, x))) - x) ** 2, (1, 2, 3)), rtol=1e-5
    )
    # enc: 64*16+16, 16*3+3; dec: 3*16+16, 16*64+64.
    assert models.count_params(p) == 1040 + 51 + 64 + 1088


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "build,name",
    [
        (lambda: models.vae(image_shape=(8, 8, 1), latent_dim=0), "latent_dim"),
        (lambda: models.autoencoder(image_shape=(8, 8, 1), code_dim=0), "code_dim"),
        (lambda: models.causal_mask(3, 1, 2, mask_type="C"), "mask_type"),
        (lambda: models.masked_conv2d(jnp.ones((1, 4, 4, 1)), jnp.ones((3, 3, 1, 2)), mask_type="a"), "mask_type"),
        (lambda: models.vae(image_shape=(8, 8, 1), latent_dim=2, decoder="poisson"), "decoder"),
        (lambda: models.pixel_cnn(levels=1), "levels"),
        (lambda: models.pixel_cnn(levels=3, conv_impl="fft"), "conv_impl"),
        (lambda: models.dcgan_generator(image_shape=(8, 8, 1), conv_impl="fft"), "conv_impl"),
        (lambda: models.dcgan_discriminator(conv_impl="fft"), "conv_impl"),
    ],
)
def test_bad_arguments_raise_one_line_value_error(build, name):
    with pytest.raises(ValueError) as info:
        build()
    message = str(info.value)
    assert message.startswith(f"{name}: expected") and "\n" not in message, message


@pytest.mark.parametrize("temperature", [0.0, -1.0])
def test_bad_temperature(temperature):
    model = models.pixel_cnn(levels=3, features=4, num_layers=1, first_window=3, head_features=4)
    params = model.init(jax.random.key(0), (2, 2, 1))
    with pytest.raises(ValueError, match=r"^temperature: expected a float > 0"):
        model.sample(params, jax.random.key(0), 2, (2, 2, 1), temperature=temperature)
    vae = models.vae(image_shape=(2, 2, 1), latent_dim=1, hidden_dims=(4,))
    with pytest.raises(ValueError, match=r"^temperature: expected a float > 0"):
        vae.sample(vae.init(jax.random.key(0)), jax.random.key(0), 2, temperature=temperature)
