"""Training a GAN: alternating discriminator and generator updates, one pure jitted step.

Each step ``t`` (keys ``fold_in(rng, t)``), with a real minibatch :math:`x` of ``B`` examples:

1. draw :math:`z \\sim \\mathcal{N}(0, I)` and make fakes :math:`G(z)` (no gradient to ``G``);
2. update the discriminator with its optimizer on the mean
   :func:`~jax231.generative.discriminator_loss` (one-sided label smoothing);
3. draw fresh :math:`z'` and update the generator with its own optimizer on the mean
   :func:`~jax231.generative.generator_loss` through the *updated* discriminator.

:func:`train_gan` runs many such steps as one ``lax.scan`` over on-device data
(minibatches from a per-epoch permutation, as :func:`jax231.training.fit` does),
in chunks so a progress bar can be shown between them, through the training
core's primitive for algorithm loops (:func:`jax231.training.run_steps`,
:func:`jax231.training.run_in_chunks`). ``jax231.training.fit`` trains one
network on one loss; this is its two-network counterpart.

References:
  Goodfellow et al., 2014, Algorithm 1 (k = 1 discriminator step per generator step);
  Radford et al., 2016 (Adam with beta1 = 0.5).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jax231.generative._gan_losses import (
    GENERATOR_LOSSES,
    discriminator_loss,
    generator_loss,
)
from jax231.models import Model
from jax231.training import run_in_chunks, run_steps
from jax231.types import Array, ArrayLike, ModelState, OptState, Params, PRNGKey, Shape

__all__ = ["GanState", "GanStep", "generate", "init_gan", "make_gan_step", "train_gan"]

METRICS = ("d_loss", "g_loss", "d_real", "d_fake")


class GanState(NamedTuple):
    """Everything a GAN's training carries between steps.

    Attributes:
      g_params: generator parameters.
      g_state: generator model state (batch-norm running statistics).
      d_params: discriminator parameters.
      d_state: discriminator model state.
      g_opt_state: the generator optimizer's state.
      d_opt_state: the discriminator optimizer's state.
      step: int32 number of steps taken.
      rng: the key of the latents; step ``t`` uses ``fold_in(rng, t)``.
    """

    g_params: Params
    g_state: ModelState
    d_params: Params
    d_state: ModelState
    g_opt_state: OptState
    d_opt_state: OptState
    step: Array
    rng: PRNGKey


class GanStep(NamedTuple):
    """A pure GAN step and what it was built from (see :func:`make_gan_step`).

    Attributes:
      step: ``step(state, real) -> (state, metrics)``; metrics ``'d_loss'``,
        ``'g_loss'``, ``'d_real'`` (mean :math:`D(x)`), ``'d_fake'`` (mean :math:`D(G(z))`).
      generator: the generator ``Model``.
      discriminator: the discriminator ``Model``.
      g_optimizer: the generator's ``GradientTransformation``.
      d_optimizer: the discriminator's ``GradientTransformation``.
      latent_dim: ``Z``.
    """

    step: Callable[[GanState, Array], tuple[GanState, dict[str, Array]]]
    generator: Model
    discriminator: Model
    g_optimizer: Any
    d_optimizer: Any
    latent_dim: int


def init_gan(gan: GanStep, rng: PRNGKey, data_shape: Shape) -> GanState:
    """Initial :class:`GanState`: both networks and both optimizer states from ``rng``.

    Args:
      gan: from :func:`make_gan_step`.
      rng: PRNG key; split into the generator, discriminator and latent keys.
      data_shape: the shape of one real example (no batch axis).
    """
    k_g, k_d, k_z = jax.random.split(rng, 3)
    g_params, g_state = gan.generator.init(k_g, (gan.latent_dim,))
    d_params, d_state = gan.discriminator.init(k_d, tuple(data_shape))
    return GanState(
        g_params,
        g_state,
        d_params,
        d_state,
        gan.g_optimizer.init(g_params),
        gan.d_optimizer.init(d_params),
        jnp.zeros((), jnp.int32),
        k_z,
    )


def _apply_updates(params: Params, updates: Params) -> Params:
    return jax.tree_util.tree_map(lambda w, u: (w + u).astype(w.dtype), params, updates)


def make_gan_step(
    generator: Model,
    discriminator: Model,
    g_optimizer: Any,
    d_optimizer: Any,
    *,
    latent_dim: int,
    generator_loss_kind: str = "non_saturating",
    label_smoothing: float = 0.0,
) -> GanStep:
    """Builds the alternating two-network update (module docstring) as a pure, un-jitted step.

    Args:
      generator: ``Model`` mapping ``(N, Z)`` latents to examples.
      discriminator: ``Model`` mapping examples to ``(N, 1)`` logits.
      g_optimizer: generator ``GradientTransformation`` (e.g. ``adam(2e-4, beta1=0.5)``).
      d_optimizer: discriminator ``GradientTransformation``.
      latent_dim: ``Z`` >= 1.
      generator_loss_kind: ``'non_saturating'`` or ``'minimax'``.
      label_smoothing: one-sided smoothing of the real targets, in ``[0, 1)``.

    Returns:
      A :class:`GanStep`.

    Raises:
      ValueError: ``latent_dim`` < 1, an unknown generator loss, bad smoothing.
    """
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
        raise ValueError(f"latent_dim: expected an int >= 1, got {latent_dim!r}")
    if generator_loss_kind not in GENERATOR_LOSSES:
        raise ValueError(f"generator_loss_kind: expected one of {list(GENERATOR_LOSSES)}, got {generator_loss_kind!r}")
    discriminator_loss(real_logits=jnp.zeros(1), fake_logits=jnp.zeros(1), label_smoothing=label_smoothing)

    def step(state: GanState, real: Array) -> tuple[GanState, dict[str, Array]]:
        batch = real.shape[0]
        k_d, k_g = jax.random.split(jax.random.fold_in(state.rng, state.step))
        # 1. Fakes for the discriminator (the generator is held fixed).
        z = jax.random.normal(k_d, (batch, latent_dim))
        fake, _ = generator.apply(state.g_params, state.g_state, z, train=True)
        fake = lax.stop_gradient(fake)

        # 2. Discriminator update.
        def d_objective(d_params):
            real_logits, d_state = discriminator.apply(d_params, state.d_state, real, train=True)
            fake_logits, d_state = discriminator.apply(d_params, d_state, fake, train=True)
            loss = discriminator_loss(
                real_logits=real_logits, fake_logits=fake_logits, label_smoothing=label_smoothing
            ).mean()
            return loss, (d_state, real_logits)

        (d_loss, (d_state, real_logits)), d_grads = jax.value_and_grad(d_objective, has_aux=True)(state.d_params)
        d_updates, d_opt_state = d_optimizer.update(d_grads, state.d_opt_state, state.d_params)
        d_params = _apply_updates(state.d_params, d_updates)

        # 3. Generator update through the updated discriminator.
        def g_objective(g_params):
            z = jax.random.normal(k_g, (batch, latent_dim))
            fake, g_state = generator.apply(g_params, state.g_state, z, train=True)
            fake_logits, _ = discriminator.apply(d_params, d_state, fake, train=True)
            loss = generator_loss(fake_logits=fake_logits, kind=generator_loss_kind).mean()
            return loss, (g_state, fake_logits)

        (g_loss, (g_state, fake_logits)), g_grads = jax.value_and_grad(g_objective, has_aux=True)(state.g_params)
        g_updates, g_opt_state = g_optimizer.update(g_grads, state.g_opt_state, state.g_params)
        g_params = _apply_updates(state.g_params, g_updates)

        metrics = {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_real": jax.nn.sigmoid(real_logits).mean(),
            "d_fake": jax.nn.sigmoid(fake_logits).mean(),
        }
        new_state = GanState(g_params, g_state, d_params, d_state, g_opt_state, d_opt_state, state.step + 1, state.rng)
        return new_state, metrics

    return GanStep(step, generator, discriminator, g_optimizer, d_optimizer, latent_dim)


@functools.partial(jax.jit, static_argnames=("step", "num_steps", "batch_size"), donate_argnums=1)
def _scan_steps(step, state, data, data_key, *, num_steps, batch_size):
    out = run_steps(step, state, num_steps, start=state.step, data=data, data_key=data_key, batch_size=batch_size)
    return out.state, out.metrics


def train_gan(
    gan: GanStep,
    state: GanState,
    data: ArrayLike,
    *,
    num_steps: int,
    batch_size: int,
    data_key: PRNGKey,
    chunk_size: int = 500,
    progress: bool = False,
) -> tuple[GanState, dict[str, Array]]:
    """Runs ``num_steps`` GAN steps, each chunk of ``chunk_size`` one compiled ``lax.scan``.

    Step ``t`` uses the minibatch ``t mod (N // B)`` of the epoch ``t // (N // B)``
    permutation :func:`jax231.training.epoch_permutation` ``(data_key, epoch, N)``,
    so the result depends only on the state, data and keys (not on ``chunk_size``).

    Args:
      gan: from :func:`make_gan_step` (reuse the object: it keys the compilation).
      state: from :func:`init_gan` (its buffers are donated).
      data: real examples ``(N, ...)``, on device.
      num_steps: steps to run, >= 1.
      batch_size: ``B``, ``1 <= B <= N``.
      data_key: key of the data order.
      chunk_size: steps per compiled chunk (the progress bar moves between chunks).
      progress: show a progress bar on stderr.

    Returns:
      ``(state, metrics)``, every metric stacked over the ``num_steps`` steps.

    Raises:
      ValueError: bad ``num_steps``, ``batch_size`` or ``chunk_size``.
    """
    data = jnp.asarray(data)
    for name, value in (("num_steps", num_steps), ("chunk_size", chunk_size), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    if batch_size > data.shape[0]:
        raise ValueError(f"batch_size: expected at most the {data.shape[0]} examples, got {batch_size}")

    def program(state: GanState, done: int, length: int) -> tuple[GanState, dict[str, Array]]:
        return _scan_steps(gan.step, state, data, data_key, num_steps=length, batch_size=batch_size)

    state, history = run_in_chunks(
        program, state, num_steps, chunk_size=chunk_size, progress=progress, progress_metric="g_loss"
    )
    return state, {k: jnp.concatenate([m[k] for m in history]) for k in METRICS}


def generate(gan: GanStep, state: GanState, rng: PRNGKey, num_samples: int, *, train: bool = False) -> Array:
    """``num_samples`` generator outputs at :math:`z \\sim \\mathcal{N}(0, I)` (eval-mode batch norm by default)."""
    z = jax.random.normal(rng, (num_samples, gan.latent_dim))
    return gan.generator.apply(state.g_params, state.g_state, z, train=train)[0]
