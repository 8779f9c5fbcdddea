"""CIFAR-10 speedrun with the airbench recipe: library functions behind ``main.py``.

Every trick is a jax231 building block, composed here:

* net: :func:`jax231.models.airbench_net` (whitening conv from
  :func:`jax231.models.layers.whitening_filters`, Dirac-initialised convs, batch
  norm with a frozen scale, GELU, max pools);
* optimizer: Nesterov SGD with airbench's decoupled weight decay per group
  (:func:`jax231.optimizers.multi_transform` of ``chain(add_weight_decay(lambda_g),
  nesterov(eta_g))`` with ``eta_g lambda_g`` equal for every group, the
  batch-norm shifts at ``bias_scaler`` times the rate, the whitening filters
  frozen by ``set_to_zero``, the whitening bias trained for
  ``whiten_bias_epochs``), the triangular schedule
  (:func:`jax231.optimizers.schedules.piecewise_linear`), and Lookahead
  (:func:`jax231.optimizers.lookahead`, every 5 steps, airbench's cubic
  ramp of the EMA decay; the slow weights are evaluated);
* loss: :func:`jax231.losses.smoothed_cross_entropy` (label smoothing 0.2);
* data: the whole training set on the device; airbench's alternating flips (a random half
  mirrored once per run by :func:`jax231.pipelines.flip_half`, then every image mirrored in
  the odd epochs by :func:`jax231.pipelines.alternating_flip_fn`, which gets the step inside
  fit's compiled loop) and 2-pixel random translations on the device
  (:func:`jax231.pipelines.augment_batch`), both in fit's ``batch_fn``; every update of a run
  is one compiled ``fit`` loop;
* test-time augmentation: :func:`jax231.models.tta_predict` over the image,
  its mirror and the four 1-pixel diagonal shifts of both.

Where this differs from ``airbench94.py`` (each a choice, said once):

* the pre-flip mask is drawn from ``PRNGKey(seed)`` on the device (airbench: ``torch.rand``);
* translations repeat the edge pixels (airbench: reflection padding); TTA averages the
  probabilities of 10 equally weighted views with edge-repeated 1-pixel shifts (airbench:
  logits of 6 views, weights 1/4, 1/4 and 1/8 x 4, reflected shifts);
* Lookahead pulls the parameters only, not the batch-norm running statistics;
* the last partial batch of an epoch is dropped and the order is fit's per-epoch permutation.

Learning rate and weight decay are airbench's "per 1024 examples, decoupled"
values; with fit's MEAN loss over a batch of ``B`` (airbench sums) the rate of
the Nesterov rule is ``eta = lr B / 1024 / (1 + 1 / (1 - mu))`` and the L2
strength ``lambda = weight_decay / lr``, so that the decay of one step,
``eta lambda``, is independent of ``lr``, ``mu`` and the group's scaler.
"""

from __future__ import annotations

import functools
import math
import pathlib
import time
from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments import _common  # (first: selects matplotlib's Agg backend)

import matplotlib.pyplot as plt  # noqa: E402  isort: skip
from jax231 import losses, models, optimizers, pipelines
from jax231.models import layers
from jax231.optimizers import schedules
from jax231.training import eval_view, fit
from jax231.types import GradientTransformation, Model, Params

DATASETS = ("cifar10_shared", "synthetic")
OPTIMIZERS = ("nesterov", "muon")
_COUNTS = ("eval_examples", "translate", "train_size", "test_size")  # ints >= 0
IMAGE_SIZE = 32


class SeedResult(NamedTuple):
    """One training run.

    Attributes:
      seed: its seed.
      accuracy: test accuracy of the evaluated (Lookahead slow) weights, no TTA.
      tta_accuracy: the same with test-time augmentation.
      seconds: wall-clock seconds of ``fit`` (compilation excluded: it ran before).
      history: ``fit``'s history (per-epoch curves).
      tta_seconds: wall-clock seconds of the TTA evaluation of the test set (the first seed's
        includes compiling it; 0 without TTA).
    """

    seed: int
    accuracy: float
    tta_accuracy: float
    seconds: float
    history: dict
    tta_seconds: float = 0.0


class SpeedrunResult(NamedTuple):
    """What :func:`run` returns.

    Attributes:
      runs: one :class:`SeedResult` per seed.
      compile_seconds: wall-clock seconds of the warm-up ``fit`` of one step (compilation).
      setup_seconds: whitening-filter computation and putting the data on the device.
      summary: the final line, ``test accuracy: 93.12% (TTA), training 1,612 s``.
    """

    runs: list
    compile_seconds: float
    setup_seconds: float
    summary: str


