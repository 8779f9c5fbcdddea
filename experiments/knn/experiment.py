"""kNN experiment: cross-validate (metric, k), plot accuracy against k, test the choice.

Library half of ``python -m experiments.knn.main``; tests call :func:`run` directly.

References:
  CS231n notes, "Image classification: k-nearest neighbour" and assignment 1 (knn.ipynb).
"""

from __future__ import annotations

import json
import math
import pathlib
import time
from typing import NamedTuple, Sequence

import matplotlib.pyplot as plt
import ml_collections
import numpy as np

from experiments import _common
from experiments._common import UsageError
from jax231 import pipelines
from jax231.models import knn

VALID_METRICS = ("l1", "l2")


class KnnResult(NamedTuple):
    """What :func:`run` measured.

    Attributes:
      ks: the candidate numbers of neighbours, in config order.
      cv_accuracy: ``{metric: (len(ks), num_folds) array}`` fold accuracies.
      best_metric: the metric of the best mean cross-validation accuracy.
      best_k: the k of the best mean cross-validation accuracy (ties -> smaller k).
      best_cv_accuracy: that mean cross-validation accuracy.
      test_accuracy: accuracy on the test split at (best_metric, best_k).
      seconds: wall time of the whole run.
    """

    ks: tuple[int, ...]
    cv_accuracy: dict[str, np.ndarray]
    best_metric: str
    best_k: int
    best_cv_accuracy: float
    test_accuracy: float
    seconds: float


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Raises :class:`UsageError` naming the field for a config that cannot run."""
    _common.dataset_registry(flag="config.dataset", extra=("mnist", "cifar10")).check(config.dataset)
    for metric in config.metrics:
        if metric not in VALID_METRICS:
            raise UsageError(f"--config.metrics: expected one of {', '.join(VALID_METRICS)}, got {metric!r}")
    if not config.metrics:
        raise UsageError(f"--config.metrics: expected at least one of {', '.join(VALID_METRICS)}, got nothing")
    if config.num_folds < 2:
        raise UsageError(f"--config.num_folds: expected an integer >= 2, got {config.num_folds}")
    if not config.ks or any(int(k) < 1 for k in config.ks):
        raise UsageError(f"--config.ks: expected positive integers, got {tuple(config.ks)}")
    for field in ("num_train", "num_test"):
        if config[field] < 0:
            raise UsageError(f"--config.{field}: expected an integer >= 0 (0 = all), got {config[field]}")


def _flat_subset(arrays: dict, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` examples (all when 0) as float32 rows and int32 labels."""
    images = np.asarray(arrays["image"], dtype=np.float32)
    labels = np.asarray(arrays["label"], dtype=np.int32)
    if count:
        images, labels = images[:count], labels[:count]
    return images.reshape(len(images), -1), labels


def best_choice(ks: Sequence[int], cv_accuracy: dict[str, np.ndarray]) -> tuple[str, int, float]:
    """The (metric, k, mean accuracy) with the best mean fold accuracy; ties go to the smaller k.

    Metrics are visited in the dict's order, so ties between metrics go to the first one.
    """
    best = ("", 0, -1.0)
    for metric, accuracies in cv_accuracy.items():
        means = np.asarray(accuracies).mean(axis=1)
        for k, mean in sorted(zip(ks, means), key=lambda pair: pair[0]):
            if mean > best[2] + 1e-12:
                best = (metric, int(k), float(mean))
    return best


