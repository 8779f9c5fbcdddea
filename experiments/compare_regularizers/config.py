"""Default config of compare_regularizers: the notes' regularisers on an MNIST-1D MLP and a digits convnet.

Command (from the repository root; no download)::

    python -m experiments.compare_regularizers.main --workdir=runs/compare_regularizers

Runtime: 335 s of CPU time (user) for the 24 methods, measured 2026-12-01 on the reference
2-core CPU shared with other jobs (load average 15-23: 55 min wall, of which the ResNet pair
15 min and the 7 digits methods 16 min; the 13 earlier methods alone took 180 s CPU, 8 min 50 s
wall, that day; an idle machine was not available to measure).

Result (seed 0, these defaults; MNIST-1D: val = last 500 training examples, test = its test
split; digits: 500 training images, val = last 300 of the train split, 360 test images; accuracy
of the final parameters; earlier figures: experiments/RESULTS.md):

    method               data     train   val    test   gap    evaluation
    none                 mnist1d  0.948  0.618  0.602  0.330  (the 100-100 MLP overfits)
    l2 (1e-2)            mnist1d  0.699  0.630  0.615  0.069
    l1 (5e-4)            mnist1d  0.845  0.608  0.609  0.237
    elastic_net          mnist1d  0.766  0.610  0.599  0.156
    dropout (0.2)        mnist1d  0.775  0.622  0.610  0.153
    mc_dropout (T 20)    mnist1d  0.760  0.606  0.605  0.154  dropout's net; spread 0.17 / 0.16
    dropconnect (0.1)    mnist1d  0.782  0.580  0.594  0.202
    batch_norm           mnist1d  0.973  0.612  0.620  0.361
    input_noise (0.2)    mnist1d  0.903  0.594  0.604  0.309
    activation_noise     mnist1d  0.859  0.594  0.609  0.265  (std 0.3)
    max_norm (c = 1)     mnist1d  0.755  0.638  0.603  0.117
    augmentation         mnist1d  0.714  0.660  0.665  0.054  (shifts + noise)
    resnet               mnist1d  0.995  0.956  0.943  0.039  (convolutions suit the signals)
    stochastic_depth     mnist1d  0.932  0.912  0.901  0.020  (rate 0.5 costs accuracy here)
    ensemble (3)         mnist1d  0.980  0.664  0.625  0.316
    snapshot_ensemble    mnist1d  0.765  0.550  0.553  0.215  (3 SGDR cycles of 10 epochs)
    polyak (EMA 0.99)    mnist1d  0.934  0.596  0.594  0.338
    convnet (2x2 max)    digits   1.000  0.893  0.942  0.107
    tta (5 crops, pad 1) digits   0.890  0.807  0.883  0.083  convnet's net: 1-pixel shifts of
                                                             8x8 images it never saw hurt
    spatial_dropout 0.1  digits   0.996  0.890  0.953  0.106
    fractional_pool      digits   0.896  0.880  0.872  0.016  one fixed region draw
    fractional_pool_avg  digits   0.958  0.910  0.933  0.048  same net, mean of 20 draws;
                                                             spread 0.10 right / 0.21 wrong
    warp                 digits   0.994  0.873  0.931  0.121  (rotate 10, scale 0.1, shear 0.1)
    rand_augment         digits   0.976  0.887  0.917  0.089  (2 ops, magnitude 0.3)

Stochastic depth is compared with the same small ResNet without it (the 'resnet' row),
not with the MLP; the digits methods with the 'convnet' row. Test-time variants (mc_dropout,
tta, fractional_pool_avg) train nothing: they evaluate the net trained for the method they
copy. Spread: std over the T passes of the predicted class's probability (test, right / wrong).

Override any field with ``--config.<field>=value``, or ``--methods=none,l2,dropout``.
"""

from __future__ import annotations

import math

import ml_collections

METHODS = (
    "none",
    "l2",
    "l1",
    "elastic_net",
    "dropout",
    "mc_dropout",
    "dropconnect",
    "batch_norm",
    "input_noise",
    "activation_noise",
    "max_norm",
    "augmentation",
    "resnet",
    "stochastic_depth",
    "ensemble",
    "snapshot_ensemble",
    "polyak",
    "convnet",
    "tta",
    "spatial_dropout",
    "fractional_pool",
    "fractional_pool_avg",
    "warp",
    "rand_augment",
)
"""Every method the experiment knows, in report order."""

IMAGE_METHODS = METHODS[METHODS.index("convnet") :]
"""The methods on ``config.images`` (a convnet on images); the others run on ``config.dataset``."""


