"""Semantic segmentation of digits (11 classes per pixel) on ``digit_canvas`` with a small U-Net.

Commands (from the repository root), runtime measured on the reference 2-core CPU shared with
other jobs (heavily loaded: timings are inflated), and the result to expect:

* default -- ``unet`` (widths 16-32-64, transposed-convolution upsampling, skips), Adam 2e-3,
  batch 32, 1,500 updates, trained by ``jax231.training.fit`` with ``detection.pixel_cross_entropy``
  (its ``accuracy`` is then the pixel accuracy); target mean IoU >= 0.90 (issue 13);
  measured: see ``RESULTS`` below::

    python -m experiments.segmentation.main --workdir=/tmp/segmentation

* ``tiny`` -- a seconds-long smoke run used by the tests::

    python -m experiments.segmentation.main --config=experiments/segmentation/config.py:tiny --workdir=/tmp/seg_tiny

RESULTS: measured 2026-12-01 on the 2-core CPU shared with other jobs (load average 4-24, nice 15)
with ``--config.num_steps=800 --config.max_seconds=1380`` (the deadline left no room for 1,500):
495 CPU-seconds, 19 min 29 s wall; **mean IoU 0.417**, pixel accuracy 0.938 (background IoU
0.995, digit classes 0.19-0.80: the ink is segmented, the digit identity per pixel is not yet).
Target not met. A U-Net update costs ~0.57 CPU-s inside the training scan (im2col
convolutions), so the default 1,500 updates are ~15 CPU-min, inside the 30 CPU-min budget.
"""

from __future__ import annotations

import ml_collections


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.dataset = "digit_canvas"  # A canvas dataset of jax231.pipelines; 'label' is the class mask.
    config.train_size = 0  # Training canvases used (0 = all 4,000).
    config.test_size = 0  # Test canvases evaluated (0 = all 500).
    config.widths = (16, 32, 64, 128)  # Channels per U-Net level (48 px -> 6 px at the bottom).
    config.convs_per_block = 1  # 3x3 convolutions per encoder block.
    config.decoder_convs = 1  # 3x3 convolutions per decoder block.
    config.skip = "add"  # How a skip joins the decoder: 'add' (LinkNet) or 'concat' (U-Net).
    config.norm_groups = 0  # Group norm after every convolution with this many groups (0: none).
    config.coarse_scores = True  # Add the upsampled scores of the bottom (6 px) features (FCN's shortcut).
    config.dice_weight = 1.0  # Weight of the soft Dice term added to the pixel cross-entropy.
    config.num_steps = 1500  # Adam updates.
    config.batch_size = 32  # Canvases per update.
    config.learning_rate = 2e-3  # Adam step size (cosine-decayed to 0).
    config.eval_every = 200  # Updates between evaluations (history rows).
    config.num_overlays = 6  # Test images drawn in predictions.png (true and predicted masks).
    config.seed = 0  # Initialisation and data order.
    config.max_seconds = 0.0  # Wall-clock budget of training (0 = none): stops at the next chunk boundary.
    if preset == "tiny":
        config.train_size, config.test_size = 64, 16
        config.widths = (4, 8)
        config.norm_groups = 2
        config.num_steps, config.batch_size, config.eval_every = 4, 8, 2
        config.num_overlays = 2
    elif preset != "default":
        raise ValueError(f"preset: expected 'default' or 'tiny', got {preset!r}")
    return config
