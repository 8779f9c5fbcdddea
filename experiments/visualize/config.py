"""Visualising and understanding the project's own CNNs (CS231n lecture 12, assignment 3).

For each dataset (the CIFAR-10 copy when ../shared/datasets has it, and scikit-learn
digits always) a small VGG-style CNN is trained with ``jax231.training.fit``; then, with
``jax231.visualize``: first-layer filters, saliency maps, fooling images (iterated
normalised gradient steps to a target class) and FGSM with their success rates and mean
L-inf perturbations, class visualisation (L2 + blur + jitter), occlusion sensitivity,
t-SNE of the penultimate features, style transfer and DeepDream with the same CNN as the
feature extractor. Without ImageNet weights, style transfer and DeepDream here demonstrate
the methods, not their famous pictures. Every result is a PNG grid under
``<workdir>/<dataset>/``; ``fooling.md`` tabulates the attacks and ``report.md`` sums up.

Command (from the repository root)::

    python -m experiments.visualize.main --workdir=/tmp/visualize

Measured from scratch in one go after the merge (2026-12-01, third session, quiet 2-core CPU,
load < 1; ``/usr/bin/time -v nice -n 5 python -m experiments.visualize.main
--workdir=/work/runs/vis_default``): **97.0 s user + 7.2 s sys, 1 min 28 s wall** for both
datasets; CIFAR-10 CNN 55.1% test, fooling **100/100** (mean L-inf 0.058, L2 0.599, 2.9 steps);
FGSM 59% / 96% / 99%; digits CNN 97.8%, fooling **100/100** (L-inf 0.330). The training core's
canonical-layout convolutions (issue 10) brought the whole run from ~440 CPU-s (below) to 104;
the numbers differ from the run below in the last digits because the rewritten
loop body sums the convolutions' gradients in another order.

The first measurement (same day, before that merge, the 2-core CPU shared with other jobs, load
average 16-40; times inflated), seed 0, with these defaults:

* cifar10_shared: the CNN (no hidden layer) trains 500 steps to **55.3%** test (was 44.2% with
  the (64,) hidden layer), 329 s CPU, 34 min 14 s wall, run on its own with the default spec;
  the full command then ran with ``--workdir`` holding that finished training (fit resumed it:
  no step retrained): 106 s CPU and 13 min 48 s wall for both datasets (765 s in report.md),
  so about 440 CPU-s in all. Fooling images (100 correctly classified test images,
  random other targets, log-probability ascent, step 0.25, <= 200 steps, [0, 1] clip):
  **100/100** (target >= 95%), mean L-inf 0.057, mean L2 0.589, 2.8 steps on average; the
  margin objective 100/100 (L-inf 0.059) and even the assignment's raw score 100/100 (L-inf
  0.073). FGSM (untargeted) misclassifies 58%, 96%, 100% at epsilon 0.004, 0.016, 0.063 (mean
  L2 0.221, 0.883, 3.45).
* digits (in that run, trained from scratch): CNN 97.8% test; fooling **100/100**, mean L-inf
  0.330, L2 0.835, 18.8 steps (8x8 digits with 17 grey levels need large changes); FGSM 1%, 1%,
  20% at the same epsilons. Style-transfer loss falls to 0.258 / 0.391 (CIFAR-10) and 0.321 /
  0.206 (digits) of its start.

Why the previous CIFAR-10 CNN stopped at 69/100: its hidden layer ``fc_0`` (64 ReLU units
after the flattened 4x4x64 pool) had only 1-3 live units per test image, and every
objective's ascent (log-probability, margin, raw score; any step size, momentum, random
restarts, sign steps) switched the last of them off on 31 of the 100 attempts: the scores were
then the constant biases (softmax 0.31 on the bias's class), the gradient exactly 0 and the
attack frozen (``tests/visualize/test_gradients.py`` has the one-unit version). The gradients
themselves were right (finite differences agree). Without the hidden layer the classifier
reads 1,024 pooled BN-ReLU features, which no perturbation switches off together; it also
trains faster (43.8% val at step 50 vs 21.4%). ``learning_rate`` 0.05 diverges (step 2) without
the hidden layer, hence 0.01.
"""

from __future__ import annotations

import ml_collections

PRESETS = ("default", "tiny")


def _dataset(**fields) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(fields)


