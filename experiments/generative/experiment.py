"""Library half of ``python -m experiments.generative.main`` (see config.py).

Each model has one ``run_<model>`` function returning a table row and its samples;
:func:`run` trains the digits classifier of the sample score, runs the selected
models and writes ``results.md`` / ``results.csv``, ``results.json``,
``report.md`` and the PNG figures into the workdir.

The sample score (:func:`jax231.generative.classifier_score`): for ``N``
samples with predicted class probabilities :math:`p(y \\mid x_n)` from an MLP
trained on the real digits, the mean confidence is
:math:`\\frac1N \\sum_n \\max_y p(y \\mid x_n)` and the class entropy is
:math:`H(\\bar p)` in nats with :math:`\\bar p = \\frac1N \\sum_n p(\\cdot \\mid x_n)`
(``ln 10 = 2.30`` for samples spread evenly over the ten digits); the
Inception-score analogue is :math:`\\exp(\\frac1N \\sum_n \\mathrm{KL}(p(\\cdot \\mid x_n) \\| \\bar p))`.
"""

from __future__ import annotations

import math
import pathlib
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments import _common
from experiments._common import UsageError
from experiments.generative import figures
from jax231 import generative, models, optimizers, training

MODELS = ("baseline", "autoencoder", "vae", "gan", "pixelcnn", "pixelrnn")
COLUMNS = (
    "model",
    "test_bpd",
    "test_bpd_elbo",
    "mean_confidence",
    "class_entropy",
    "inception_score",
    "recon_mse",
    "steps",
    "seconds",
    "cpu_seconds",
)
Row = dict[str, Any]


class Result(NamedTuple):
    """What :func:`run` produced.

    Attributes:
      rows: one table row per model (keys :data:`COLUMNS`), plus the real test images' score.
      samples: model name -> ``(num_samples, H, W, C)`` sample images.
      classifier_accuracy: test accuracy of the digits classifier of the sample score.
      seconds: wall time of the whole run.
    """

    rows: list[Row]
    samples: dict[str, np.ndarray]
    classifier_accuracy: float
    seconds: float


class Context(NamedTuple):
    """What every ``run_<model>`` receives."""

    config: ml_collections.ConfigDict
    splits: _common.Splits
    score: Callable[[np.ndarray], generative.SampleScore]
    workdir: pathlib.Path
    curves: dict[str, Any]


# ----------------------------------------------------------------------------- building
def _usage(config: ml_collections.ConfigDict, prefix: str, fn: Callable[[], Any]) -> Any:
    """Runs a library constructor; its ``ValueError`` ``name: ...`` becomes ``--config.<field>: ...``.

    The field is ``prefix + name`` (``vae_`` + ``latent_dim``) or ``name`` when that is a config field.
    """
    try:
        return fn()
    except ValueError as err:
        name, _, rest = str(err).partition(": ")
        field = next((f for f in (prefix + name, name) if f in config), None)
        raise UsageError(f"--config.{field}: {rest}" if field else f"--config.{prefix}*: {err}") from None


def build_vae(config: ml_collections.ConfigDict, image_shape) -> models.VAE:
    return _usage(
        config,
        "vae_",
        lambda: models.vae(
            image_shape=image_shape,
            latent_dim=config.vae_latent_dim,
            hidden_dims=tuple(config.vae_hidden),
            decoder=config.vae_decoder,
            levels=config.levels,
        ),
    )


def build_gan(config: ml_collections.ConfigDict, image_shape) -> generative.GanStep:
    def make():
        g_opt = optimizers.adam(config.gan_lr, beta1=config.gan_beta1)
        d_opt = optimizers.adam(config.gan_lr, beta1=config.gan_beta1)
        return generative.make_gan_step(
            models.dcgan_generator(image_shape=image_shape, width=config.gan_width, conv_impl=config.conv_impl),
            models.dcgan_discriminator(width=config.gan_width, conv_impl=config.conv_impl),
            g_opt,
            d_opt,
            latent_dim=config.gan_latent_dim,
            generator_loss_kind=config.gan_generator_loss,
            label_smoothing=config.gan_label_smoothing,
        )

    return _usage(config, "gan_", make)


