"""compare_regularizers as library functions: methods from the config, runs, report."""

from __future__ import annotations

import pathlib
import time
from typing import Any, Callable, Sequence

import matplotlib.pyplot as plt
import ml_collections
import numpy as np

from experiments import _common as common
from experiments.compare_regularizers import config as config_lib
from experiments.compare_regularizers import evaluation, train
from jax231 import training

TABLE_COLUMNS = (
    "method",
    "data",
    "train acc",
    "val acc",
    "test acc",
    "gap (train - val)",
    "val loss",
    "test spread (right / wrong)",
    "evaluation",
    "params",
    "seeds",
)


def build_methods(config: ml_collections.ConfigDict) -> dict[str, train.Method]:
    """Every method of :data:`config_lib.METHODS`, built from the config.

    A method with a ``variant`` is a copy of the method whose members it evaluates
    (``mc_dropout`` of ``dropout``, ``tta`` of ``convnet``, ``fractional_pool_avg``
    of ``fractional_pool``): only the evaluation differs, so nothing is retrained.
    """
    mlp = {"hidden_sizes": tuple(config.hidden_sizes)}
    resnet = dict(config.resnet)
    conv = {"num_layers": config.images.num_layers, "width": config.images.width, "pool": "max"}
    fmp = {**conv, "pool": "fractional", "ratio": config.fractional_ratio}
    mc = evaluation.Variant("mc_dropout", num_samples=config.mc_samples)
    methods = {
        "none": train.Method("none", "mlp", mlp),
        "l2": train.Method("l2", "mlp", mlp, penalty=train.penalty_fn("l2", l2=config.l2)),
        "l1": train.Method("l1", "mlp", mlp, penalty=train.penalty_fn("l1", l1=config.l1)),
        "elastic_net": train.Method(
            "elastic_net",
            "mlp",
            mlp,
            penalty=train.penalty_fn("elastic_net", l1=config.elastic_l1, l2=config.elastic_l2),
        ),
        "dropout": train.Method("dropout", "mlp", {**mlp, "drop_rate": config.drop_rate}),
        "dropconnect": train.Method("dropconnect", "mlp", {**mlp, "drop_connect_rate": config.drop_connect_rate}),
        "batch_norm": train.Method("batch_norm", "mlp", {**mlp, "norm": "batch"}),
        "input_noise": train.Method("input_noise", "mlp", {**mlp, "input_noise_std": config.input_noise_std}),
        "activation_noise": train.Method("activation_noise", "mlp", {**mlp, "noise_std": config.activation_noise_std}),
        "max_norm": train.Method("max_norm", "mlp", mlp, max_norm=config.max_norm),
        "augmentation": train.Method("augmentation", "mlp", mlp, augment="shift_noise"),
        "resnet": train.Method("resnet", "resnet", resnet, as_image=True),
        "stochastic_depth": train.Method(
            "stochastic_depth",
            "resnet",
            {**resnet, "stochastic_depth_rate": config.stochastic_depth_rate},
            as_image=True,
        ),
        "ensemble": train.Method("ensemble", "mlp", mlp, members=config.ensemble_size),
        "snapshot_ensemble": train.Method("snapshot_ensemble", "mlp", mlp, snapshot_cycles=config.snapshot_cycles),
        "polyak": train.Method("polyak", "mlp", mlp, average_decay=config.ema_decay),
        "convnet": train.Method("convnet", "fmp_convnet", conv, data="images"),
        "spatial_dropout": train.Method(
            "spatial_dropout", "fmp_convnet", {**conv, "spatial_drop_rate": config.spatial_drop_rate}, data="images"
        ),
        "fractional_pool": train.Method("fractional_pool", "fmp_convnet", fmp, data="images"),
        "warp": train.Method("warp", "fmp_convnet", conv, augment="warp", data="images"),
        "rand_augment": train.Method("rand_augment", "fmp_convnet", conv, augment="rand_augment", data="images"),
    }
    variants = {
        "mc_dropout": ("dropout", mc),
        "tta": ("convnet", evaluation.Variant("tta", crops=config.tta.crops, pad=config.tta.pad, flip=config.tta.flip)),
        "fractional_pool_avg": ("fractional_pool", mc._replace(kind="mc_regions")),
    }
    for name, (of, variant) in variants.items():
        methods[name] = methods[of]._replace(name=name, variant=variant)
    return {name: methods[name] for name in config_lib.METHODS}


def evaluated_as(method: train.Method, methods: dict[str, train.Method]) -> str:
    """The report's 'evaluation' cell: how the final numbers were obtained."""
    if method.variant is not None:
        of = next(
            m.name
            for m in methods.values()
            if m.variant is None and train.training_key(m) == train.training_key(method)
        )
        return f"{method.variant.describe()}, of {of}'s net"
    if method.members > 1:
        return f"mean softmax of {method.members} members"
    if method.snapshot_cycles:
        return f"mean softmax of {method.snapshot_cycles} snapshots"
    if method.average_decay is not None:
        return f"EMA {method.average_decay} of the iterates"
    if method.model == "fmp_convnet" and method.model_config.get("pool") == "fractional":
        return "one fixed pooling-region draw"
    return "final parameters"


