"""CIFAR-10 to 94% with the airbench recipe (the tricks: ``experiment.py``'s docstring).

Pick a preset after a colon; any field can be changed with ``--config.<field>=...``.
Commands run from the repository root. The run ends by printing one line,
``test accuracy: 93.12% (TTA), training 1,612 s`` (mean over the seeds; training
seconds exclude compilation, which ``tta.md`` reports beside them).

* ``tiny`` -- smoke run on 512 synthetic images (the test suite's)::

    python -m experiments.speedrun.main --config=experiments/speedrun/config.py:tiny --workdir=/tmp/speedrun_tiny

* ``cpu93`` -- airbench93's recipe (widths 64/128/128, 11 epochs; 93.00% published on true
  CIFAR-10, n=50); target >= 93.0% in <= 30 min wall on the 2-core CPU::

    python -m experiments.speedrun.main --config=experiments/speedrun/config.py:cpu93 --workdir=/tmp/speedrun_cpu93

  MEASURED on the 2-core reference CPU, quiet machine (load about 2), three seeds, n=3. Seed 0
  (fourth session) and seeds 1 and 2 (fifth session, one command, on code whose speedrun path is
  unchanged; a re-run of seed 0, stopped at step 192, followed the fourth session's curve)::

    python -m experiments.speedrun.main --config=experiments/speedrun/config.py:cpu93 \
      --config.seeds="(1,2)" --workdir=/tmp/s5/cpu93_s12

  | seed | no TTA | TTA | training s | with compilation s | TTA s |
  |---|---|---|---|---|---|
  | 0 | 88.42% | 89.35% | 1,277 | 1,291 | 65 |
  | 1 | 88.45% | 89.51% | 1,319 | 1,335 | 64 |
  | 2 | 88.24% | 89.12% | 1,305 | 1,320 | 62 |

  **89.33 ± 0.20% with TTA** (88.37 ± 0.11% without), training 1,300 s on average; one seed takes
  about 23 min of wall time all told (the two-seed command: 46 min 31 s, 5,331 s user + 51 s sys).
  The time fits the 30-minute target; the accuracy misses 93.0% by 3.7 points, and that is the
  data's: airbench93's recipe written in PyTorch (``benchmarks/speedrun_torch.py``) on the same
  JPEG copy gets 88.64% without TTA and **89.43% with airbench's own TTA** (seed 0, 1,453 s of
  training), the same as jax231 within the seed-to-seed spread. airbench93 publishes 93.00% (n=50)
  on true CIFAR-10, so the JPEG re-encoding costs ~3.6 points, not the ~0.5 the dataset's README
  expected. 93% on this copy needs a bigger or longer recipe than airbench93's.

  On the eighth session's 2-core AMD Zen 5 machine (the same command with ``--config.seeds="(0,)"``,
  load ~1.5, nothing else running): seed 0 **89.01% with TTA** (88.18% without), training 1,019 s,
  compilation 14 s, TTA 55 s, 18 min 26 s wall all told (1,984 s user + 53 s sys). The bits differ
  from the Zen 4 run of seed 0 (another CPU rounds XLA's sums differently); n=1 on this machine.

* ``cpu94`` -- airbench94's net and hyperparameters, trained 14 epochs instead of 9.9 to make up
  for the JPEG copy; target >= 94.0% in <= 75 min on the 2-core CPU::

    python -m experiments.speedrun.main --config=experiments/speedrun/config.py:cpu94 --workdir=/tmp/speedrun_cpu94

  MEASURED (fifth session, 2026-12-01, quiet 2-core machine, load about 2)::

    python -m experiments.speedrun.main --config=experiments/speedrun/config.py:cpu94 \
      --config.seeds="(0,)" --workdir=/tmp/s5/cpu94

  seed 0: **91.35% test with TTA** (90.45% without), training 2,790 s (46.5 min), compilation
  17 s, TTA 126 s; 49 min 17 s wall for the whole command, 5,770 s user + 38 s sys. The time fits
  the 75-minute target; the accuracy misses 94.0% by 2.65 points, the JPEG copy's share as for
  ``cpu93`` (airbench94 at 9.9 epochs: 94.01% published, n=1000, on true CIFAR-10; the copy costs
  airbench93's recipe ~3.6 points, ``benchmarks/speedrun_torch.py``).

  Seed 1 (sixth session, 2026-12-02, same machine, load 1-2; a test run beside it for ~8 of its
  minutes)::

    python -m experiments.speedrun.main --config=experiments/speedrun/config.py:cpu94 \
      --config.seeds="(1,)" --workdir=/tmp/s6/cpu94_s1

  **91.38% with TTA** (90.52% without), training 2,967 s, compilation 20 s, TTA 115 s; 52 min 6 s
  wall, 6,056 s user + 42 s sys. Over seeds 0 and 1: **91.37 ± 0.02% with TTA**, 90.49 ± 0.05%
  without (n=2).

  Seed 2 (seventh session, 2026-12-02, same machine but NOT quiet: the session's kernel work, a
  full test run and benchmarks shared the 2 cores with it for most of its time)::

    python -m experiments.speedrun.main --config=experiments/speedrun/config.py:cpu94 \
      --config.seeds="(2,)" --workdir=/tmp/s7/cpu94_s2

  **91.10% with TTA** (89.85% without), training 5,073 s (inflated by the load: 7,078 s user +
  60 s sys against seed 1's 6,098 s CPU), compilation 27 s, TTA 149 s; 1 h 28 min wall. Over seeds
  0, 1 and 2: **91.28 ± 0.15% with TTA**, 90.27 ± 0.37% without (n=3, sample std). The quiet-machine
  time is seeds 0 and 1's, 47-50 min of training inside the 75-minute target.

* ``gpu94_muon`` -- airbench94_muon's recipe (94.01% in 2.59 s on an A100 published, n=200, true
  CIFAR-10): Muon (3 Newton-Schulz steps, momentum 0.6, rate 0.24, weights held at norm
  sqrt(fan_out)) on the conv filters, Nesterov SGD (momentum 0.85) at 0.053 on the biases and 0.67
  on the head, linear decay to 0, no Lookahead, batch 2,000, 8 epochs, head scale 1/256 with
  unit-std init. Differences: Newton-Schulz in float32 (airbench: bfloat16), the differences of
  ``experiment.py``'s docstring::

    python -m experiments.speedrun.main --config=experiments/speedrun/config.py:gpu94_muon --workdir=/tmp/speedrun_gpu94_muon

  UNMEASURED (``benchmarks/gpu/run.sh`` runs it); smoke-tested on ``tiny`` with
  ``--config.optimizer=muon`` (tests/test_gpu_run_sh.py).

* ``gpu94``, ``gpu95``, ``gpu96`` -- targets >= 94% in <= 3 s, >= 95% in <= 12 s, >= 96% in <= 45 s
  of training on an H100/H200 (bf16 compute)::

    python -m experiments.speedrun.main --config=experiments/speedrun/config.py:gpu94 --workdir=/tmp/speedrun_gpu94

  UNMEASURED: no GPU was lent to this session. ``benchmarks/gpu/run.sh`` runs ``gpu94``.
  The GPU image has no TensorFlow: the data path is PIL + NumPy only
  (``load_arrays('cifar10_shared')`` decodes the JPEG tar once into a cached ``.npz``), so the
  run needs ``cifar10-jpeg.tar.gz`` in ``../shared/datasets/`` beside the checkout or in
  ``shared/datasets/`` inside it (``benchmarks/gpu/prepare.sh`` copies it there).

Every preset writes ``runs.md``: per seed, training seconds without compilation, with it
(``with_compilation_seconds``: the one-step warm-up ``fit`` that compiles the loop, added), and
``tta_seconds`` (the TTA pass over the test set; the first seed's includes compiling it).
"""

