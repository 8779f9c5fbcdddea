"""Coarse-to-fine random search of any train-experiment config, aborting exploding trials.

Every sampled hyperparameter is a (float) field of the train config, e.g.
``learning_rate`` and ``l2``. Coarse trials are short (``coarse_steps``), fine trials
longer (``fine_steps``); each is one ``jax231.training.fit`` whose explosion guard
stops a trial as soon as its loss passes ``explosion_factor`` times the initial
loss, so hopeless learning rates cost a few steps instead of a full run. With
``config.sweep`` (``--sweep``) each stage is instead one vmapped
:func:`jax231.parallel.run_sweep` over its points (:func:`sweep_objective`).

Library half of ``python -m experiments.hparam_search.main``.

References:
  CS231n notes, "Neural networks 3: hyperparameter optimization"
  (https://cs231n.github.io/neural-networks-3/#hyper).
"""

from __future__ import annotations

import math
import pathlib
import time
from typing import Any

import matplotlib.pyplot as plt  # headless Agg (experiments._common sets it too)
import ml_collections
import numpy as np

from experiments import _common
from experiments._common import UsageError
from experiments.hparam_search import search
from experiments.train import experiment as train_lib
from jax231 import models, optimizers, parallel, training

CATEGORICAL = {
    "optimizer": optimizers.NAMES,
    "schedule": train_lib.SCHEDULES,
    "model": models.NAMES,
    "loss": train_lib.LOSSES,
}
"""Categorical fields whose categories are checked by name; any other field (dotted for a nested
one joined by "__", e.g. ``model_kwargs__hidden_sizes``: an architecture choice) takes its choices as given."""


def _field(config: ml_collections.ConfigDict, name: str) -> tuple[ml_collections.ConfigDict, str]:
    """The ConfigDict holding the field ``name`` (``a__b`` is ``config.a.b``), and its last key."""
    *path, key = name.split("__")
    for part in path:
        config = config[part]
    return config, key


def validate_choices(config: ml_collections.ConfigDict) -> dict[str, tuple]:
    """The categorical choices of ``config.choices`` (each a field of the config, non-empty, known names)."""
    choices = search.check_choices(config.get("choices", ml_collections.ConfigDict()).to_dict(), valid=CATEGORICAL)
    for name in choices:
        try:
            holder, key = _field(config, name)
            holder[key]
        except (KeyError, AttributeError, TypeError):
            raise UsageError(f"--config.choices: {name!r} is not a field of the train config") from None
    return choices


def validate_config(config: ml_collections.ConfigDict) -> dict[str, tuple[float, float]]:
    """Checks the search fields; returns the coarse ranges. Raises :class:`UsageError`."""
    ranges = search.check_ranges(config.ranges.to_dict())
    for name in ranges:
        if name not in config or not isinstance(config[name], (int, float)) or isinstance(config[name], bool):
            numeric = sorted(k for k, v in config.items() if isinstance(v, float))
            raise UsageError(
                f"--config.ranges: {name!r} is not a numeric field of the train config; valid: {', '.join(numeric)}"
            )
    for field in ("coarse_steps", "fine_steps", "num_coarse"):
        if config[field] < 1:
            raise UsageError(f"--config.{field}: expected an integer >= 1; got {config[field]}")
    _common.parse_choices("config.loss", [config.loss], train_lib.LOSSES)
    choices = validate_choices(config)
    if config.get("strategy", "random") not in search.STRATEGIES:
        raise UsageError(f"--config.strategy: expected one of {', '.join(search.STRATEGIES)}; got {config.strategy!r}")
    if config.get("strategy", "random") == "grid":
        search.grid_points(ranges, choices, config.get("grid_size", 3))  # rejects an empty grid
    if config.get("sweep", False) and choices:
        raise UsageError(
            f"--sweep: categorical choices need a program each; got --config.choices "
            f"{', '.join(choices)} (run without --sweep)"
        )
    if config.get("sweep", False):
        unsupported = [name for name in ranges if name not in SWEEP_FIELDS]
        if unsupported:
            raise UsageError(
                f"--sweep: can search only {', '.join(SWEEP_FIELDS)} in one program; "
                f"got {unsupported[0]!r} in --config.ranges"
            )
        if "learning_rate" in ranges and config.schedule != "constant":
            raise UsageError(
                f"--sweep: searching learning_rate needs --config.schedule=constant (a schedule "
                f"recomputes the rate every step); got {config.schedule!r}"
            )
        if config.optimizer == "lbfgs":
            raise UsageError("--sweep: lbfgs needs fit's line search (value_fn); run it without --sweep")
    return ranges


SWEEP_FIELDS = ("learning_rate", "l2")
"""Fields ``--sweep`` can search: the optimizer's learning rate (a value in its state) and the
L2 strength (``run_sweep``'s ``l2``)."""


