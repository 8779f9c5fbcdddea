"""Generative models of lecture 13 on scikit-learn digits (8 x 8, 17 grey levels).

Trains, on the digits training split (the last ``val_size`` images held out):
the per-pixel independent categorical baseline, an autoencoder, a VAE
(categorical decoder over the 17 levels), a DCGAN-style GAN (non-saturating
generator loss, Adam beta1 = 0.5, one-sided label smoothing), a PixelCNN
(masked convolutions A then B) and a raster-scan PixelRNN (LSTM). Reports the
test NLL in bits/dim (exact for the baseline, PixelCNN and PixelRNN; the ELBO
bound and the importance-sampled estimate for the VAE), the classifier-based
sample score of every sampler (a digits classifier's mean confidence and the
entropy of its predicted classes), sample grids, VAE and GAN latent
interpolations, autoencoder reconstructions and the training curves.

Command (from the repository root)::

    python -m experiments.generative.main --workdir=/tmp/generative

Subsets: ``--config.models=vae,gan``; shorter runs: ``--config.vae_steps=1000`` etc.

Measured (2026-12-01, third session) with exactly that command, one process, on the 2-core
CPU shared with the other engineers' jobs (load average 15-30, so the job got ~20% of
the CPU): ``/usr/bin/time -v`` 496.9 s user + 4.9 s sys = **502 CPU-s (8.4 CPU-min)**,
40 min 10 s wall (an idle machine: ~5 min). Per model, CPU-s (user + sys of the process,
training + evaluation + sampling 500 images) and the result:

* digits classifier (MLP 256): test accuracy 0.967; real test images score mean
  confidence 0.978, class entropy 2.302 nats.
* baseline (independent 17-level categoricals, counting): **2.436 bits/dim**; samples
  0.764 / 2.134 (the MLP is confident on noise too: the score separates good and bad
  samples by a small margin; look at the grids). 4 CPU-s.
* autoencoder (code 8): test MSE 0.0132 per pixel (best val at step 1,250). 5 CPU-s.
* VAE (categorical decoder over the 17 levels, the same discrete space as the exact
  models; Z = 16; best val at step 500, early-stopped at 1,500): importance-sampled
  (S = 200) **2.095 bits/dim**, ELBO bound 2.197; samples (mean images) confidence
  **0.837**, class entropy **2.283** nats (targets 0.8 / 2.0: met). 18 CPU-s.
* GAN (DCGAN, non-saturating, Adam 2e-4 / beta1 0.5, smoothing 0.1, 4,000 steps):
  samples confidence **0.912**, class entropy **2.284** nats, Inception-score analogue
  7.86 (targets met). 178 CPU-s (~0.04 CPU-s per two-network step with im2col).
* PixelCNN (A 5x5, 4 residual B blocks, 32 channels; best val at step 1,000, stopped at
  2,000): **1.899 bits/dim**, below the VAE's 2.095 and the baseline's 2.436 (target
  met); samples 0.871 / 2.297. 71 CPU-s.
* PixelRNN (raster LSTM 256; best val at step 500, stopped at 1,500): **1.851 bits/dim**;
  samples 0.864 / 2.274. 216 CPU-s.

Every likelihood model overfits the 1,300 training digits within 500-1,000 steps (VAE at
5,000 steps: train 33 vs val 240 nats), hence fit's early stopping.

CIFAR-10 "where it fits the CPU": the shared copy mean-pooled 4 x 4 to 8 x 8 x 3 and
rounded back to its 256 levels (D = 192), 10,000 train / 1,000 val / 1,000 test images::

    python -m experiments.generative.main --config=experiments/generative/config.py:cifar8 --workdir=/tmp/g8

Measured the same day with that command (same shared machine, ~20% of the CPU): baseline (independent
256-level categoricals) **7.798 bits/dim**, 12.5 CPU-s; PixelCNN (the digits
architecture, 1,500 steps, validation still falling) **5.581 bits/dim**, 122 CPU-s
(869 s wall) with sampling 100 images; VAE (categorical decoder over the 256 levels:
49k outputs; 1,000 steps) importance-sampled (S = 50) 7.432 bits/dim, ELBO 7.453,
248 CPU-s. Whole job: 380.5 s user + 15.3 s sys = 396 CPU-s, 32 min 23 s wall. The
sample score there uses an MLP on the
8 x 8 CIFAR images (test accuracy 0.415; real test images score 0.421 / 2.279), too
weak a classifier for the score to mean much.

Full-resolution CIFAR-10 does not fit the 30 CPU-min budget: a PixelCNN step at
32 x 32 x 3 (32 channels, head 64, batch 32, im2col) measured ~0.46 CPU-s, so ~3,000
steps are ~23 CPU-min of training alone, and sampling takes 3,072 sequential network
passes (~0.3 CPU-s each for 64 images, ~15 CPU-min); a categorical VAE decoder over
32 x 32 x 3 x 256 values has 786k outputs (200M weights behind a 256-wide layer).
"""

from __future__ import annotations

import ml_collections

PRESETS = ("digits", "tiny", "cifar8")