from __future__ import annotations

import ml_collections

PRESETS = ("tiny", "cpu93", "cpu94", "gpu94", "gpu94_muon", "gpu95", "gpu96")

CPU_MEASUREMENTS = """\
Measured on the 2-core reference CPU, 2026-12-01, shared with 7 other jobs (load average 15-40):
CPU seconds (user + sys of this process) are the comparable figures, wall times are inflated.

Convolution implementation inside fit's compiled loop (the same step, data on the device, 3-4
updates after compilation, synthetic images; ``python -m experiments.speedrun.measure
<preset> <conv_impl>``, figures per update):

  net               batch  conv_impl  CPU-s / update   (a plain jitted step, outside the loop)
  tiny (16/32/32)   128    xla        3.85             0.21
  tiny (16/32/32)   128    im2col     0.28             0.20
  cpu93 (64/128/128) 1024  im2col     6.43             -
  cpu94 (64/256/256) 1024  im2col     10.72            -

The tiny rows were taken before the training core's canonical-layout rewrite of loop bodies
(``jax231.training.loop_body``, the root cause of the in-loop slowdown: XLA:CPU's
ConvCanonicalization visits the entry computation only). After it, measured the same way on a
quieter machine (load 2-6): cpu93 at batch 1,024 ``xla`` 12.25 vs ``im2col`` 6.34 CPU-s per
update, so im2col was ~1.9x cheaper for this net even without the bug. Then (fourth session)
``import jax231`` took XLA:CPU's convolutions from YNNPACK to Eigen (``jax231/_xla_cpu.py``: the
filter gradient was 2-3x slower in YNNPACK), and ``xla`` became the cheaper one: cpu93 ``xla``
4.78 vs ``im2col`` 6.13 CPU-s per update (load 5-16), cpu94 ``xla`` 8.09 CPU-s per update (load
6-8; ``im2col`` 10.72 from above). ``cpu93`` and ``cpu94`` use ``conv_impl='xla'``; ``tiny`` keeps
``'im2col'`` so the smoke test runs that path. The GPU presets use
``'xla'`` (cuDNN). cpu94's 10.72 CPU-s per 1,024 images is ~70 GFLOP per CPU-second (0.73
GFLOP per image for forward and backward).

bfloat16 on this CPU (jitted train step outside fit, cpu93 net, batch 128, CPU-s per step):
im2col 0.89 float32 vs 1.43 bfloat16; xla 1.06 vs 1.07. No gain, so ``compute_dtype='bfloat16'``
is refused on the CPU backend (one line, exit 2).

Reduced accuracy run (NOT a preset's result: a subset, fewer epochs, one seed)::

    python -m experiments.speedrun.main --config=experiments/speedrun/config.py:cpu93 \
      --workdir=/tmp/speedrun_reduced --config.train_size=5000 --config.test_size=1000 \
      --config.batch_size=256 --config.epochs=6.0 --config.eval_examples=500 --config.seeds="(0,)"

cpu93's net and recipe on the first 5,000 training images, 114 updates of 256: 62.6% on the
first 1,000 test images without TTA, 64.3% with TTA (n=1); training loss 2.21 -> 1.43 (label
smoothing 0.2 keeps it above ~0.9). 261 CPU-s in all (233.8 user + 27.2 sys), 16 min wall at a
27% CPU share; peak RSS 9 GB, from TTA in batches of 500 images (now 100). It shows the recipe
trains and TTA helps; it does not show that cpu93 reaches 93%.
"""