def validate_config(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """Checks every field before any data is loaded; returns the selected models.

    Raises:
      UsageError: one line naming the field (``--config.latent_dim: expected ...``).
    """
    selected = _common.parse_choices("config.models", config.models, MODELS)
    _common.dataset_registry().check(config.dataset)
    for name in (
        "batch_size",
        "eval_every",
        "num_samples",
        "importance_samples",
        "classifier_steps",
        "classifier_hidden",
        "ae_steps",
        "vae_steps",
        "gan_steps",
        "pixelcnn_steps",
        "pixelrnn_steps",
        "val_size",
        "early_stopping_patience",
    ):
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"--config.{name}: expected an int >= 1, got {value!r}")
    for name in ("train_size", "test_size"):
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"--config.{name}: expected an int >= 0 (0: all), got {value!r}")
    if isinstance(config.downsample, bool) or not isinstance(config.downsample, int) or config.downsample < 1:
        raise UsageError(f"--config.downsample: expected an int >= 1, got {config.downsample!r}")
    if not config.temperature > 0:
        raise UsageError(f"--config.temperature: expected a float > 0, got {config.temperature!r}")
    image_shape = (8, 8, 1)  # shape-independent checks only: the factories' own argument checks
    build_vae(config, image_shape)
    build_gan(config, image_shape)
    _usage(
        config,
        "ae_",
        lambda: models.autoencoder(
            image_shape=image_shape, code_dim=config.ae_code_dim, hidden_dims=tuple(config.ae_hidden)
        ),
    )
    _usage(
        config,
        "pixelcnn_",
        lambda: models.pixel_cnn(
            levels=config.levels,
            features=config.pixelcnn_features,
            num_layers=config.pixelcnn_layers,
            first_window=config.pixelcnn_first_window,
            conv_impl=config.conv_impl,
        ),
    )
    _usage(config, "pixelrnn_", lambda: models.pixel_rnn(levels=config.levels, hidden_dim=config.pixelrnn_hidden))
    return selected