def get_config(preset: str = "digits") -> ml_collections.ConfigDict:
    """Returns a preset: ``'digits'`` and ``'cifar8'`` (module docstring), ``'tiny'`` (the smoke test).

    ``--config=experiments/generative/config.py:tiny`` selects the preset on the command line.
    """
    if preset not in PRESETS:
        raise ValueError(f"preset: expected one of {', '.join(PRESETS)}, got {preset!r}")
    config = ml_collections.ConfigDict()
    # Dataset for jax231.pipelines.load_arrays ('digits'; images in [0, 1] with `levels` values).
    config.dataset = "digits"
    # Intensity values per pixel of the dataset (digits: 0..16, i.e. 17).
    config.levels = 17
    # Training images held out (from the end of the train split) for validation curves.
    config.val_size = 137
    # Keep only the first train_size training / test_size test images (0: all of them).
    config.train_size = 0
    config.test_size = 0
    # Mean-pool factor f of the images (f x f blocks, rounded back to the `levels` values; 1: none).
    config.downsample = 1
    # Seed of every initialisation, data order and sample.
    config.seed = 0
    # Models to run, comma-separated: baseline, autoencoder, vae, gan, pixelcnn, pixelrnn.
    config.models = "baseline,autoencoder,vae,gan,pixelcnn,pixelrnn"
    # Minibatch size of every model.
    config.batch_size = 64
    # Steps between validation evaluations (history rows and the progress bar).
    config.eval_every = 250
    # Evaluations without a lower validation loss before a likelihood model stops (fit's early
    # stopping; the best-validation parameters are kept). 1,300 training digits are few: the VAE's
    # categorical decoder overfits after ~500 steps (train 33 vs val 240 nats at 5,000 steps).
    config.early_stopping_patience = 4
    # Samples drawn per sampler for the grids and the classifier score.
    config.num_samples = 500
    # Importance samples of the VAE's log-likelihood estimate.
    config.importance_samples = 200
    # Sampling temperature of PixelCNN / PixelRNN (1.0 = the model) and prior scale of the VAE.
    config.temperature = 1.0
    # Convolution implementation of the PixelCNN and the GAN ('im2col', 'xla', 'auto'; the same
    # function): inside fit's compiled loop XLA's CPU convolution is ~10x slower per step here.
    config.conv_impl = "im2col"

    # The digits classifier of the sample score (an MLP on the 64 pixels).
    config.classifier_hidden = 256
    config.classifier_steps = 2000
    config.classifier_lr = 1e-3

    # Autoencoder: code size, hidden widths, steps, Adam learning rate.
    config.ae_code_dim = 8
    config.ae_hidden = (256,)
    config.ae_steps = 3000
    config.ae_lr = 1e-3

    # VAE: latent size, hidden widths, decoder ('categorical', 'bernoulli', 'gaussian'), steps, lr.
    config.vae_latent_dim = 16
    config.vae_hidden = (256, 256)
    config.vae_decoder = "categorical"
    config.vae_steps = 6000
    config.vae_lr = 1e-3

    # GAN: latent size, width w of both networks, steps, Adam lr and beta1 for both,
    # generator loss ('non_saturating' or 'minimax'), one-sided label smoothing.
    config.gan_latent_dim = 32
    config.gan_width = 32
    config.gan_steps = 4000
    config.gan_lr = 2e-4
    config.gan_beta1 = 0.5
    config.gan_generator_loss = "non_saturating"
    config.gan_label_smoothing = 0.1

    # PixelCNN: channels, residual type-B blocks, first (type A) window, steps, lr.
    config.pixelcnn_features = 32
    config.pixelcnn_layers = 4
    config.pixelcnn_first_window = 5
    config.pixelcnn_steps = 3000
    config.pixelcnn_lr = 1e-3

    # PixelRNN (raster-scan LSTM): hidden size, steps, lr.
    config.pixelrnn_hidden = 256
    config.pixelrnn_steps = 4000
    config.pixelrnn_lr = 2e-3
    if preset == "cifar8":  # the CIFAR-10 copy mean-pooled to 8 x 8 x 3 (256 levels): what fits the CPU
        config.update(
            dataset="cifar10_shared",
            levels=256,
            val_size=1000,
            train_size=10000,
            test_size=1000,
            downsample=4,
            models="baseline,pixelcnn,vae",
            num_samples=100,
            importance_samples=50,
            vae_steps=1000,
            pixelcnn_steps=1500,
        )
    if preset == "tiny":  # a few steps of small networks: checks the plumbing, not the results
        config.update(
            num_samples=12,
            importance_samples=3,
            eval_every=2,
            classifier_steps=5,
            classifier_hidden=16,
            ae_steps=2,
            ae_hidden=(8,),
            vae_steps=2,
            vae_hidden=(8,),
            vae_latent_dim=2,
            gan_steps=2,
            gan_width=4,
            gan_latent_dim=2,
            pixelcnn_steps=2,
            pixelcnn_features=4,
            pixelcnn_layers=1,
            pixelcnn_first_window=3,
            pixelrnn_steps=2,
            pixelrnn_hidden=8,
            conv_impl="auto",  # tiny networks: im2col only adds compile time (~7 CPU-s of ~60)
        )
    return config