def _default() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    # Datasets, each with its own CNN; 'cifar10_shared' is skipped with a message when the copy is absent.
    config.datasets = ("cifar10_shared", "digits")
    # Per dataset: the jax231.models.vgg architecture, the training run (momentum SGD with a
    # cosine schedule, fit's num_steps/batch_size), the split sizes (0 = all), the occlusion
    # patch and stride, the size (H = W) of the style-transfer / DeepDream images, and the L2
    # length of each fooling step in [0, 1]-pixel units (scaled with the image's size: 3072 values
    # for CIFAR-10, 64 for digits; 0.05 on CIFAR-10 fooled only 45/100 in 100 steps).
    config.per_dataset = ml_collections.ConfigDict(
        {
            "cifar10_shared": _dataset(
                stage_widths=(16, 32, 64),
                convs_per_stage=(1, 1, 1),
                hidden_dims=(),  # (64,) trained to a layer with 1-3 live units per image: see the docstring.
                train_size=0,
                val_size=1000,
                test_size=1000,
                num_steps=500,
                batch_size=64,
                learning_rate=0.01,  # 0.05 diverges at step 2 without the hidden layer.
                patch_size=6,
                stride=2,
                style_size=64,
                fooling_step=0.25,
            ),
            "digits": _dataset(
                stage_widths=(16, 32),
                convs_per_stage=(1, 1),
                hidden_dims=(64,),
                train_size=0,
                val_size=200,
                test_size=0,
                num_steps=800,
                batch_size=64,
                learning_rate=0.05,
                patch_size=2,
                stride=1,
                style_size=16,
                fooling_step=0.05,
            ),
        }
    )
    # Test images shown in the saliency / fooling / occlusion / DeepDream grids.
    config.num_shown = 8
    # Fooling images: attempts (correctly classified test images), target class (-1: a random
    # class other than the label; else that class for every image) and the most steps.
    config.num_attempts = 100
    config.fooling_target = -1
    config.fooling_max_steps = 200
    # What the fooling steps ascend: 'log_prob' (log softmax of the target; also lowers the other
    # scores) or 'score' (the assignment's raw target score, which on the CIFAR-10 CNN inflated every
    # score and left another class ahead on 52/100 attempts).
    config.fooling_objective = "log_prob"
    # FGSM step sizes (L-inf, [0, 1] pixels), untargeted.
    config.fgsm_epsilons = (0.004, 0.016, 0.063)
    # Class visualisation (jax231.visualize.class_visualization).
    config.class_vis = ml_collections.ConfigDict(
        {"num_steps": 150, "learning_rate": 0.3, "l2": 1e-3, "max_jitter": 2, "blur_every": 10, "blur_sigma": 0.5}
    )
    # t-SNE of the penultimate (last hidden) features of this many test images.
    config.tsne_points = 500
    config.tsne_perplexity = 30.0
    # Style transfer: content layer = the last stage's convolution, style layers = every
    # convolution, with these weights (one per stage), TV weight, Adam steps and rate.
    config.style = ml_collections.ConfigDict(
        {"content_weight": 1.0, "style_weight": 1e4, "tv_weight": 1e-2, "num_steps": 150, "learning_rate": 0.02}
    )
    # DeepDream: Adam-free normalised ascent on each stage's convolution (see jax231.visualize.deep_dream).
    config.dream = ml_collections.ConfigDict({"num_steps": 20, "learning_rate": 0.01, "max_jitter": 2})
    config.seed = 0
    config.progress = True
    return config


def _tiny() -> ml_collections.ConfigDict:
    """Digits only, every stage a few steps: the smoke test."""
    config = _default()
    config.datasets = ("digits",)
    config.per_dataset.digits.update(
        {"num_steps": 150, "stage_widths": (8, 16), "hidden_dims": (32,), "test_size": 300}
    )
    config.num_shown = 4
    config.num_attempts = 20
    config.fooling_max_steps = 100
    config.class_vis.num_steps = 20
    config.tsne_points = 60
    config.tsne_perplexity = 10.0
    config.style.num_steps = 10
    config.dream.num_steps = 5
    config.progress = False
    return config


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
    """``'default'`` (the run of the module docstring) or ``'tiny'`` (digits, seconds; the tests)."""
    if preset not in PRESETS:
        raise ValueError(f"preset: expected one of {PRESETS}, got {preset!r}")
    return _tiny() if preset == "tiny" else _default()