def validate(config: ml_collections.ConfigDict) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Checks names and numbers before training; returns ``(methods, seeds)``.

    Raises:
      UsageError: one line naming the field, the valid choices / expectation and the value.
    """
    methods = common.parse_choices("methods", config.methods, config_lib.METHODS)
    seeds = common.parse_int_list("seeds", config.seeds, minimum=0)
    common.dataset_registry().check(config.dataset)
    common.parse_choices("optimizer", [config.optimizer], common.optimizer_registry().names)
    if config.optimizer == "lbfgs":
        raise common.UsageError("--config.optimizer: L-BFGS is full batch; choose a minibatch rule")
    if set(methods) & set(config_lib.IMAGE_METHODS):
        common.dataset_registry().check(config.images.dataset)
    for field in (
        "num_epochs",
        "batch_size",
        "val_size",
        "ensemble_size",
        "mc_samples",
        "images.num_epochs",
        "images.batch_size",
        "images.val_size",
        "images.num_layers",
        "images.width",
    ):
        value = _field(config, field)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise common.UsageError(f"--config.{field}: expected a positive integer; got {value!r}")
    for field in ("learning_rate", "images.learning_rate", "max_norm"):
        if not _field(config, field) > 0:
            raise common.UsageError(f"--config.{field}: expected a positive value; got {_field(config, field)}")
    for field in ("input_noise_std", "activation_noise_std", "tta.pad"):
        if not _field(config, field) >= 0:
            raise common.UsageError(f"--config.{field}: expected a value >= 0; got {_field(config, field)}")
    if not config.fractional_ratio > 1:
        raise common.UsageError(f"--config.fractional_ratio: expected a ratio > 1; got {config.fractional_ratio}")
    if config.tta.crops not in (1, 5):
        raise common.UsageError(f"--config.tta.crops: expected 1 or 5; got {config.tta.crops!r}")
    if "snapshot_ensemble" in methods and not 1 <= config.snapshot_cycles <= config.num_epochs:
        raise common.UsageError(
            f"--config.snapshot_cycles: expected 1..num_epochs={config.num_epochs}; got {config.snapshot_cycles}"
        )
    return methods, seeds


def _field(config: ml_collections.ConfigDict, dotted: str) -> Any:
    """``config.a.b`` for ``'a.b'``."""
    for part in dotted.split("."):
        config = config[part]
    return config


def table_rows(
    results: Sequence[train.MethodResult], methods: dict[str, train.Method], config: ml_collections.ConfigDict
) -> list[dict]:
    """One row per method: mean ± std over seeds of the final metrics."""
    fmt = common.format_mean_std

    def spread(g: Sequence[dict]) -> str:
        if "spread_right" not in g[0]["final"]:
            return "-"
        return f"{fmt(r['final']['spread_right'] for r in g)} / {fmt(r['final']['spread_wrong'] for r in g)}"

    return common.aggregate(
        [r._asdict() for r in results],
        by=("method",),
        columns={
            "data": lambda g: _dataset_name(methods[g[0]["method"]].data, config),
            "train acc": lambda g: fmt(r["final"]["train_accuracy"] for r in g),
            "val acc": lambda g: fmt(r["final"]["val_accuracy"] for r in g),
            "test acc": lambda g: fmt(r["final"]["test_accuracy"] for r in g),
            "gap (train - val)": lambda g: fmt(r["final"]["gap"] for r in g),
            "val loss": lambda g: fmt(r["final"]["val_loss"] for r in g),
            "test spread (right / wrong)": spread,
            "evaluation": lambda g: evaluated_as(methods[g[0]["method"]], methods),
            "params": lambda g: g[0]["num_params"],
            "seeds": len,
        },
    )


def load_data(config: ml_collections.ConfigDict, data: str) -> common.Splits:
    """The splits of ``data`` ('signals': ``config.dataset`` ...; 'images': ``config.images``)."""
    section = config.images if data == "images" else config
    return common.load_splits(
        section.dataset,
        val_size=section.val_size,
        train_size=section.train_size or None,
        test_size=section.test_size or None,
        data_dir=config.data_dir or None,
    )


def plot_final(path: pathlib.Path, results: Sequence[train.MethodResult]) -> None:
    """Bars of the final train / val / test accuracy of every method (mean over seeds)."""
    names = list(dict.fromkeys(r.method for r in results))
    fig, ax = plt.subplots(figsize=(max(8.0, 0.55 * len(names)), 4.2))
    pos = np.arange(len(names))
    for i, split in enumerate(("train", "val", "test")):
        means = [np.mean([r.final[f"{split}_accuracy"] for r in results if r.method == n]) for n in names]
        ax.bar(pos + (i - 1) * 0.27, means, 0.27, label=split)
    ax.set_xticks(pos, names, rotation=60, ha="right", fontsize=8)
    ax.set(
        ylabel="final accuracy",
        ylim=(0, 1.05),
        title="every method: final accuracy (test-time variants evaluate the net of the method they copy)",
    )
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    common.save_figure(fig, path)


def run(config: ml_collections.ConfigDict, workdir: Any, log: Callable[[str], None] = print) -> str:
    """Trains every selected method on every seed and writes the report under ``workdir``.

    Test-time variants reuse the members trained for the method they copy
    (:func:`train.training_key`; trained once even if that method is not selected).

    Files: ``summary.md``/``.csv`` (train / val / test accuracy, the gap, the
    Monte-Carlo spread), ``final_accuracy.png`` (every method), ``curves_accuracy.png``
    (train vs val accuracy per epoch per method; a variant's panel adds its
    final val accuracy as a flat line), ``curves_gap.png`` (train - val accuracy per
    epoch of the trained methods, signals and images apart), ``results.json``.
    """
    names, seeds = validate(config)
    workdir = pathlib.Path(workdir)
    start = time.monotonic()
    methods = build_methods(config)
    data = {kind: load_data(config, kind) for kind in train.DATA if any(methods[n].data == kind for n in names)}
    trained: dict[tuple, train.Trained] = {}
    results = []
    for name in names:
        method = methods[name]
        for seed in seeds:
            t = time.monotonic()
            key = (repr(train.training_key(method)), seed)
            if key not in trained:
                trained[key] = train.fit_method(method, splits=data[method.data], config=config, seed=seed)
            result = train.score(method, trained[key], splits=data[method.data], config=config, seed=seed)
            results.append(result)
            f = result.final
            log(
                f"{name:>19s} seed={seed}  train acc {f['train_accuracy']:.3f}  val acc {f['val_accuracy']:.3f}"
                f"  gap {f['gap']:+.3f}  ({time.monotonic() - t:.1f} s)"
            )
    rows = table_rows(results, methods, config)
    text = common.write_tables(
        workdir,
        "summary",
        rows,
        columns=TABLE_COLUMNS,
        title="compare_regularizers: summary",
        notes="Final parameters in inference mode (see 'evaluation'), whole splits; mean ± std over seeds. "
        "Test-time variants (tta, mc_dropout, fractional_pool_avg) train nothing: they evaluate the "
        "net of the method named in 'evaluation'. Spread: std over the T passes of the predicted "
        "class's probability, test examples classified right / wrong.",
    )
    plot_final(workdir / "final_accuracy.png", results)
    panels: dict[str, dict[str, Any]] = {}
    gaps: dict[str, dict[str, Any]] = {kind: {} for kind in data}
    for name in names:
        group = [r for r in results if r.method == name]
        x = group[0].history["epoch"]
        curves = {
            "train": (x, [r.history["train_accuracy"] for r in group]),
            "val": (x, [r.history["val_accuracy"] for r in group]),
        }
        if methods[name].variant is not None:  # its net's curves, and its own final val accuracy
            curves["test-time val (final)"] = (x, [[r.final["val_accuracy"]] * len(x) for r in group])
            panels[f"{name} (flat line: test-time val)"] = curves
            continue
        panels[name] = curves
        gaps[methods[name].data][name] = (
            x,
            [np.subtract(r.history["train_accuracy"], r.history["val_accuracy"]) for r in group],
        )
    common.plot_curves(
        workdir / "curves_accuracy.png",
        panels,
        xlabel="epoch",
        ylabel="accuracy",
        title="train vs val accuracy (inference mode)",
        max_cols=6,
    )
    common.plot_curves(
        workdir / "curves_gap.png",
        {f"generalization gap ({_dataset_name(k, config)})": v for k, v in gaps.items() if v},
        xlabel="epoch",
        ylabel="train acc - val acc",
    )
    if config.get("tensorboard", training.tensorboard_available()):
        for r in results:
            training.write_tensorboard(
                workdir / "tensorboard" / f"{r.method}_seed{r.seed}",
                r.history,
                step_key="epoch",
                hparams={"method": r.method, "seed": r.seed},
                metrics={f"final/{k}": v for k, v in r.final.items()},
            )
    common.write_json(
        workdir / "results.json",
        {
            "config": config.to_dict(),
            "summary": rows,
            "runs": [r._asdict() for r in results],
            "seconds_total": time.monotonic() - start,
        },
    )
    return text


def _dataset_name(data: str, config: ml_collections.ConfigDict) -> str:
    return config.images.dataset if data == "images" else config.dataset
