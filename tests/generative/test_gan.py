"""GAN losses, the alternating step and mode coverage (jax231.generative)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import generative, models, optimizers


def _np_softplus(x):
    return np.logaddexp(0.0, x)


def test_losses_match_float64_formulas():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=7) * 3, rng.normal(size=7) * 3
    sig = lambda l: 1 / (1 + np.exp(-l))
    alpha = 0.1
    expected_d = -(1 - alpha) * np.log(sig(real)) - alpha * np.log(1 - sig(real)) - np.log(1 - sig(fake))
    got = generative.discriminator_loss(real_logits=real[:, None], fake_logits=fake[:, None], label_smoothing=alpha)
    np.testing.assert_allclose(got, expected_d, rtol=1e-5)
    np.testing.assert_allclose(
        generative.generator_loss(fake_logits=fake, kind="minimax"), np.log(1 - sig(fake)), rtol=1e-5
    )
    np.testing.assert_allclose(
        generative.generator_loss(fake_logits=fake, kind="non_saturating"), -np.log(sig(fake)), rtol=1e-5
    )
    # Stable far in the tails, where the naive formula would give log(0).
    assert np.isfinite(np.asarray(generative.generator_loss(fake_logits=jnp.array([-100.0, 100.0])))).all()
    np.testing.assert_allclose(generative.generator_loss(fake_logits=jnp.array([-50.0])), _np_softplus(50.0), rtol=1e-6)


def test_non_saturating_gradient_is_larger_when_discriminator_rejects_fakes():
    # The notes' argument: early on D(G(z)) ~ 0, where log(1 - D) is flat and -log D is steep.
    gen, disc = models.mlp_generator(hidden_dim=16), models.mlp_discriminator(hidden_dim=16)
    g_params, g_state = gen.init(jax.random.key(0), (4,))
    d_params, d_state = disc.init(jax.random.key(1), (2,))
    d_params["out"]["b"] = d_params["out"]["b"] - 8.0  # D(G(z)) ~ sigmoid(-8) ~ 3e-4
    z = jax.random.normal(jax.random.key(2), (64, 4))

    def grad_norm(kind):
        def loss(p):
            fake, _ = gen.apply(p, g_state, z, train=True)
            logits, _ = disc.apply(d_params, d_state, fake, train=True)
            return generative.generator_loss(fake_logits=logits, kind=kind).mean()

        return float(optax_global_norm(jax.grad(loss)(g_params)))

    fake, _ = gen.apply(g_params, g_state, z, train=True)
    d_fake = jax.nn.sigmoid(disc.apply(d_params, d_state, fake, train=True)[0])
    assert float(d_fake.max()) < 0.01
    minimax, non_saturating = grad_norm("minimax"), grad_norm("non_saturating")
    # Per example the gradients differ by the factor (1 - D) / D >= 99 (chain rule through the logit).
    assert non_saturating > 99 * minimax > 0


def optax_global_norm(tree):
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree_util.tree_leaves(tree)))


def _mixture_gan(label_smoothing=0.1):
    gen, disc = models.mlp_generator(hidden_dim=64), models.mlp_discriminator(hidden_dim=64)
    return generative.make_gan_step(
        gen,
        disc,
        optimizers.adam(1e-3, beta1=0.5),
        optimizers.adam(1e-3, beta1=0.5),
        latent_dim=4,
        label_smoothing=label_smoothing,
    )


def test_gan_covers_the_modes_of_a_ring_of_gaussians():
    num_modes, std = 6, 0.1
    data, centres = generative.mixture_of_gaussians(jax.random.key(0), 2048, num_modes=num_modes, radius=2.0, std=std)
    gan = _mixture_gan()
    state = generative.init_gan(gan, jax.random.key(1), (2,))
    state, metrics = generative.train_gan(gan, state, data, num_steps=1500, batch_size=128, data_key=jax.random.key(2))
    samples = generative.generate(gan, state, jax.random.key(3), 2000)
    coverage = generative.mode_coverage(samples, centres, std=std)
    # Every mode receives >= 1% of the samples within 3 std of its centre, and most samples are that close.
    assert coverage.num_covered == num_modes, coverage
    assert coverage.high_quality > 0.5, coverage
    assert np.isfinite(np.asarray(metrics["d_loss"])).all()


def test_train_gan_is_reproducible_and_independent_of_chunking():
    data, _ = generative.mixture_of_gaussians(jax.random.key(0), 256, num_modes=4)
    gan = _mixture_gan()

    def train(chunk):
        state = generative.init_gan(gan, jax.random.key(1), (2,))
        state, metrics = generative.train_gan(
            gan, state, data, num_steps=12, batch_size=64, data_key=jax.random.key(2), chunk_size=chunk
        )
        return state, metrics

    a, ma = train(12)
    b, mb = train(4)
    np.testing.assert_array_equal(ma["g_loss"], mb["g_loss"])
    for x, y in zip(jax.tree_util.tree_leaves(a.g_params), jax.tree_util.tree_leaves(b.g_params)):
        np.testing.assert_array_equal(x, y)
    assert int(a.step) == 12


def test_gan_step_updates_each_network_with_its_own_optimizer():
    # With a zero generator learning rate only the discriminator moves, and vice versa.
    data, _ = generative.mixture_of_gaussians(jax.random.key(0), 64, num_modes=4)
    gen, disc = models.mlp_generator(hidden_dim=8), models.mlp_discriminator(hidden_dim=8)
    gan = generative.make_gan_step(gen, disc, optimizers.sgd(0.0), optimizers.sgd(0.1), latent_dim=2)
    state = generative.init_gan(gan, jax.random.key(1), (2,))
    new, _ = jax.jit(gan.step)(state, data[:32])
    assert all(
        np.array_equal(x, y)
        for x, y in zip(jax.tree_util.tree_leaves(state.g_params), jax.tree_util.tree_leaves(new.g_params))
    )
    assert not all(
        np.array_equal(x, y)
        for x, y in zip(jax.tree_util.tree_leaves(state.d_params), jax.tree_util.tree_leaves(new.d_params))
    )


def test_dcgan_shapes():
    gen = models.dcgan_generator(image_shape=(8, 8, 1), width=4)
    disc = models.dcgan_discriminator(width=4)
    g_params, g_state = gen.init(jax.random.key(0), (3,))
    images, new_state = gen.apply(g_params, g_state, jnp.ones((5, 3)), train=True)
    assert images.shape == (5, 8, 8, 1) and float(images.min()) > 0 and float(images.max()) < 1
    assert set(new_state) == {"bn_0", "bn_1", "bn_2"}
    d_params, d_state = disc.init(jax.random.key(1), (8, 8, 1))
    assert disc.apply(d_params, d_state, images, train=True)[0].shape == (5, 1)


@pytest.mark.parametrize(
    "build,name",
    [
        (
            lambda: generative.make_gan_step(
                models.mlp_generator(),
                models.mlp_discriminator(),
                optimizers.sgd(0.1),
                optimizers.sgd(0.1),
                latent_dim=0,
            ),
            "latent_dim",
        ),
        (
            lambda: generative.make_gan_step(
                models.mlp_generator(),
                models.mlp_discriminator(),
                optimizers.sgd(0.1),
                optimizers.sgd(0.1),
                latent_dim=2,
                generator_loss_kind="wasserstein",
            ),
            "generator_loss_kind",
        ),
        (
            lambda: generative.discriminator_loss(
                real_logits=jnp.zeros(2), fake_logits=jnp.zeros(2), label_smoothing=1.0
            ),
            "label_smoothing",
        ),
        (lambda: models.mlp_generator().init(jax.random.key(0), (0,)), "latent_dim"),
    ],
)
def test_bad_arguments(build, name):
    with pytest.raises(ValueError) as info:
        build()
    assert str(info.value).startswith(f"{name}: expected") and "\n" not in str(info.value)
