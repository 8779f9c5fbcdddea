"""Visualising and understanding the project's own CNNs: library half of ``experiments.visualize.main``.

For each dataset of ``config.datasets``: train a small ``jax231.models.vgg`` with
``jax231.training.fit`` (:func:`train`), then draw every picture of
``jax231.visualize`` (:func:`visualize_dataset`) into ``<workdir>/<dataset>/``; attack
statistics go to ``fooling.md``/``.csv``, everything to ``results.json`` and ``report.md``.
See ``config.py`` for the command and the measured results.

References:
  CS231n lecture 12 "Visualizing and Understanding" and assignment 3 (network
  visualization, style transfer).
"""

from __future__ import annotations

import pathlib
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments import _common
from experiments._common import UsageError
from experiments.train import experiment as train_exp
from experiments.visualize import figures
from jax231 import models, optimizers, pipelines, training, visualize

CAVEAT = (
    "Style transfer and DeepDream use the project's own small CNN as the feature extractor; "
    "without ImageNet weights the pictures demonstrate the methods, not their famous results."
)


class DatasetResult(NamedTuple):
    """What :func:`run_dataset` produced for one dataset.

    Attributes:
      dataset: the dataset name.
      test_accuracy: the trained CNN's test accuracy (NaN when skipped).
      attacks: one row per attack (fooling images, FGSM at each epsilon).
      style_loss_ratio: final / initial style-transfer loss, per style image.
      files: the PNG files written.
      skipped: why the dataset was skipped ('' when it ran).
    """

    dataset: str
    test_accuracy: float
    attacks: list[dict[str, Any]]
    style_loss_ratio: list[float]
    files: list[str]
    skipped: str = ""


class VisualizeRun(NamedTuple):
    """All datasets' results and the wall time."""

    results: dict[str, DatasetResult]
    seconds: float


# ----------------------------------------------------------------------------- checks
def validate_config(config: ml_collections.ConfigDict) -> None:
    """Rejects bad settings before any data is read (``UsageError`` naming the field)."""
    _common.parse_choices("config.datasets", list(config.datasets), tuple(config.per_dataset.keys()))
    for field in ("num_shown", "num_attempts", "fooling_max_steps", "tsne_points"):
        if not isinstance(config[field], int) or config[field] < 1:
            raise UsageError(f"--config.{field}: expected an int >= 1, got {config[field]!r}")
    if config.fooling_objective not in visualize.FOOLING_OBJECTIVES:
        raise UsageError(
            f"--config.fooling_objective: expected one of {visualize.FOOLING_OBJECTIVES}, "
            f"got {config.fooling_objective!r}"
        )
    if not isinstance(config.fooling_target, int) or config.fooling_target < -1:
        raise UsageError(
            f"--config.fooling_target: expected -1 (a random other class) or a class index, "
            f"got {config.fooling_target!r}"
        )
    if not config.fgsm_epsilons or min(config.fgsm_epsilons) <= 0:
        raise UsageError(f"--config.fgsm_epsilons: expected positive numbers, got {config.fgsm_epsilons!r}")


def check_against_data(
    config: ml_collections.ConfigDict, name: str, model: Any, num_classes: int, input_shape: tuple[int, ...]
) -> None:
    """Settings that depend on the dataset: the fooling target's range, the style image size.

    Raises:
      UsageError: ``--config.fooling_target: ...`` / ``--config.per_dataset.<name>.style_size: ...``
        with the library's one-line ``ValueError`` message.
    """
    try:
        visualize.fooling_images(
            lambda x: jnp.zeros((x.shape[0], num_classes)),
            jnp.zeros((1, *input_shape)),
            max(config.fooling_target, 0),
            max_steps=1,
        )
    except ValueError as err:
        raise UsageError(f"--config.fooling_target: {err}") from None
    params, state = model.init(jax.random.key(0), input_shape)
    size = config.per_dataset[name].style_size
    try:
        jax.eval_shape(
            lambda x: visualize.vgg_activations(params, state, x, head=False),
            jnp.zeros((1, size, size, input_shape[-1])),
        )
    except ValueError as err:
        raise UsageError(f"--config.per_dataset.{name}.style_size: {err}") from None


# ----------------------------------------------------------------------------- training
def build_model(spec: ml_collections.ConfigDict, num_classes: int) -> Any:
    """A batch-norm ``jax231.models.vgg`` with the spec's stages and hidden layers."""
    return models.vgg(
        stage_widths=tuple(spec.stage_widths),
        convs_per_stage=tuple(spec.convs_per_stage),
        hidden_dims=tuple(spec.hidden_dims),
        num_classes=num_classes,
        norm="batch",
    )


