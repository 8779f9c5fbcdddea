"""compare_regularizers as library functions: methods from the config, runs, report."""

from __future__ import annotations

import pathlib
import time
from typing import Any, Callable, Sequence

import ml_collections
import numpy as np

from experiments import _common as common
from experiments.compare_regularizers import config as config_lib
from experiments.compare_regularizers import train
from jax231 import training

TABLE_COLUMNS = ("method", "train acc", "val acc", "test acc", "gap (train - val)", "val loss",
                 "params", "seeds")


def build_methods(config: ml_collections.ConfigDict) -> dict[str, train.Method]:
    """Every method of :data:`config_lib.METHODS`, built from the config."""
    mlp = {"hidden_sizes": tuple(config.hidden_sizes)}
    resnet = dict(config.resnet)
    return {
        "none": train.Method("none", "mlp", mlp),
        "l2": train.Method("l2", "mlp", mlp, penalty=train.penalty_fn("l2", l2=config.l2)),
        "l1": train.Method("l1", "mlp", mlp, penalty=train.penalty_fn("l1", l1=config.l1)),
        "elastic_net": train.Method("elastic_net", "mlp", mlp, penalty=train.penalty_fn(
            "elastic_net", l1=config.elastic_l1, l2=config.elastic_l2)),
        "dropout": train.Method("dropout", "mlp", {**mlp, "drop_rate": config.drop_rate}),
        "dropconnect": train.Method("dropconnect", "mlp", {**mlp, "drop_connect_rate": config.drop_connect_rate}),
        "batch_norm": train.Method("batch_norm", "mlp", {**mlp, "norm": "batch"}),
        "augmentation": train.Method("augmentation", "mlp", mlp, augment=True),
        "resnet": train.Method("resnet", "resnet", resnet, as_image=True),
        "stochastic_depth": train.Method("stochastic_depth", "resnet",
                                         {**resnet, "stochastic_depth_rate": config.stochastic_depth_rate},
                                         as_image=True),
        "ensemble": train.Method("ensemble", "mlp", mlp, members=config.ensemble_size),
        "snapshot_ensemble": train.Method("snapshot_ensemble", "mlp", mlp, snapshot_cycles=config.snapshot_cycles),
        "polyak": train.Method("polyak", "mlp", mlp, average_decay=config.ema_decay),
    }


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
    for field in ("num_epochs", "batch_size", "val_size", "ensemble_size"):
        value = config[field]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise common.UsageError(f"--config.{field}: expected a positive integer; got {value!r}")
    if not 0 < config.learning_rate:
        raise common.UsageError(f"--config.learning_rate: expected a positive value; got {config.learning_rate}")
    if "snapshot_ensemble" in methods and not 1 <= config.snapshot_cycles <= config.num_epochs:
        raise common.UsageError(f"--config.snapshot_cycles: expected 1..num_epochs={config.num_epochs}; "
                                f"got {config.snapshot_cycles}")
    return methods, seeds


def table_rows(results: Sequence[train.MethodResult]) -> list[dict]:
    """One row per method: mean ± std over seeds of the final metrics."""
    fmt = common.format_mean_std
    return common.aggregate([r._asdict() for r in results], by=("method",), columns={
        "train acc": lambda g: fmt(r["final"]["train_accuracy"] for r in g),
        "val acc": lambda g: fmt(r["final"]["val_accuracy"] for r in g),
        "test acc": lambda g: fmt(r["final"]["test_accuracy"] for r in g),
        "gap (train - val)": lambda g: fmt(r["final"]["gap"] for r in g),
        "val loss": lambda g: fmt(r["final"]["val_loss"] for r in g),
        "params": lambda g: g[0]["num_params"],
        "seeds": len,
    })


def run(config: ml_collections.ConfigDict, workdir: Any, log: Callable[[str], None] = print) -> str:
    """Trains every selected method on every seed and writes the report under ``workdir``.

    Files: ``summary.md``/``.csv`` (train / val / test accuracy and the gap),
    ``curves_accuracy.png`` (train vs val accuracy per method), ``curves_gap.png``
    (train - val accuracy per epoch), ``results.json``.
    """
    methods, seeds = validate(config)
    workdir = pathlib.Path(workdir)
    start = time.monotonic()
    splits = common.load_splits(config.dataset, val_size=config.val_size, train_size=config.train_size or None,
                                test_size=config.test_size or None, data_dir=config.data_dir or None)
    registry = build_methods(config)
    results = []
    for name in methods:
        for seed in seeds:
            t = time.monotonic()
            result = train.train_method(registry[name], splits=splits, config=config, seed=seed)
            results.append(result)
            f = result.final
            log(f"{name:>17s} seed={seed}  train acc {f['train_accuracy']:.3f}  val acc {f['val_accuracy']:.3f}"
                f"  gap {f['gap']:+.3f}  ({time.monotonic() - t:.1f} s)")
    rows = table_rows(results)
    text = common.write_tables(
        workdir, "summary", rows, columns=TABLE_COLUMNS, title="compare_regularizers: summary",
        notes="Final parameters (ensembles: averaged softmax of the members / snapshots; polyak: the EMA "
              "of the iterates), inference mode, whole splits; mean ± std over seeds.")
    panels: dict[str, dict[str, Any]] = {}
    gaps: dict[str, dict[str, Any]] = {"generalization gap": {}}
    for name in methods:
        group = [r for r in results if r.method == name]
        x = group[0].history["epoch"]
        panels[name] = {"train": (x, [r.history["train_accuracy"] for r in group]),
                        "val": (x, [r.history["val_accuracy"] for r in group])}
        gaps["generalization gap"][name] = (x, [np.subtract(r.history["train_accuracy"],
                                                            r.history["val_accuracy"]) for r in group])
    common.plot_curves(workdir / "curves_accuracy.png", panels, xlabel="epoch", ylabel="accuracy",
                       title="train vs val accuracy (inference mode)")
    common.plot_curves(workdir / "curves_gap.png", gaps, xlabel="epoch", ylabel="train acc - val acc")
    if config.get("tensorboard", training.tensorboard_available()):
        for r in results:
            training.write_tensorboard(workdir / "tensorboard" / f"{r.method}_seed{r.seed}", r.history,
                                       step_key="epoch", hparams={"method": r.method, "seed": r.seed},
                                       metrics={f"final/{k}": v for k, v in r.final.items()})
    common.write_json(workdir / "results.json", {
        "config": config.to_dict(), "summary": rows, "runs": [r._asdict() for r in results],
        "seconds_total": time.monotonic() - start})
    return text