def validate(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A one-line :class:`~experiments._common.UsageError` ``--config.<field>: expected ..., got ...``
    (exit 2 on the command line) for any bad field, before anything loads or compiles."""
    try:
        return _validate(config)
    except ValueError as err:
        raise _common.UsageError(f"--config.{err}") from err


def _validate(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    if config.dataset not in DATASETS:
        raise ValueError(f"dataset: expected one of {DATASETS}, got {config.dataset!r}")
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {OPTIMIZERS}, got {config.optimizer!r}")
    if config.conv_impl not in models.AIRBENCH_CONV_IMPLS:
        raise ValueError(f"conv_impl: expected one of {models.AIRBENCH_CONV_IMPLS}, got {config.conv_impl!r}")
    models.check_compute_dtype(config.compute_dtype)
    k = config.whiten_patch_size
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= IMAGE_SIZE or (IMAGE_SIZE - k) % k:
        tiles = [d for d in range(1, IMAGE_SIZE + 1) if (IMAGE_SIZE - d) % d == 0]
        raise ValueError(
            f"whiten_patch_size: expected a patch size that tiles the {IMAGE_SIZE}x{IMAGE_SIZE} images "
            f"(one of {tiles}), got {k!r}"
        )
    if len(config.widths) != 3:
        raise ValueError(f"widths: expected three group widths, got {tuple(config.widths)!r}")
    if not config.seeds:
        raise ValueError("seeds: expected at least one seed, got ()")
    for names, low in ((("batch_size", "whiten_examples", "lookahead_every"), 1), (_COUNTS, 0)):
        for name in names:
            value = config[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
    if not config.epochs > 0:
        raise ValueError(f"epochs: expected a number > 0, got {config.epochs!r}")
    return config


def synthetic_cifar(num_train: int, num_test: int, *, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """A tiny learnable stand-in for CIFAR-10 (smoke runs): each class a colour with a vertical
    gradient (unchanged by mirrors), plus noise; uint8."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(-30, 30, IMAGE_SIZE)[None, :, None, None]
    templates = rng.uniform(40, 215, size=(10, 1, 1, 3)) + ramp * rng.choice([-1.0, 1.0], size=(10, 1, 1, 1))

    def split(n: int) -> dict[str, np.ndarray]:
        labels = rng.integers(0, 10, size=n).astype(np.int32)
        noise = rng.normal(0, 25, size=(n, IMAGE_SIZE, IMAGE_SIZE, 3))
        images = np.clip(templates[labels] + noise, 0, 255).astype(np.uint8)
        return {"image": images, "label": labels}

    return {"train": split(num_train), "test": split(num_test)}


def load_data(config: ml_collections.ConfigDict) -> dict[str, dict[str, np.ndarray]]:
    """``{'train', 'test'}`` uint8 images and int32 labels (the shared CIFAR-10 copy or synthetic data)."""
    if config.dataset == "synthetic":
        return synthetic_cifar(config.train_size or 512, config.test_size or 256)
    out = {}
    for split, size in (("train", config.train_size), ("test", config.test_size)):
        arrays = pipelines.load_arrays("cifar10_shared", split)  # PIL-decoded, cached .npz: no TensorFlow
        n = size or len(arrays["label"])
        out[split] = {"image": np.round(arrays["image"][:n] * 255).astype(np.uint8), "label": arrays["label"][:n]}
    return out


def normalized(images: np.ndarray) -> np.ndarray:
    """uint8 pixels -> the network's normalised input (float64, for the whitening PCA)."""
    return (images / 255.0 - np.asarray(models.CIFAR10_MEAN)) / np.asarray(models.CIFAR10_STD)


def param_labels(params: Params) -> Params:
    """The optimizer group of every parameter: ``whiten_filters``, ``whiten_bias``, ``norm_bias``, ``weights``."""

    def label(path: tuple, _: Any) -> str:
        names = [getattr(k, "key", str(k)) for k in path]
        if names[0] == "whiten":
            return "whiten_filters" if names[-1] == "w" else "whiten_bias"
        return "norm_bias" if names[-1] == "beta" else "weights"

    return jax.tree_util.tree_map_with_path(label, params)


def muon_labels(params: Params) -> Params:
    """:func:`param_labels` with the ``weights`` split into the conv ``filters`` and the ``head``."""

    def split(label: str, p: Any) -> str:
        return label if label != "weights" else ("filters" if jnp.ndim(p) == 4 else "head")

    return jax.tree_util.tree_map(split, param_labels(params), params)


def make_muon_optimizer(
    config: ml_collections.ConfigDict, steps_per_epoch: int, total_steps: int
) -> GradientTransformation:
    """airbench94_muon's optimizers: Muon on the conv filters, Nesterov SGD on the rest.

    PyTorch's SGD there sees the SUM of the batch's losses with ``weight_decay = wd / lr`` and
    ``wd = 2e-6 B``; with fit's mean loss the same steps are ``eta = lr B`` and
    ``lambda = 2e-6 / lr`` (:func:`jax231.optimizers.add_weight_decay` before
    :func:`jax231.optimizers.nesterov`). Muon (scale-free: Newton-Schulz normalises) is
    :func:`jax231.optimizers.muon` without bias correction, then
    :func:`jax231.optimizers.normalize_weights`. Every rate decays linearly to 0 over the run,
    the whitening bias's over ``whiten_bias_epochs`` (then frozen).
    """
    m = config.muon
    decay = schedules.piecewise_linear((0, max(total_steps, 1)), (1.0, 0.0))
    bias_steps = max(1, int(config.whiten_bias_epochs * steps_per_epoch))
    bias_decay = schedules.piecewise_linear((0, bias_steps), (1.0, 0.0))

    def sgd(lr: float, shape) -> GradientTransformation:
        return optimizers.chain(
            optimizers.add_weight_decay(m.weight_decay / lr),
            optimizers.nesterov(lambda step: lr * config.batch_size * shape(step), momentum=m.sgd_momentum),
        )

    filters = optimizers.chain(
        optimizers.muon(
            lambda step: m.lr * decay(step), beta=m.momentum, ns_steps=m.ns_steps, eps=1e-7, bias_correction=False
        ),
        optimizers.normalize_weights(),
    )
    return optimizers.multi_transform(
        {
            "filters": filters,
            "head": sgd(m.head_lr, decay),
            "norm_bias": sgd(m.bias_lr, decay),
            "whiten_bias": sgd(m.bias_lr, bias_decay),
            "whiten_filters": optimizers.set_to_zero(),
        },
        muon_labels,
    )


def make_optimizer(config: ml_collections.ConfigDict, steps_per_epoch: int, total_steps: int) -> GradientTransformation:
    """Lookahead over the per-group Nesterov SGD (module docstring), or :func:`make_muon_optimizer`."""
    if config.optimizer == "muon":
        return make_muon_optimizer(config, steps_per_epoch, total_steps)
    eta = config.lr * config.batch_size / 1024 / (1 + 1 / (1 - config.momentum))
    lam = config.weight_decay / config.lr
    warm = max(1, int(total_steps * config.warmup_fraction))
    shape = schedules.piecewise_linear((0, warm, max(total_steps, warm + 1)), tuple(config.lr_knots))
    bias_steps = int(config.whiten_bias_epochs * steps_per_epoch)

    def group(scaler: float, until: int | None = None) -> GradientTransformation:
        def rate(step):
            alive = 1.0 if until is None else jnp.where(jnp.asarray(step) < until, 1.0, 0.0)
            return eta * scaler * shape(step) * alive

        return optimizers.chain(
            optimizers.add_weight_decay(lam / scaler), optimizers.nesterov(rate, momentum=config.momentum)
        )

    inner = optimizers.multi_transform(
        {
            "weights": group(1.0),
            "norm_bias": group(config.bias_scaler),
            "whiten_bias": group(1.0, until=bias_steps),
            "whiten_filters": optimizers.set_to_zero(),
        },
        param_labels,
    )
    decay = config.lookahead_decay**config.lookahead_every

    def slow_step_size(step):  # airbench: phi <- lerp(phi, theta, 1 - decay_t), decay_t = 0.95^5 (t / T)^3
        return 1.0 - decay * ((step + 1) / total_steps) ** 3

    return optimizers.lookahead(inner, sync_period=config.lookahead_every, slow_step_size=slow_step_size)


def translate_fn(max_shift: int):
    """fit's ``batch_fn``: random translations by up to ``max_shift`` pixels (edges repeated), on the device."""

    def batch_fn(key, batch):  # (uint8 pixels stay uint8 on the device: the shifts only copy pixels)
        pixels = batch["image"]
        moved = pipelines.augment_batch(key, pixels.astype(jnp.float32), pad_crop=0, flip=False, translate=max_shift)
        return {**batch, "image": moved.astype(pixels.dtype)}

    return batch_fn


def augment_fn(config: ml_collections.ConfigDict, steps_per_epoch: int):
    """fit's ``batch_fn``: alternating flips (``config.flip``) then translations (``config.translate``), or ``None``."""
    shift = translate_fn(config.translate) if config.translate else None
    return pipelines.alternating_flip_fn(steps_per_epoch, shift) if config.flip else shift


def train_arrays(config: ml_collections.ConfigDict, train: Mapping[str, np.ndarray], seed: int) -> dict:
    """The training set on the device, a random half of it mirrored when ``config.flip`` (per seed)."""
    arrays = {k: jnp.asarray(v) for k, v in train.items()}
    if config.flip:
        arrays["image"] = pipelines.flip_half(jax.random.PRNGKey(seed), arrays["image"])
    return arrays


@functools.partial(jax.jit, static_argnames=("model", "batch_size", "tta"))
def _predict(model: Model, params, state, images, *, batch_size: int, tta: bool):
    """Class probabilities of every image, ``lax.map`` over batches (plain or TTA)."""
    n = images.shape[0]
    batches = images.reshape((n // batch_size, batch_size) + images.shape[1:])

    def logits(x):
        return model.apply(params, state, x, train=False)[0]

    def one(x):
        if tta:
            return models.tta_predict(logits, x, flip=True, crops=5, pad=1, pad_mode="edge")
        return jax.nn.softmax(logits(x))

    return jax.lax.map(one, batches).reshape(n, -1)


def accuracy(model: Model, params, state, data: Mapping[str, np.ndarray], *, tta: bool) -> float:
    """Test accuracy (with or without TTA), in batches of a divisor of the test set's size: at most
    500 images, 100 with TTA (10 views each: the im2col patches of 1,000 images take ~0.8 GB)."""
    n = len(data["label"])
    batch_size = math.gcd(n, 100 if tta else 500)
    probs = _predict(model, params, state, jnp.asarray(data["image"]), batch_size=batch_size, tta=tta)
    return float(np.mean(np.argmax(np.asarray(probs), -1) == data["label"]))


class _Programs(NamedTuple):
    """The objects fit caches its compilation on (one per config, shared by the seeds)."""

    model: Model
    optimizer: GradientTransformation
    loss: Any
    batch_fn: Any
    num_steps: int
    eval_every: int


def _programs(config: ml_collections.ConfigDict, train: Mapping[str, np.ndarray]) -> _Programs:
    sample = normalized(train["image"][: config.whiten_examples])
    whitening = layers.whitening_filters(sample, patch_size=config.whiten_patch_size, eps=config.whiten_eps)
    model = models.airbench_net(
        whitening,
        widths=tuple(config.widths),
        scale=config.head_scale,
        head_std=config.head_init_std or None,
        conv_impl=config.conv_impl,
        compute_dtype=config.compute_dtype,
    )
    steps_per_epoch = len(train["label"]) // config.batch_size
    if steps_per_epoch < 1:
        raise ValueError(
            f"batch_size: expected at most the {len(train['label'])} training images, got {config.batch_size}"
        )
    num_steps = math.ceil(steps_per_epoch * config.epochs)
    eval_every = steps_per_epoch if config.eval_examples else num_steps
    return _Programs(
        model,
        make_optimizer(config, steps_per_epoch, num_steps),
        functools.partial(losses.smoothed_cross_entropy, smoothing=config.label_smoothing),
        augment_fn(config, steps_per_epoch),
        num_steps,
        eval_every,
    )


def _fit(programs: _Programs, train, val, config, *, seed: int, num_steps: int):
    return fit(
        programs.model,
        programs.optimizer,
        train=train,
        val=val,
        loss=programs.loss,
        num_steps=num_steps,
        batch_size=config.batch_size,
        eval_every=min(programs.eval_every, num_steps),
        seed=seed,
        batch_fn=programs.batch_fn,
        explosion_factor=config.explosion_factor,
        progress=config.progress,
        eval_batch_size=500,
    )


def run(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> SpeedrunResult:
    """Trains every seed of ``config``, writes tables, plots and ``results.json`` under ``workdir``."""
    config = validate(config)
    workdir = pathlib.Path(workdir)
    data = load_data(config)
    start = time.monotonic()
    programs = _programs(config, data["train"])
    train = train_arrays(config, data["train"], config.seeds[0])
    val = {k: v[: config.eval_examples] for k, v in data["test"].items()} if config.eval_examples else None
    setup_seconds = time.monotonic() - start
    start = time.monotonic()
    _fit(programs, train, val, config, seed=config.seeds[0], num_steps=1)  # compiles the loop and the evaluation
    compile_seconds = time.monotonic() - start
    runs = []
    for seed in config.seeds:
        train = jax.block_until_ready(train_arrays(config, data["train"], seed))  # (the pre-flip: untimed)
        start = time.monotonic()
        result = _fit(programs, train, val, config, seed=seed, num_steps=programs.num_steps)
        jax.block_until_ready(result.state.params)
        seconds = time.monotonic() - start
        view = eval_view(programs.optimizer, result.state)
        plain = accuracy(programs.model, view.params, view.model_state, data["test"], tta=False)
        start = time.monotonic()
        tta = accuracy(programs.model, view.params, view.model_state, data["test"], tta=True) if config.tta else plain
        tta_seconds = time.monotonic() - start if config.tta else 0.0
        runs.append(SeedResult(seed, plain, tta, seconds, result.history, tta_seconds))
    summary = _summary(runs, tta=config.tta)
    _report(workdir, config, runs, compile_seconds, setup_seconds, summary)
    return SpeedrunResult(runs, compile_seconds, setup_seconds, summary)


def _summary(runs: list, *, tta: bool) -> str:
    acc = np.mean([r.tta_accuracy for r in runs])
    seconds = np.mean([r.seconds for r in runs])
    return f"test accuracy: {100 * acc:.2f}% ({'TTA' if tta else 'no TTA'}), training {seconds:,.0f} s"


def _report(workdir: pathlib.Path, config, runs: list, compile_seconds: float, setup_seconds: float, summary: str):
    rows = [
        {
            "seed": r.seed,
            "test_accuracy": r.accuracy,
            "tta_test_accuracy": r.tta_accuracy,
            "training_seconds": r.seconds,
            "with_compilation_seconds": r.seconds + compile_seconds,
            "tta_seconds": r.tta_seconds,
        }
        for r in runs
    ]
    fmt = functools.partial(_common.format_mean_std, digits=2, scale=100.0)
    summary_rows = [
        {
            "evaluation": "no TTA",
            "test accuracy % (mean ± std)": fmt([r.accuracy for r in runs]),
            "n": len(runs),
        },
        {
            "evaluation": "TTA (flip x {image, 4 one-pixel shifts})",
            "test accuracy % (mean ± std)": fmt([r.tta_accuracy for r in runs]),
            "n": len(runs),
        },
    ]
    notes = (
        f"{summary}; compilation {compile_seconds:.1f} s, setup (whitening, data to device) {setup_seconds:.1f} s; "
        f"backend {jax.default_backend()}, conv_impl={config.conv_impl}, compute_dtype={config.compute_dtype}."
    )
    _common.write_tables(workdir, "runs", rows, title="Runs")
    _common.write_tables(workdir, "tta", summary_rows, title="Test-time augmentation", notes=notes)
    _plot(workdir, runs)
    _common.write_json(
        workdir / "results.json",
        {"config": config.to_dict(), "runs": rows, "compile_seconds": compile_seconds, "summary": summary},
    )


def _plot(workdir: pathlib.Path, runs: list) -> None:
    history = runs[0].history
    step = history["step"]
    curves = {
        "training loss": {"train": (step, [r.history["train_loss"] for r in runs])},
        "accuracy": {
            "train": (step, [r.history["train_accuracy"] for r in runs]),
            "test subset": (step, [r.history["val_accuracy"] for r in runs]),
        },
    }
    _common.plot_curves(
        workdir / "curves.png", curves, ylabel="value", title="speedrun: training curves (mean, min-max over seeds)"
    )
    _plot_tta(workdir / "tta.png", runs)


def _plot_tta(path: pathlib.Path, runs: list) -> None:
    """A bar per evaluation (no TTA, TTA), the mean over seeds with the seeds as dots."""
    fig, ax = plt.subplots(figsize=(4, 3.2))
    for i, (_name, values) in enumerate(
        (("no TTA", [r.accuracy for r in runs]), ("TTA", [r.tta_accuracy for r in runs]))
    ):
        values = 100 * np.asarray(values)
        ax.bar(i, values.mean(), color=("#999999", "#1f77b4")[i], width=0.6)
        ax.plot(np.full(len(values), i), values, "k.", ms=6)
        ax.text(i, values.mean(), f"{values.mean():.2f}%", ha="center", va="bottom", fontsize=9)
    low = 100 * min(min(r.accuracy, r.tta_accuracy) for r in runs)
    ax.set_ylim(max(0.0, low - 2.0), 100 * max(r.tta_accuracy for r in runs) + 1.0)
    ax.set_xticks([0, 1], ["no TTA", "TTA"])
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"TTA vs no TTA (n={len(runs)})")
    fig.tight_layout()
    _common.save_figure(fig, path)