def base_config() -> ml_collections.ConfigDict:
    """airbench94's hyperparameters (``legacy/airbench94.py``), every field commented."""
    config = ml_collections.ConfigDict()
    # Data: 'cifar10_shared' (../shared/datasets) or 'synthetic' (smoke runs).
    config.dataset = "cifar10_shared"
    # Keep the first train_size / test_size images (0 = all).
    config.train_size = 0
    config.test_size = 0
    # Channels of the three conv groups.
    config.widths = (64, 256, 256)
    # Whitening conv: patch size k (k x k filters, 2 k^2 C channels), eigenvalue epsilon, images used.
    config.whiten_patch_size = 2
    config.whiten_eps = 5e-4
    config.whiten_examples = 5000
    # Implementation of every convolution: 'auto', 'xla' (lax.conv) or 'im2col' (see cpu93's docstring).
    config.conv_impl = "auto"
    # Compute precision of convolutions and head: 'float32' or 'bfloat16' (GPU/TPU only).
    config.compute_dtype = "float32"
    # Passes over the training set (fractional: the last one stops early) and batch size.
    config.epochs = 9.9
    config.batch_size = 1024
    # Learning rate per 1024 examples (decoupled from momentum: divided by 1 + 1/(1 - momentum)).
    config.lr = 11.5
    # Nesterov momentum.
    config.momentum = 0.85
    # Weight decay per 1024 examples, decoupled from the learning rate (L2 strength weight_decay / lr).
    config.weight_decay = 0.0153
    # Learning-rate multiplier of the batch-norm shifts (not of their weight decay).
    config.bias_scaler = 64.0
    # Label smoothing alpha of the cross-entropy.
    config.label_smoothing = 0.2
    # Epochs during which the whitening conv's bias trains (then frozen).
    config.whiten_bias_epochs = 3
    # Triangular schedule: multipliers at step 0, at warmup_fraction of the run, at the end.
    config.lr_knots = (0.2, 1.0, 0.07)
    config.warmup_fraction = 0.23
    # Lookahead: synchronise every lookahead_every steps, slow-weight decay lookahead_decay^every * (t/T)^3.
    config.lookahead_every = 5
    config.lookahead_decay = 0.95
    # Augmentation: airbench's alternating flips (pipelines.alternating_flip_fn), random translations
    # of up to translate pixels.
    config.flip = True
    config.translate = 2
    # Test-time augmentation (flip x {image, 4 one-pixel diagonal shifts}).
    config.tta = True
    # Test images evaluated after every epoch for the curves (0 = evaluate only at the end).
    config.eval_examples = 2000
    # Seeds: one run each (mean ± std over them).
    config.seeds = (0, 1, 2)
    # fit's divergence guard: a loss above this many times the first one stops the run.
    config.explosion_factor = 10.0
    # Progress bar on stderr.
    config.progress = True
    # Head: logits multiplied by head_scale; initial weights rescaled to std head_init_std (0 = PyTorch init).
    config.head_scale = 1.0 / 9.0
    config.head_init_std = 0.0
    # 'nesterov' (airbench94: the fields above) or 'muon' (airbench94_muon: the muon fields below for
    # the conv filters, Nesterov SGD for the head and the biases, a linear decay to 0, no Lookahead;
    # lr, momentum, weight_decay, bias_scaler, lr_knots, warmup_fraction, lookahead_* then unused).
    config.optimizer = "nesterov"
    config.muon = ml_collections.ConfigDict(
        {
            "lr": 0.24,  # Muon's rate on the conv filters (orthogonalised Nesterov momentum)
            "momentum": 0.6,  # Muon's momentum
            "ns_steps": 3,  # Newton-Schulz iterations
            "sgd_momentum": 0.85,  # Nesterov momentum of the SGD groups
            "bias_lr": 0.053,  # SGD rate of the whitening bias and the batch-norm shifts, per example
            "head_lr": 0.67,  # SGD rate of the head, per example
            "weight_decay": 2e-6,  # L2 of the SGD groups per example (PyTorch: weight_decay = wd / lr, wd = 2e-6 B)
        }
    )
    return config