def plot_accuracy_vs_k(
    path: pathlib.Path, ks: Sequence[int], cv_accuracy: dict[str, np.ndarray], *, title: str
) -> None:
    """Writes the course's plot: fold accuracies as dots, mean +- std as error bars, log-x."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for metric, accuracies in cv_accuracy.items():
        accuracies = np.asarray(accuracies)
        ax.errorbar(
            ks,
            accuracies.mean(axis=1),
            yerr=accuracies.std(axis=1),
            capsize=3,
            marker="o",
            label=f"{metric} (mean ± std over folds)",
        )
        for k, folds in zip(ks, accuracies):
            ax.scatter([k] * len(folds), folds, s=6, alpha=0.35, color=ax.lines[-1].get_color())
    ax.set_xscale("log")
    ax.set_xticks(list(ks), [str(k) for k in ks], minor=False)
    ax.minorticks_off()
    ax.set_xlabel("k (number of neighbours)")
    ax.set_ylabel("cross-validation accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> KnnResult:
    """Cross-validates k for each metric, plots, and tests the best choice.

    Writes into ``workdir``: ``accuracy_vs_k.png``, ``cv_accuracy.csv`` (one row per
    metric, k and fold), ``results.json`` and ``report.md``.

    Args:
      config: see :mod:`experiments.knn.config`.
      workdir: an existing writable directory.

    Returns:
      A :class:`KnnResult`.
    """
    validate_config(config)
    start = time.perf_counter()
    workdir = pathlib.Path(workdir)
    x_train, y_train = _flat_subset(pipelines.load_arrays(config.dataset, config.train_split), config.num_train)
    x_test, y_test = _flat_subset(pipelines.load_arrays(config.dataset, config.test_split), config.num_test)
    ks = tuple(int(k) for k in config.ks)
    smallest_train = len(x_train) - math.ceil(len(x_train) / config.num_folds)
    if max(ks) > smallest_train:
        raise UsageError(
            f"--config.ks: largest k must be <= the {smallest_train} training examples of a fold split, got {max(ks)}"
        )

    cv_accuracy = {}
    for metric in config.metrics:
        cv_accuracy[metric] = np.asarray(
            knn.cross_validate(x_train, y_train, ks=ks, num_folds=config.num_folds, metric=metric)
        )
    best_metric, best_k, best_cv = best_choice(ks, cv_accuracy)
    predictions = np.asarray(knn.predict(x_train, y_train, x_test, k=best_k, metric=best_metric))
    test_accuracy = float(np.mean(predictions == y_test))
    seconds = time.perf_counter() - start

    plot_accuracy_vs_k(
        workdir / "accuracy_vs_k.png",
        ks,
        cv_accuracy,
        title=f"kNN on {config.dataset}: {len(x_train)} train, {config.num_folds} folds",
    )
    with open(workdir / "cv_accuracy.csv", "w") as f:
        f.write("metric,k,fold,accuracy\n")
        for metric, accuracies in cv_accuracy.items():
            for k, folds in zip(ks, accuracies):
                for fold, accuracy in enumerate(folds):
                    f.write(f"{metric},{k},{fold},{accuracy:.6f}\n")
    summary = {
        "dataset": config.dataset,
        "num_train": len(x_train),
        "num_test": len(x_test),
        "num_folds": config.num_folds,
        "ks": list(ks),
        "cv_mean": {m: a.mean(axis=1).tolist() for m, a in cv_accuracy.items()},
        "cv_std": {m: a.std(axis=1).tolist() for m, a in cv_accuracy.items()},
        "best_metric": best_metric,
        "best_k": best_k,
        "best_cv_accuracy": best_cv,
        "test_accuracy": test_accuracy,
        "seconds": seconds,
    }
    (workdir / "results.json").write_text(json.dumps(summary, indent=2))
    lines = [
        f"# kNN on {config.dataset}",
        "",
        f"{len(x_train)} training / {len(x_test)} test examples, {config.num_folds}-fold cross-validation.",
        "",
        "| k | " + " | ".join(f"{m} mean ± std" for m in cv_accuracy) + " |",
        "|---:|" + "---:|" * len(cv_accuracy),
    ]
    for i, k in enumerate(ks):
        cells = [f"{a[i].mean():.4f} ± {a[i].std():.4f}" for a in cv_accuracy.values()]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Best: metric={best_metric}, k={best_k} (cross-validation accuracy {best_cv:.4f}).",
        f"Test accuracy at the chosen (metric, k): **{test_accuracy:.4f}**.",
        f"Wall time: {seconds:.1f} s.",
        "",
        "![accuracy vs k](accuracy_vs_k.png)",
        "",
    ]
    (workdir / "report.md").write_text("\n".join(lines))
    return KnnResult(ks, cv_accuracy, best_metric, best_k, best_cv, test_accuracy, seconds)