def sweep_objective(
    config: ml_collections.ConfigDict, model: Any, splits: _common.Splits, points: list[dict], stage: str
) -> list[dict[str, Any]]:
    """All ``points`` of a stage as one :func:`jax231.parallel.run_sweep` call (``--sweep``).

    Member ``p`` is the trial ``fit(..., seed=config.seed)`` with ``points[p]``: every
    member shares the seed, hence the initialisation and data order (common random
    numbers). ``fit``'s explosion guard runs inside the sweep (the same core): a trial
    whose update is bad is ``'diverged'`` and frozen, ``steps_run`` its good updates,
    with NaN validation metrics (as the loop path reports).

    Returns:
      One result per point, with the keys of the loop path's objective.
    """
    num_steps = config.coarse_steps if stage == "coarse" else config.fine_steps
    count = len(points)
    values = {name: np.asarray([p[name] for p in points], np.float64) for name in points[0]}
    optimizer = train_lib.build_optimizer(config, num_steps=num_steps)
    fixed_l2 = float(config.get("l2", 0.0))
    num_train = len(splits.train["label"])
    result = parallel.run_sweep(
        model,
        optimizer,
        train=splits.train,
        val=splits.val,
        seeds=np.full(count, config.seed, np.int32),
        batch_size=min(config.batch_size or num_train, num_train),
        loss=config.loss,
        hyperparams={"learning_rate": values["learning_rate"].astype(np.float32)}
        if "learning_rate" in values
        else None,
        l2=values["l2"] if "l2" in values else (np.full(count, fixed_l2) if fixed_l2 > 0 else None),
        num_steps=num_steps,
        eval_every=min(config.eval_every, num_steps),
        explosion_factor=config.explosion_factor,
    )
    history = result.history
    out = []
    for p in range(count):
        diverged = result.status[p] == "diverged"
        good = int(np.sum(history["step"] <= result.first_bad_step[p])) if diverged else len(history["step"])
        val_loss = history["val_loss"][p, :good]
        finite = np.isfinite(val_loss)
        out.append(
            {
                "val_accuracy": math.nan if diverged else float(history["val_accuracy"][p, -1]),
                "val_loss": math.nan if diverged else float(history["val_loss"][p, -1]),
                "train_accuracy": float(history["train_accuracy"][p, good - 1]) if good else math.nan,
                "status": str(result.status[p]),
                "best_step": int(history["step"][np.flatnonzero(finite)[np.argmin(val_loss[finite])]])
                if finite.any()
                else -1,
                "steps_run": int(np.asarray(result.state.step)[p]),
                "steps_asked": num_steps,
            }
        )
    return out