def get_config(preset: str = "cpu94") -> ml_collections.ConfigDict:
    """Returns the named preset (see the module docstring)."""
    if preset not in PRESETS:
        raise ValueError(f"preset: expected one of {PRESETS}, got {preset!r}")
    config = base_config()
    if preset == "tiny":
        config.dataset = "synthetic"
        config.train_size, config.test_size = 512, 250
        config.widths = (16, 32, 32)
        config.whiten_examples = 256
        config.batch_size = 128
        config.epochs = 2.0
        config.eval_examples = 250
        config.seeds = (0,)
        config.progress = False
        config.conv_impl = "im2col"
    elif preset == "cpu93":
        config.widths = (64, 128, 128)
        config.epochs = 11.0
        config.conv_impl = "xla"  # XLA's Eigen convolutions: 4.78 vs im2col 6.13 CPU-s per update
    elif preset == "cpu94":
        config.epochs = 14.0
        config.conv_impl = "xla"  # 8.09 vs im2col 10.72 CPU-s per update
    elif preset in ("gpu94", "gpu94_muon", "gpu95", "gpu96"):
        config.compute_dtype = "bfloat16"
        config.conv_impl = "xla"
        config.eval_examples = 0
        config.progress = False
        config.seeds = (0, 1, 2, 3, 4)
        if preset == "gpu95":  # airbench95: wider, longer
            config.widths, config.epochs, config.lr = (128, 384, 384), 15.0, 10.0
        elif preset == "gpu96":
            config.widths, config.epochs, config.lr = (128, 512, 512), 40.0, 9.0
        elif preset == "gpu94_muon":  # airbench94_muon.py: batch 2,000, 8 epochs
            config.optimizer, config.batch_size, config.epochs = "muon", 2000, 8.0
            config.head_scale, config.head_init_std = 1.0 / config.widths[2], 1.0
    return config