def get_config() -> ml_collections.ConfigDict:
    """The default configuration (see the module docstring)."""
    c = ml_collections.ConfigDict()
    c.dataset = "mnist1d"  # dataset name for jax231.pipelines.load_arrays.
    c.data_dir = ""  # loader data folder ('' = default).
    c.val_size = 500  # val = the last val_size training examples.
    c.train_size = 0  # keep the first train_size training examples (0 = all).
    c.test_size = 0  # keep the first test_size test examples (0 = all).
    c.methods = ",".join(METHODS)  # which regularisers to run (comma-separated).
    c.seeds = "0"  # seeds; mean ± std over them in the table.

    c.hidden_sizes = (100, 100)  # MLP of every MLP-based method.
    c.optimizer = "adam"  # jax231.optimizers name used for every method.
    c.learning_rate = 2e-3  # its (peak) learning rate.
    c.batch_size = 128  # minibatch size.
    c.num_epochs = 30  # passes over the training split (27 updates each with 3500 examples).

    c.l2 = 1e-2  # lambda of l2_penalty (R = lambda/2 sum w^2; biases excluded).
    c.l1 = 5e-4  # lambda of l1_penalty (R = lambda sum |w|); 1e-4 barely changed the gap.
    c.elastic_l1 = 5e-5  # elastic net: its L1 lambda ...
    c.elastic_l2 = 5e-3  # ... and its L2 lambda.
    c.drop_rate = 0.2  # dropout: probability of dropping a hidden activation (0.3: val 0.590).
    c.drop_connect_rate = 0.1  # DropConnect: probability of dropping a hidden weight (0.3 underfits).
    c.max_shift = 3  # augmentation: random circular shift in [-max_shift, max_shift] samples ...
    c.noise_std = 0.1  # ... plus Gaussian noise of this std.
    c.resnet = ml_collections.ConfigDict({"depth": 8, "width": 8})  # ResNet of the stochastic-depth pair,
    #                                        fed the (40, 1) signal as a 40 x 1 one-channel image.
    c.stochastic_depth_rate = 0.5  # 1 - survival probability of the last block (linear decay rule).
    c.ensemble_size = 3  # members of the model ensemble (trained together under vmap).
    c.snapshot_cycles = 3  # SGDR cycles (num_epochs / cycles epochs each); one snapshot per cycle.
    c.ema_decay = 0.99  # Polyak averaging: EMA decay of the evaluated parameters.
    c.mc_samples = 20  # mc_dropout / fractional_pool_avg: T passes averaged at test time.
    c.input_noise_std = 0.2  # input_noise: std of Gaussian noise on the MLP's input (train mode; 0.05, 0.1 alike).
    c.activation_noise_std = 0.3  # activation_noise: ... on every hidden activation (0.6, 1.0 underfit).
    c.max_norm = 1.0  # max_norm: radius c of ||w_j|| <= c per unit (0.5 underfits, 2.0 rarely binds).

    # Image methods: a small convnet (jax231.models.fmp_convnet) on 8 x 8 digits, where
    # crops, mirrors, warps and pooling make sense (MNIST-1D signals have one column).
    c.images = ml_collections.ConfigDict(
        {
            "dataset": "digits",  # dataset of the image methods.
            "val_size": 300,  # val = the last val_size training images.
            "train_size": 500,  # keep the first train_size training images (0 = all): small, so it overfits.
            "test_size": 0,  # keep the first test_size test images (0 = all 360).
            "num_layers": 3,  # conv3x3-relu-pool layers; widths width, 2 width, 3 width.
            "width": 16,
            "batch_size": 64,  # the image methods' minibatch ...
            "num_epochs": 30,  # ... passes over their training split ...
            "learning_rate": 2e-3,  # ... and learning rate (same optimizer).
        }
    )
    c.spatial_drop_rate = 0.1  # spatial_dropout: probability of dropping a whole feature map.
    c.fractional_ratio = math.sqrt(2)  # fractional_pool: size reduction per pool (8 -> 5 -> 3 -> 2).
    c.warp = ml_collections.ConfigDict({"rotate": 10.0, "scale": 0.1, "shear": 0.1})  # warp: max degrees,
    #                                        relative zoom and shear factor of the random affine warp.
    c.rand_augment = ml_collections.ConfigDict({"num_ops": 2, "magnitude": 0.3})  # RandAugment's N and M in [0, 1].
    c.tta = ml_collections.ConfigDict({"crops": 5, "pad": 1, "flip": False})  # tta: views of the convnet's
    #                                        test images (digits are not mirror-symmetric: no flips).
    return c