def train(
    config: ml_collections.ConfigDict,
    spec: ml_collections.ConfigDict,
    model: Any,
    splits: _common.Splits,
    workdir: pathlib.Path,
) -> tuple[Any, float]:
    """Momentum SGD with a cosine schedule through ``training.fit`` (resumes from ``workdir``).

    Returns:
      ``(train state, test accuracy)``.
    """
    schedule = train_exp.make_schedule("cosine", spec.learning_rate, num_steps=spec.num_steps)
    result = training.fit(
        model,
        optimizers.momentum(learning_rate=schedule),
        train=splits.train,
        val=splits.val,
        num_steps=spec.num_steps,
        batch_size=spec.batch_size,
        eval_every=max(1, spec.num_steps // 10),
        seed=config.seed,
        workdir=str(workdir),
        progress=config.progress,
    )
    metrics = training.evaluate(
        training.make_eval_step(model), result.state, splits.test, batch_size=min(1000, len(splits.test["label"]))
    )
    return result.state, float(metrics["accuracy"])


# ----------------------------------------------------------------------------- pictures
def _signed(diff: np.ndarray) -> np.ndarray:
    """Perturbations shown as ``0.5 + d / (2 max|d|)`` per image (grey = unchanged)."""
    scale = np.abs(diff).reshape(len(diff), -1).max(axis=1).reshape(-1, 1, 1, 1)
    return 0.5 + diff / (2 * np.maximum(scale, 1e-12))


def _attacks(config, logits_fn, x, y, num_classes, out, names, step_size) -> tuple[list[dict], list[str]]:
    """Fooling images and FGSM on correctly classified test images; their rows and figures."""
    rng = np.random.default_rng(config.seed)
    if config.fooling_target < 0:
        targets = (y + rng.integers(1, num_classes, size=len(y))) % num_classes
    else:
        targets = np.full(len(y), config.fooling_target)
    fooled = visualize.fooling_images(
        logits_fn,
        x,
        targets,
        step_size=step_size,
        max_steps=config.fooling_max_steps,
        clip=(0.0, 1.0),
        objective=config.fooling_objective,
    )
    success = np.asarray(fooled.fooled)
    rows = [
        {
            "attack": f"fooling (iterated, targeted, {config.fooling_objective})",
            "epsilon": "",
            "attempts": len(y),
            "success_rate": float(success.mean()),
            "mean_linf": float(np.mean(fooled.linf)),
            "mean_l2": float(np.mean(fooled.l2)),
            "mean_steps": float(np.mean(np.asarray(fooled.num_steps)[success])) if success.any() else float("nan"),
        }
    ]
    n = config.num_shown
    adv = np.asarray(fooled.images[:n])
    figures.save_rows(
        out / "fooling.png",
        [("original", x[:n]), ("fooled", adv), ("difference", _signed(adv - x[:n]))],
        titles=[f"{names[a]}->{names[b]}" for a, b in zip(y[:n], targets[:n])],
        title="Fooling images: gradient steps until the target class is predicted",
    )
    fgsm_rows = []
    for eps in config.fgsm_epsilons:
        images = visualize.fgsm(logits_fn, x, y, epsilon=float(eps), clip=(0.0, 1.0))
        predicted = np.asarray(jnp.argmax(logits_fn(images), axis=1))
        rows.append(
            {
                "attack": "FGSM (untargeted)",
                "epsilon": float(eps),
                "attempts": len(y),
                "success_rate": float(np.mean(predicted != y)),
                "mean_linf": float(np.mean(visualize.linf_perturbation(x, images))),
                "mean_l2": float(np.mean(visualize.l2_perturbation(x, images))),
                "mean_steps": 1.0,
            }
        )
        fgsm_rows.append((f"eps={eps:g}", np.asarray(images[:n])))
    figures.save_rows(
        out / "fgsm.png",
        [("original", x[:n]), *fgsm_rows],
        titles=[names[k] for k in y[:n]],
        title="FGSM: one signed-gradient step of size epsilon",
    )
    return rows, ["fooling.png", "fgsm.png"]


def _style_images(content_image: np.ndarray, other: np.ndarray, size: int) -> list[tuple[str, np.ndarray]]:
    """A synthetic colour-stripe pattern and another test image, both ``(size, size, C)``."""
    channels = content_image.shape[-1]
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    phase = 2 * np.pi * (rows + cols) / max(4, size // 4)
    stripes = np.stack([0.5 + 0.5 * np.sin(phase + k * 2.1) for k in range(3)], axis=-1)
    stripes = stripes if channels == 3 else stripes[..., :1]
    return [("stripes", stripes.astype(np.float32)), ("test image", other)]


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(jax.image.resize(images, (images.shape[0], size, size, images.shape[-1]), "bilinear"))


def visualize_dataset(
    config: ml_collections.ConfigDict, name: str, model: Any, state: Any, splits: _common.Splits, out: pathlib.Path
) -> tuple[list[dict], list[float], list[str]]:
    """Every picture for one trained CNN; returns the attack rows, style-loss ratios and PNG names."""
    spec = config.per_dataset[name]
    params, model_state = state.params, state.model_state
    names = pipelines.info(_common.dataset_name(name)).class_names
    num_classes = len(names)

    def logits_fn(images):
        return model.apply(params, model_state, images, train=False)[0]

    test_x, test_y = splits.test["image"], splits.test["label"]
    acts = jax.jit(lambda x: visualize.vgg_activations(params, model_state, x))
    predicted = np.concatenate(
        [np.asarray(acts(test_x[i : i + 500])["logits"]).argmax(1) for i in range(0, len(test_y), 500)]
    )
    correct = np.flatnonzero(predicted == test_y)
    n = config.num_shown
    x, y = test_x[correct[:n]], test_y[correct[:n]]
    files = []
    # 1. First-layer filters.
    filters = visualize.filter_images(params["stage_0"]["conv_0"]["w"])
    figures.save_grid(out / "filters.png", filters, title=f"First-layer 3x3 filters ({name})")
    # 2. Saliency.
    saliency = visualize.rescale_images(visualize.saliency_maps(logits_fn, x, y))
    figures.save_rows(
        out / "saliency.png",
        [("image", x), ("saliency", saliency)],
        titles=[names[k] for k in y],
        cmaps=[None, "hot"],
        title="Saliency: max_c |d score / d pixel|",
    )
    # 3. Fooling images and FGSM.
    attack_x, attack_y = test_x[correct[: config.num_attempts]], test_y[correct[: config.num_attempts]]
    rows, attack_files = _attacks(config, logits_fn, attack_x, attack_y, num_classes, out, names, spec.fooling_step)
    # 4. Class visualisation.
    class_images = visualize.class_visualization(
        logits_fn,
        np.arange(num_classes),
        rng=jax.random.key(config.seed),
        input_shape=splits.input_shape,
        clip=(0.0, 1.0),
        **config.class_vis.to_dict(),
    )
    probs = np.asarray(jax.nn.softmax(logits_fn(class_images)))[np.arange(num_classes), np.arange(num_classes)]
    figures.save_rows(
        out / "class_visualization.png",
        [("image", np.asarray(class_images))],
        titles=[f"{k} p={p:.2f}" for k, p in zip(names, probs)],
        title="Class visualisation: gradient ascent with L2, blur and jitter",
    )
    # 5. Occlusion.
    drops = np.asarray(
        visualize.occlusion_sensitivity(
            logits_fn, x, y, patch_size=spec.patch_size, stride=spec.stride, fill=float(splits.train["image"].mean())
        )
    )
    heat = _resize(np.clip(drops, 0, None)[..., None], x.shape[1])
    heat = heat / max(float(heat.max()), 1e-12)
    figures.save_rows(
        out / "occlusion.png",
        [("image", x), ("prob. drop", heat)],
        titles=[names[k] for k in y],
        cmaps=[None, "hot"],
        title=f"Occlusion: drop of p(true class), {spec.patch_size}-pixel patch",
    )
    # 6. t-SNE of the penultimate features (the last hidden layer, or the flattened last pool without one).
    layer = f"fc_{len(spec.hidden_dims) - 1}" if spec.hidden_dims else f"stage_{len(spec.stage_widths) - 1}/pool"
    count = min(config.tsne_points, len(test_y))
    chunks = [np.asarray(acts(test_x[i : min(i + 500, count)])[layer]) for i in range(0, count, 500)]
    feats = np.concatenate([c.reshape(len(c), -1) for c in chunks])
    points = visualize.tsne_embedding(feats, perplexity=min(config.tsne_perplexity, count - 1), seed=config.seed)
    figures.save_tsne(
        out / "tsne.png",
        points,
        test_y[:count],
        names,
        title=f"t-SNE of the {layer} features of {count} test images ({name})",
    )
    # 7. Style transfer and 8. DeepDream with the CNN's convolutions as the feature extractor.
    extractor = visualize.vgg_extractor(params, model_state)
    num_stages = len(spec.stage_widths)
    conv_layers = [f"stage_{s}/conv_{j}" for s in range(num_stages) for j in range(spec.convs_per_stage[s])]
    size = spec.style_size
    content = _resize(x[:1], size)[0]
    other = _resize(test_x[correct[n : n + 1]] if len(correct) > n else x[-1:], size)[0]
    style_rows, ratios = [], []
    for label, style_image in _style_images(content, other, size):
        result = visualize.style_transfer(
            extractor,
            content,
            style_image,
            content_layer=conv_layers[-1],
            style_layers=conv_layers,
            style_weights=[config.style.style_weight] * len(conv_layers),
            content_weight=config.style.content_weight,
            tv_weight=config.style.tv_weight,
            num_steps=config.style.num_steps,
            learning_rate=config.style.learning_rate,
        )
        style_rows.append((label, [content, style_image, np.asarray(result.image)]))
        ratios.append(float(result.losses[-1] / result.losses[0]))
    figures.save_rows(
        out / "style_transfer.png",
        style_rows,
        titles=["content", "style", "result"],
        title="Style transfer with the project's CNN (a demonstration: no ImageNet weights)",
    )
    dream_inputs = _resize(x[: max(1, n // 2)], size)
    dream_rows = [("input", dream_inputs)]
    for layer_name in conv_layers:
        dreams = [
            np.asarray(
                visualize.deep_dream(
                    extractor, image, layer=layer_name, rng=jax.random.key(config.seed), **config.dream.to_dict()
                )
            )
            for image in dream_inputs
        ]
        dream_rows.append((layer_name, dreams))
    figures.save_rows(
        out / "deepdream.png",
        dream_rows,
        title="DeepDream per layer with the project's CNN (a demonstration: no ImageNet weights)",
    )
    files += [
        "filters.png",
        "saliency.png",
        *attack_files,
        "class_visualization.png",
        "occlusion.png",
        "tsne.png",
        "style_transfer.png",
        "deepdream.png",
    ]
    return rows, ratios, files


# ----------------------------------------------------------------------------- run
def run_dataset(config: ml_collections.ConfigDict, name: str, workdir: pathlib.Path) -> DatasetResult:
    """Loads ``name``, trains its CNN, draws everything (skipped with a reason when the data is absent)."""
    spec = config.per_dataset[name]
    try:
        splits = _common.load_splits(
            name, val_size=spec.val_size, train_size=spec.train_size or None, test_size=spec.test_size or None
        )
    except FileNotFoundError as err:
        return DatasetResult(name, float("nan"), [], [], [], skipped=" ".join(str(err).split()))
    model = build_model(spec, splits.num_classes)
    check_against_data(config, name, model, splits.num_classes, splits.input_shape)
    out = workdir / name
    out.mkdir(parents=True, exist_ok=True)
    state, accuracy = train(config, spec, model, splits, out / "train")
    rows, ratios, files = visualize_dataset(config, name, model, state, splits, out)
    return DatasetResult(name, accuracy, [{"dataset": name, **row} for row in rows], ratios, files)


def run(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> VisualizeRun:
    """Every dataset of ``config.datasets``; writes ``fooling.md/.csv``, ``results.json`` and ``report.md``."""
    start = time.perf_counter()
    workdir = pathlib.Path(workdir)
    validate_config(config)
    results = {name: run_dataset(config, name, workdir) for name in config.datasets}
    seconds = time.perf_counter() - start
    write_report(workdir, results, seconds)
    return VisualizeRun(results, seconds)


def write_report(workdir: pathlib.Path, results: dict[str, DatasetResult], seconds: float) -> None:
    """``fooling.md``/``.csv`` (the attacks), ``results.json`` and ``report.md`` (with the PNG list)."""
    rows = [row for result in results.values() for row in result.attacks]
    table = _common.write_tables(
        workdir,
        "fooling",
        rows,
        title="Fooling images and FGSM",
        notes="success_rate: fraction of correctly classified test images sent to the "
        "target class (fooling) or misclassified (FGSM); mean_linf and mean_l2 in [0, 1] pixels.",
    )
    _common.write_json(
        workdir / "results.json", {name: r._asdict() for name, r in results.items()} | {"seconds": seconds}
    )
    lines = ["# Visualizing and understanding the project's CNNs", "", CAVEAT, ""]
    for name, result in results.items():
        if result.skipped:
            lines += [f"## {name}: skipped", "", result.skipped, ""]
            continue
        ratios = ", ".join(f"{r:.3f}" for r in result.style_loss_ratio)
        summary = f"Test accuracy of the CNN: {result.test_accuracy:.1%}. Style transfer, final/initial loss: {ratios}."
        lines += [f"## {name}", "", summary, ""]
        lines += [f"![{f}]({name}/{f})" for f in result.files] + [""]
    lines += [table, "", f"Wall time: {seconds:.0f} s."]
    (workdir / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