# ----------------------------------------------------------------------------- data
def downsample(images: np.ndarray, factor: int, levels: int) -> np.ndarray:
    """Mean of each ``factor x factor`` block, rounded back to the ``levels`` values ``k / (levels - 1)``.

    .. math:: y_{n,i,j,c} = \\mathrm{round}\\Big(\\frac{K - 1}{f^2} \\sum_{u,v < f} x_{n, fi+u, fj+v, c}\\Big) / (K - 1)

    Args:
      images: ``(N, H, W, C)`` in ``[0, 1]``, ``H`` and ``W`` multiples of ``factor``.
      factor: ``f`` >= 1.
      levels: ``K``.

    Returns:
      ``(N, H / f, W / f, C)`` float32 images on the same ``K`` levels.

    Raises:
      UsageError: ``H`` or ``W`` not a multiple of ``factor``.
    """
    n, h, w, c = images.shape
    if h % factor or w % factor:
        raise UsageError(f"--config.downsample: expected a divisor of the image size {h} x {w}, got {factor}")
    blocks = np.asarray(images, np.float64).reshape(n, h // factor, factor, w // factor, factor, c)
    return (np.round(blocks.mean(axis=(2, 4)) * (levels - 1)) / (levels - 1)).astype(np.float32)


def load_data(config: ml_collections.ConfigDict) -> _common.Splits:
    """``config.dataset``'s splits (``train_size`` / ``test_size``: 0 = all), downsampled by ``config.downsample``."""
    splits = _common.load_splits(
        config.dataset,
        val_size=config.val_size,
        train_size=config.train_size or None,
        test_size=config.test_size or None,
    )
    if config.downsample == 1:
        return splits
    small = {
        name: arrays | {"image": downsample(arrays["image"], config.downsample, config.levels)}
        for name, arrays in (("train", splits.train), ("val", splits.val), ("test", splits.test))
    }
    return splits._replace(**small, input_shape=small["train"]["image"].shape[1:])


# ----------------------------------------------------------------------------- helpers
def _fit(ctx: Context, name: str, model: Any, lr: float, num_steps: int) -> training.FitResult:
    splits, config = ctx.splits, ctx.config
    result = generative.fit_generative(
        model,
        optimizers.adam(lr),
        train=splits.train["image"],
        val=splits.val["image"],
        num_steps=num_steps,
        batch_size=config.batch_size,
        eval_every=min(config.eval_every, num_steps),
        seed=config.seed,
        early_stopping_patience=config.early_stopping_patience,
        progress=True,
    )
    history = result.history
    ctx.curves[name] = {
        "train": (history["step"], [history["train_loss"]]),
        "val": (history["step"], [history["val_loss"]]),
        "best_step": result.best_step,
    }
    return result


def _steps(ctx: Context, name: str) -> int:
    """The step of the kept (best-validation) parameters of a model trained by :func:`_fit`."""
    return int(ctx.curves[name]["best_step"])


def _test_nll(loss: Callable, params: Any, images: np.ndarray, rng: jax.Array) -> float:
    """Mean test loss in nats, evaluated in batches of 120 (jitted once)."""
    fn = jax.jit(loss)
    values = [
        fn(params, jnp.asarray(images[i : i + 120]), jax.random.fold_in(rng, i)) for i in range(0, len(images), 120)
    ]
    return float(jnp.concatenate(values).mean())


def _bpd(nll: float, image_shape) -> float:
    return float(generative.bits_per_dim(nll, math.prod(image_shape)))


def _score_row(ctx: Context, samples: np.ndarray) -> Row:
    s = ctx.score(samples)
    return {
        "mean_confidence": round(s.mean_confidence, 4),
        "class_entropy": round(s.class_entropy, 4),
        "inception_score": round(s.inception_score, 3),
    }


def _save_samples(ctx: Context, name: str, samples: np.ndarray, title: str) -> None:
    figures.save_grid(ctx.workdir / f"samples_{name}.png", samples[:100], title=title)


# ----------------------------------------------------------------------------- models
def run_baseline(ctx: Context) -> tuple[Row, np.ndarray]:
    """Independent per-pixel categoricals, fitted by counting (Laplace smoothing)."""
    t0, levels = time.monotonic(), ctx.config.levels
    log_probs = generative.independent_categorical(ctx.splits.train["image"], levels)
    nll = float(generative.independent_categorical_nll(log_probs, ctx.splits.test["image"]).mean())
    key = jax.random.PRNGKey(ctx.config.seed)
    shape = (ctx.config.num_samples, *ctx.splits.input_shape)
    samples = np.asarray(jax.random.categorical(key, jnp.broadcast_to(log_probs, shape + (levels,))) / (levels - 1))
    _save_samples(ctx, "baseline", samples, "independent pixels")
    row = {
        "model": "baseline",
        "test_bpd": round(_bpd(nll, ctx.splits.input_shape), 4),
        **_score_row(ctx, samples),
        "steps": 0,
        "seconds": round(time.monotonic() - t0, 1),
    }
    return row, samples


def run_autoencoder(ctx: Context) -> tuple[Row, np.ndarray]:
    t0, config = time.monotonic(), ctx.config
    ae = models.autoencoder(
        image_shape=ctx.splits.input_shape, code_dim=config.ae_code_dim, hidden_dims=tuple(config.ae_hidden)
    )
    params = _fit(ctx, "autoencoder", ae, config.ae_lr, config.ae_steps).state.params
    test = ctx.splits.test["image"]
    recon = np.asarray(ae.decode(params, ae.encode(params, test)))
    mse = float(np.mean((recon - test) ** 2))
    pairs = np.concatenate(
        [test[:50].reshape(5, 10, *test.shape[1:]), recon[:50].reshape(5, 10, *test.shape[1:])], axis=1
    ).reshape(100, *test.shape[1:])
    figures.save_grid(
        ctx.workdir / "reconstructions_autoencoder.png",
        pairs,
        title=f"test images (odd rows) and reconstructions, code size {config.ae_code_dim}",
    )
    row = {
        "model": "autoencoder",
        "recon_mse": round(mse, 5),
        "steps": _steps(ctx, "autoencoder"),
        "seconds": round(time.monotonic() - t0, 1),
    }
    return row, recon


def run_vae(ctx: Context) -> tuple[Row, np.ndarray]:
    t0, config, shape = time.monotonic(), ctx.config, ctx.splits.input_shape
    vae = build_vae(config, shape)
    params = _fit(ctx, "vae", vae, config.vae_lr, config.vae_steps).state.params
    key = jax.random.PRNGKey(config.seed + 1)
    test = ctx.splits.test["image"]
    elbo_nll = _test_nll(vae.loss, params, test, key)
    iwae = jax.jit(vae.importance_log_likelihood, static_argnums=3)
    iw_nll = -float(
        jnp.concatenate(
            [
                iwae(params, jnp.asarray(test[i : i + 60]), jax.random.fold_in(key, i), config.importance_samples)
                for i in range(0, len(test), 60)
            ]
        ).mean()
    )
    samples = np.asarray(vae.sample(params, key, config.num_samples, temperature=config.temperature))
    _save_samples(ctx, "vae", samples, f"VAE mean images, z ~ N(0, {config.temperature:g}^2 I)")
    mean0, _ = vae.encode(params, test[:8])
    mean1, _ = vae.encode(params, test[8:16])
    z = figures.interpolate(np.asarray(mean0), np.asarray(mean1), 10)
    figures.save_grid(
        ctx.workdir / "interpolation_vae.png",
        np.asarray(vae.mean_image(params, z)),
        title="VAE: decoded linear paths between the codes of two test digits",
    )
    row = {
        "model": "vae",
        "test_bpd": round(_bpd(iw_nll, shape), 4),
        "test_bpd_elbo": round(_bpd(elbo_nll, shape), 4),
        **_score_row(ctx, samples),
        "steps": _steps(ctx, "vae"),
        "seconds": round(time.monotonic() - t0, 1),
    }
    return row, samples


def run_gan(ctx: Context) -> tuple[Row, np.ndarray]:
    t0, config, shape = time.monotonic(), ctx.config, ctx.splits.input_shape
    gan = build_gan(config, shape)
    key = jax.random.PRNGKey(config.seed)
    state = generative.init_gan(gan, key, shape)
    state, metrics = generative.train_gan(
        gan,
        state,
        jnp.asarray(ctx.splits.train["image"]),
        num_steps=config.gan_steps,
        batch_size=config.batch_size,
        data_key=jax.random.fold_in(key, 1),
        progress=True,
    )
    every = max(1, config.gan_steps // 200)
    steps = np.arange(1, config.gan_steps + 1)[::every]
    ctx.curves["gan"] = {k: (steps, [np.asarray(metrics[k])[::every]]) for k in ("d_loss", "g_loss")}
    generate = jax.jit(generative.generate, static_argnums=(0, 3))  # one program, not op-by-op im2col
    samples = np.asarray(generate(gan, state, jax.random.fold_in(key, 2), config.num_samples))
    _save_samples(ctx, "gan", samples, f"GAN samples ({config.gan_generator_loss} generator loss)")
    z = figures.interpolate(
        np.asarray(jax.random.normal(jax.random.fold_in(key, 3), (8, config.gan_latent_dim))),
        np.asarray(jax.random.normal(jax.random.fold_in(key, 4), (8, config.gan_latent_dim))),
        10,
    )
    images = jax.jit(lambda p, s, z: gan.generator.apply(p, s, z, train=False)[0])(
        state.g_params, state.g_state, jnp.asarray(z)
    )
    figures.save_grid(
        ctx.workdir / "interpolation_gan.png",
        np.asarray(images),
        title="GAN: generator along linear paths between two latents",
    )
    row = {
        "model": "gan",
        **_score_row(ctx, samples),
        "steps": config.gan_steps,
        "seconds": round(time.monotonic() - t0, 1),
    }
    return row, samples


def _run_autoregressive(
    ctx: Context, name: str, model: models.AutoregressiveModel, lr: float, num_steps: int
) -> tuple[Row, np.ndarray]:
    t0, config, shape = time.monotonic(), ctx.config, ctx.splits.input_shape
    params = _fit(ctx, name, model, lr, num_steps).state.params
    nll = _test_nll(model.loss, params, ctx.splits.test["image"], jax.random.PRNGKey(0))
    sample = jax.jit(model.sample, static_argnums=(2, 3))
    samples = np.asarray(
        sample(params, jax.random.PRNGKey(config.seed + 2), config.num_samples, shape, temperature=config.temperature)
    )
    _save_samples(ctx, name, samples, f"{name} samples, drawn pixel by pixel (temperature {config.temperature:g})")
    row = {
        "model": name,
        "test_bpd": round(_bpd(nll, shape), 4),
        **_score_row(ctx, samples),
        "steps": _steps(ctx, name),
        "seconds": round(time.monotonic() - t0, 1),
    }
    return row, samples


def run_pixelcnn(ctx: Context) -> tuple[Row, np.ndarray]:
    c = ctx.config
    model = models.pixel_cnn(
        levels=c.levels,
        features=c.pixelcnn_features,
        num_layers=c.pixelcnn_layers,
        first_window=c.pixelcnn_first_window,
        conv_impl=c.conv_impl,
    )
    return _run_autoregressive(ctx, "pixelcnn", model, c.pixelcnn_lr, c.pixelcnn_steps)


def run_pixelrnn(ctx: Context) -> tuple[Row, np.ndarray]:
    c = ctx.config
    model = models.pixel_rnn(levels=c.levels, hidden_dim=c.pixelrnn_hidden)
    return _run_autoregressive(ctx, "pixelrnn", model, c.pixelrnn_lr, c.pixelrnn_steps)


RUNNERS: dict[str, Callable[[Context], tuple[Row, np.ndarray]]] = {
    "baseline": run_baseline,
    "autoencoder": run_autoencoder,
    "vae": run_vae,
    "gan": run_gan,
    "pixelcnn": run_pixelcnn,
    "pixelrnn": run_pixelrnn,
}


# ----------------------------------------------------------------------------- classifier
def train_classifier(
    config: ml_collections.ConfigDict, splits: _common.Splits
) -> tuple[Callable[[np.ndarray], generative.SampleScore], float]:
    """An MLP digits classifier (``fit``, Adam); returns the sample scorer and its test accuracy."""
    model = models.mlp(hidden_sizes=(config.classifier_hidden,), num_classes=splits.num_classes)
    result = training.fit(
        model,
        optimizers.adam(config.classifier_lr),
        train=splits.train,
        val=splits.val,
        num_steps=config.classifier_steps,
        batch_size=config.batch_size,
        eval_every=config.classifier_steps,
        seed=config.seed,
    )
    state = result.state
    predict = jax.jit(lambda x: jax.nn.softmax(model.apply(state.params, state.model_state, x, train=False)[0]))
    accuracy = float(np.mean(np.argmax(predict(splits.test["image"]), -1) == splits.test["label"]))
    return (lambda images: generative.classifier_score(predict(jnp.asarray(images, jnp.float32)))), accuracy


# ----------------------------------------------------------------------------- run
def run(
    config: ml_collections.ConfigDict, workdir: pathlib.Path | str, *, models: tuple[str, ...] | None = None
) -> Result:
    """Runs the selected models (default: ``config.models``) and writes every output into ``workdir``."""
    start = time.monotonic()
    selected = validate_config(config) if models is None else models
    workdir = pathlib.Path(workdir)
    splits = load_data(config)
    score, accuracy = train_classifier(config, splits)
    ctx = Context(config, splits, score, workdir, {})
    rows = [{"model": "real test images", **_score_row(ctx, splits.test["image"])}]
    samples = {}
    for name in selected:  # the tables are rewritten after every model, so a long run shows progress
        cpu_start = time.process_time()  # user + sys of every thread of the process
        row, samples[name] = RUNNERS[name](ctx)
        rows.append(row | {"cpu_seconds": round(time.process_time() - cpu_start, 1)})
        text = _write_results(config, workdir, rows, accuracy)
    if ctx.curves:
        panels = {name: {k: v for k, v in series.items() if k != "best_step"} for name, series in ctx.curves.items()}
        _common.plot_curves(workdir / "training_curves.png", panels, ylabel="loss (nats per image; GAN: BCE)")
    seconds = time.monotonic() - start
    _common.write_json(
        workdir / "results.json",
        {"config": config.to_dict(), "rows": rows, "classifier_accuracy": accuracy, "seconds": seconds},
    )
    figures_md = "\n".join(f"![{p.stem}]({p.name})" for p in sorted(workdir.glob("*.png")))
    (workdir / "report.md").write_text(f"{text}\n{figures_md}\n\nTotal: {seconds:.0f} s.\n", encoding="utf-8")
    return Result(rows, samples, accuracy, seconds)


def _write_results(config: ml_collections.ConfigDict, workdir: pathlib.Path, rows: list[Row], accuracy: float) -> str:
    """Writes ``results.md`` / ``results.csv`` (with the notes defining every column); returns the markdown."""
    notes = (
        f"test_bpd: test NLL in bits/dim (exact for baseline/pixelcnn/pixelrnn; importance-sampled with "
        f"S={config.importance_samples} for the VAE, whose ELBO bound is test_bpd_elbo). Sample score: an MLP "
        f"{config.dataset} classifier (test accuracy {accuracy:.3f}) on {config.num_samples} samples: mean max-probability, "
        f"entropy (nats) of the mean predicted distribution (max ln 10 = 2.303), exp(mean KL) (Inception-score "
        f"analogue, max 10). recon_mse: autoencoder test mean squared error per pixel. seconds: wall time; "
        f"cpu_seconds: user + sys CPU time of the process (training, evaluation and sampling)."
    )
    return _common.write_tables(
        workdir, "results", rows, columns=COLUMNS, title=f"Generative models on {config.dataset}", notes=notes
    )
