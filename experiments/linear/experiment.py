"""SVM against softmax linear classifiers, each tuned by a coarse-to-fine random search.

Library half of ``python -m experiments.linear.main``; tests call :func:`run`.

References:
  CS231n notes, "Linear classification" (https://cs231n.github.io/linear-classify/)
  and assignment 1 (svm.ipynb, softmax.ipynb).
"""

from __future__ import annotations

import math
import pathlib
import time
from typing import Any, NamedTuple

import matplotlib.pyplot as plt  # headless Agg (experiments._common sets it too)
import ml_collections
import numpy as np

from experiments import _common
from experiments._common import UsageError
from experiments.hparam_search import search
from experiments.train import experiment as train_lib
from jax231 import models
from jax231 import optimizers
from jax231 import pipelines
from jax231 import training

LOSSES = ("svm", "softmax")


class LossResult(NamedTuple):
    """The search of one loss.

    Attributes:
      trials: every trial, in evaluation order.
      best: the trial with the best validation accuracy.
      val_accuracy: validation accuracy of the best trial's final state.
      test_accuracy: test accuracy of the best trial's final state.
      params: the best trial's parameters ``{'w': (D, C), 'b': (C,)}``.
    """

    trials: list
    best: Any
    val_accuracy: float
    test_accuracy: float
    params: Any


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Raises :class:`UsageError` naming the field for a config that cannot run."""
    _common.parse_choices("config.losses", list(config.losses), LOSSES)
    for loss in config.losses:
        if loss not in config.ranges:
            raise UsageError(
                f"--config.ranges: expected a range dict for loss {loss!r}; got keys {sorted(config.ranges.keys())}"
            )
        ranges = search.check_ranges(config.ranges[loss].to_dict(), field=f"ranges.{loss}")
        if set(ranges) != {"learning_rate", "l2"}:
            raise UsageError(f"--config.ranges.{loss}: expected keys learning_rate and l2; got {sorted(ranges)}")
    for field in ("num_steps", "batch_size", "eval_every", "num_coarse"):
        if config[field] < 1:
            raise UsageError(f"--config.{field}: expected an integer >= 1; got {config[field]}")


def search_loss(loss: str, config: ml_collections.ConfigDict, splits: _common.Splits, log=print) -> LossResult:
    """Coarse-to-fine search over (learning_rate, l2) for one loss; the best state is kept.

    One SGD object and one model for every trial: the learning rate
    (``hyperparams=``) and the L2 strength (``l2=``) are data, so the search
    compiles ``fit``'s programs once per loss, not once per trial.
    """
    model = models.get("linear", num_classes=splits.num_classes, init=config.init)
    optimizer = optimizers.sgd(learning_rate=1.0)  # every trial writes its own rate into the state
    best_states: dict[int, Any] = {}

    def objective(hparams: dict[str, float], stage: str) -> dict[str, Any]:
        del stage  # coarse and fine trials have the same length here
        train_lib.build_penalty(config, l2=hparams["l2"])  # validates the strength (>= 0)
        result = training.fit(
            model,
            optimizer,
            train=splits.train,
            val=splits.val,
            loss=loss,
            l2=float(hparams["l2"]),
            hyperparams={"learning_rate": hparams["learning_rate"]},
            num_steps=config.num_steps,
            batch_size=config.batch_size,
            eval_every=config.eval_every,
            seed=config.seed,
            explosion_factor=config.explosion_factor,
            check_initial_loss=False,
        )
        val = result.evaluate(splits.val, batch_size=len(splits.val["label"]))
        history = result.history
        out = {
            "val_accuracy": float(val["accuracy"]),
            "val_loss": float(val["loss"]),
            "train_accuracy": (history["train_accuracy"][-1] if history.get("train_accuracy") else math.nan),
            "status": result.status,
            "best_step": result.best_step,
        }
        if result.status == "diverged":
            out["val_accuracy"] = math.nan
        best_states[len(best_states)] = result
        return out

    trials, _ = search.coarse_to_fine(
        objective,
        config.ranges[loss].to_dict(),
        num_coarse=config.num_coarse,
        num_fine=config.num_fine,
        seed=config.seed,
        top_k=config.top_k,
        shrink=config.shrink,
        log=lambda line: log(f"{loss}: {line}"),
    )
    best = search.rank(trials)[0]
    winner = best_states[best.index]
    test = winner.evaluate(splits.test, batch_size=len(splits.test["label"]))
    return LossResult(trials, best, float(best.result["val_accuracy"]), float(test["accuracy"]), winner.state.params)


def plot_templates(
    path: pathlib.Path, params: Any, image_shape: tuple[int, ...], *, class_names: list[str], title: str
) -> None:
    """Draws each class template rescaled to [0, 1] (the course's visualisation)."""
    templates = np.asarray(models.class_templates(params, image_shape), dtype=np.float64)
    num = len(templates)
    cols = min(num, 5)
    rows = math.ceil(num / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.0 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, template in enumerate(templates):
        low, high = template.min(), template.max()
        image = (template - low) / max(high - low, 1e-12)
        ax = axes.ravel()[i]
        if image.ndim == 3 and image.shape[-1] in (1, 3):
            ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray")
        elif image.ndim == 2 and image.shape[-1] == 1:  # 1-D signal (MNIST-1D): draw it as a curve.
            ax.axis("on")
            ax.plot(image[:, 0])
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            ax.imshow(image.reshape(image.shape[0], -1), cmap="gray")
        ax.set_title(class_names[i] if i < len(class_names) else str(i), fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _class_names(dataset: str, num_classes: int) -> list[str]:
    try:
        names = getattr(pipelines.info(dataset), "class_names", None)
    except Exception:  # pylint: disable=broad-except  # names are decoration only
        names = None
    return list(names) if names else [str(i) for i in range(num_classes)]


def run(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, log=print) -> dict[str, LossResult]:
    """Searches each loss, evaluates the winners on test and writes the outputs.

    Writes into ``workdir``: ``trials_<loss>.md/.csv`` (sorted by val accuracy),
    ``templates_<loss>.png``, ``summary.md/.csv`` and ``results.json``.

    Returns:
      ``{loss: LossResult}``.
    """
    validate_config(config)
    start = time.perf_counter()
    workdir = pathlib.Path(workdir)
    data_config = ml_collections.ConfigDict(
        {
            "dataset": config.dataset,
            "val_size": config.val_size,
            "train_size": config.train_size,
            "test_size": config.test_size,
            "preprocess": config.preprocess,
        }
    )
    splits = train_lib.build_data(data_config)
    results = {}
    for loss in config.losses:
        results[loss] = search_loss(loss, config, splits, log=log)
        _common.write_tables(
            workdir,
            f"trials_{loss}",
            search.trial_rows(results[loss].trials),
            title=f"{loss}: random search over learning rate and L2 (sorted by val accuracy)",
        )
        plot_templates(
            workdir / f"templates_{loss}.png",
            results[loss].params,
            splits.input_shape,
            class_names=_class_names(config.dataset, splits.num_classes),
            title=f"{loss} class templates ({config.dataset})",
        )
    rows = [
        {
            "loss": loss,
            "learning_rate": r.best.hparams["learning_rate"],
            "l2": r.best.hparams["l2"],
            "val_accuracy": r.val_accuracy,
            "test_accuracy": r.test_accuracy,
            "trials": len(r.trials),
            "diverged": sum(t.result["status"] == "diverged" for t in r.trials),
        }
        for loss, r in results.items()
    ]
    seconds = time.perf_counter() - start
    _common.write_tables(
        workdir,
        "summary",
        rows,
        title=f"Linear classifiers on {config.dataset}",
        notes=f"{len(splits.train['label'])} train / {len(splits.val['label'])} val / "
        f"{len(splits.test['label'])} test examples; wall time {seconds:.1f} s.",
    )
    if config.get("tensorboard", training.tensorboard_available()):
        for loss, r in results.items():
            search.write_tensorboard(workdir, r.trials, prefix=f"{loss}_")
    _common.write_json(workdir / "results.json", {"rows": rows, "seconds": seconds})
    return results
