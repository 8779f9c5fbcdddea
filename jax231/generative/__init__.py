"""Training and evaluation of the generative models of lecture 13.

The models are in :mod:`jax231.models` (``autoencoder``, ``vae``, ``pixel_cnn``,
``pixel_rnn``, ``dcgan_generator`` / ``dcgan_discriminator``, ``mlp_generator`` /
``mlp_discriminator``). Here:

* GAN losses and training: :func:`discriminator_loss`, :func:`generator_loss`
  (``'minimax'``, ``'non_saturating'``), :func:`make_gan_step` (the alternating
  two-network update, a pure step), :func:`init_gan`, :func:`train_gan` (a
  ``lax.scan`` over steps, on-device data) and :func:`generate`;
* likelihood models through ``jax231.training.fit``: :func:`fit_generative`,
  :func:`as_model`, :func:`objective_loss`;
* evaluation: :func:`bits_per_dim`, :func:`independent_categorical` (the
  per-pixel baseline), :func:`classifier_score` (an Inception-score analogue),
  :func:`mixture_of_gaussians` and :func:`mode_coverage`.

References:
  CS231n lecture 13, "Generative Models"; assignment 3 (GANs).
"""

from jax231.generative._evaluation import (
    ModeCoverage,
    SampleScore,
    bits_per_dim,
    classifier_score,
    independent_categorical,
    independent_categorical_nll,
    mixture_of_gaussians,
    mode_coverage,
)
from jax231.generative._fit import as_model, fit_generative, objective_loss
from jax231.generative._gan_losses import (
    GENERATOR_LOSSES,
    discriminator_loss,
    generator_loss,
)
from jax231.generative._gan_training import (
    GanState,
    GanStep,
    generate,
    init_gan,
    make_gan_step,
    train_gan,
)

__all__ = [
    "GENERATOR_LOSSES",
    "GanState",
    "GanStep",
    "ModeCoverage",
    "SampleScore",
    "as_model",
    "bits_per_dim",
    "classifier_score",
    "discriminator_loss",
    "fit_generative",
    "generate",
    "generator_loss",
    "independent_categorical",
    "independent_categorical_nll",
    "init_gan",
    "make_gan_step",
    "mixture_of_gaussians",
    "mode_coverage",
    "objective_loss",
    "train_gan",
]