def data_fields(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """Searched fields the loop path passes to ``fit`` as data (one compilation per stage).

    The learning rate (a value in the optimizer state; not with a schedule, which
    recomputes it every step) and the L2 strength (``fit(l2=...)``).
    """
    return ("learning_rate", "l2") if config.schedule == "constant" else ("l2",)


def loop_objective(config: ml_collections.ConfigDict, model: Any, splits: _common.Splits, ranges: dict):
    """The loop path's objective: one ``fit`` per trial, compiled once per stage when it can be.

    When every searched field is in :func:`data_fields`, each stage builds one
    optimizer and passes the trial's values as data (``hyperparams=``, ``l2=``);
    otherwise (e.g. a searched momentum) each trial builds its own optimizer.
    """
    optimizers_by_key: dict[tuple, Any] = {}
    models_by_key: dict[str, Any] = {}

    def objective(hparams: dict[str, float], stage: str) -> dict[str, Any]:
        trial_config = ml_collections.ConfigDict(config.to_dict())
        for name, value in hparams.items():
            holder, key = _field(trial_config, name)
            holder[key] = type(holder[key])(value) if name in ranges else value
        num_steps = config.coarse_steps if stage == "coarse" else config.fine_steps
        # One optimizer (one compilation) per (stage, categorical choices) when the searched
        # numbers can be passed as data; otherwise each trial builds its own.
        as_data = set(ranges) <= set(data_fields(trial_config))
        chosen = tuple(sorted((k, str(v)) for k, v in hparams.items() if k not in ranges))
        if as_data and (stage, chosen) not in optimizers_by_key:
            optimizers_by_key[stage, chosen] = train_lib.build_optimizer(trial_config, num_steps=num_steps)
        optimizer = (
            optimizers_by_key[stage, chosen]
            if as_data
            else train_lib.build_optimizer(trial_config, num_steps=num_steps)
        )
        arch = str(chosen)
        if arch not in models_by_key:
            models_by_key[arch] = model if not chosen else train_lib.build_model(trial_config, splits.num_classes)
        trial_model = models_by_key[arch]
        l2 = float(trial_config.get("l2", 0.0))
        train_lib.build_penalty(trial_config)  # validates the strength (>= 0)
        result = training.fit(
            trial_model,
            optimizer,
            train=splits.train,
            val=splits.val,
            loss=trial_config.loss,
            l2=l2 if l2 > 0 or "l2" in ranges else None,
            num_steps=num_steps,
            batch_size=config.batch_size or None,
            eval_every=min(config.eval_every, num_steps),
            seed=config.seed,
            explosion_factor=config.explosion_factor,
            check_initial_loss=False,
            hyperparams={"learning_rate": trial_config.learning_rate}
            if as_data and "learning_rate" in ranges
            else None,
        )
        val = result.evaluate(splits.val, batch_size=len(splits.val["label"]))
        diverged = result.status == "diverged"
        return {
            "val_accuracy": math.nan if diverged else float(val["accuracy"]),
            "val_loss": math.nan if diverged else float(val["loss"]),
            "train_accuracy": (result.history.get("train_accuracy") or [math.nan])[-1],
            "status": result.status,
            "best_step": result.best_step,
            "steps_run": int(result.state.step),
            "steps_asked": num_steps,
        }  # good updates made

    return objective


def plot_trials(path: pathlib.Path, trials: list[search.Trial], names: tuple[str, str], *, title: str) -> None:
    """Scatter of two searched hyperparameters (log axes) coloured by validation accuracy; x = diverged."""
    fig, ax = plt.subplots(figsize=(6.0, 4.4))
    ok = [t for t in trials if t.result["status"] != "diverged"]
    bad = [t for t in trials if t.result["status"] == "diverged"]
    if ok:
        points = ax.scatter(
            [t.hparams[names[0]] for t in ok],
            [t.hparams[names[1]] for t in ok],
            c=[t.result["val_accuracy"] for t in ok],
            cmap="viridis",
            marker="o",
            s=[60 if t.stage == "fine" else 30 for t in ok],
            edgecolors="k",
        )
        fig.colorbar(points, ax=ax, label="validation accuracy")
    if bad:
        ax.scatter(
            [t.hparams[names[0]] for t in bad],
            [t.hparams[names[1]] for t in bad],
            marker="x",
            color="red",
            label="diverged (aborted)",
        )
        ax.legend(fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, log=print) -> list[search.Trial]:
    """Runs the search; writes ``trials.md/.csv`` (sorted by val accuracy), ``trials.png``, ``results.json``.

    Returns:
      The trials in evaluation order.
    """
    ranges = validate_config(config)
    start = time.perf_counter()
    workdir = pathlib.Path(workdir)
    splits = train_lib.build_data(config)
    model = train_lib.build_model(config, splits.num_classes)
    objective = loop_objective(config, model, splits, ranges)

    sweep = bool(config.get("sweep", False))
    trials, fine_ranges = search.coarse_to_fine(
        None if sweep else objective,
        ranges,
        num_coarse=config.num_coarse,
        num_fine=config.num_fine,
        seed=config.seed,
        top_k=config.top_k,
        shrink=config.shrink,
        log=log,
        rounds=config.get("rounds", 1),
        strategy=config.get("strategy", "random"),
        choices=validate_choices(config),
        grid_size=config.get("grid_size", 3),
        batch_objective=(lambda points, stage: sweep_objective(config, model, splits, points, stage))
        if sweep
        else None,
    )
    rows = search.trial_rows(
        trials, columns=("val_accuracy", "val_loss", "train_accuracy", "status", "steps_run", "steps_asked")
    )
    seconds = time.perf_counter() - start
    strategy = config.get("strategy", "random").capitalize()
    _common.write_tables(
        workdir,
        "trials",
        rows,
        title=f"{strategy} search: {config.model} / {config.optimizer} on {config.dataset}",
        notes=f"Coarse ranges {ranges}; choices {validate_choices(config)}; "
        f"{config.get('rounds', 1)} fine round(s), last ranges {fine_ranges}; wall time {seconds:.1f} s.",
    )
    names = tuple(ranges)
    if len(names) >= 2:
        plot_trials(
            workdir / "trials.png",
            trials,
            (names[0], names[1]),
            title=f"{config.model} / {config.optimizer} on {config.dataset}",
        )
    best = search.rank(trials)[0]
    if config.get("tensorboard", training.tensorboard_available()):
        search.write_tensorboard(workdir, trials)
    _common.write_json(
        workdir / "results.json",
        {
            "best_hparams": best.hparams,
            "best_val_accuracy": best.result["val_accuracy"],
            "coarse_ranges": ranges,
            "fine_ranges": fine_ranges,
            "num_trials": len(trials),
            "num_diverged": int(np.sum([t.result["status"] == "diverged" for t in trials])),
            "seconds": seconds,
        },
    )
    return trials
