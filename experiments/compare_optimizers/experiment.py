"""compare_optimizers as library functions: validate the config, run a mode, report.

``main.py`` only parses flags and calls :func:`apply_overrides`, :func:`validate` and
:func:`run`; tests call the same functions.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, NamedTuple

import ml_collections
import numpy as np

from jax231 import training

from experiments import _common as common
from experiments.compare_optimizers import optim, report, run as run_lib, sweep as sweep_lib, trajectories, tune

MODES = ("train", "2d")


class Plan(NamedTuple):
    """A validated selection of what to run.

    Attributes:
      mode: ``'train'`` or ``'2d'``.
      models: model names.
      optimizers: optimizer names.
      seeds: seeds.
      learning_rates: ``optimizer -> learning rate`` (before any search).
      surfaces: 2-D surfaces (2-D mode).
    """

    mode: str
    models: tuple[str, ...]
    optimizers: tuple[str, ...]
    seeds: tuple[int, ...]
    learning_rates: dict[str, float]
    surfaces: tuple[str, ...]


def apply_overrides(config: ml_collections.ConfigDict, **flags: Any) -> ml_collections.ConfigDict:
    """Copies the shortcut flags that were given (not None) into ``config``.

    ``lr`` (``'adam:1e-3,sgd:0.1'``) updates ``config.learning_rates`` entry by entry;
    every other flag replaces the config field of the same name.

    Raises:
      UsageError: malformed ``lr``.
    """
    config = ml_collections.ConfigDict(config.to_dict())
    for name, value in flags.items():
        if value is None:
            continue
        if name == "lr":
            known = tuple(dict.fromkeys((*optim.valid_optimizers(), *config.learning_rates.keys())))
            for opt, lr in common.parse_float_map("lr", value, known).items():
                config.learning_rates[opt] = lr
        else:
            setattr(config, name, ",".join(value) if isinstance(value, (list, tuple)) else value)
    return config


def _positive(flag: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise common.UsageError(f"--{flag}: expected a positive integer; got {value!r}")


def _check_targets(config: ml_collections.ConfigDict) -> None:
    """Every target accuracy must be one an optimizer can reach: in (0, 1]."""
    fields = {f"config.target_accuracy.{m}": config.target_accuracy[m] for m in config.target_accuracy}
    fields["config.default_target_accuracy"] = config.default_target_accuracy
    for field, value in fields.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise common.UsageError(
                f"--{field}: expected a validation accuracy in (0, 1] (reachable by some optimizer), got {value!r}"
            )


def _check_tuning(config: ml_collections.ConfigDict, optimizers: tuple[str, ...]) -> None:
    """A non-empty grid and a search space ``(low, high)`` for every tuned (minibatch) optimizer."""
    common.parse_choices("config.tuning.select", [config.tuning.select], tune.SELECT)
    size = config.tuning.grid_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise common.UsageError(
            f"--config.tuning.grid_size: expected an integer >= 1 (learning rates per "
            f"optimizer; 0 is an empty grid), got {size!r}"
        )
    if config.schedule != "constant":
        raise common.UsageError(
            f"--schedule: expected constant while tuning (the swept learning rate is a "
            f"value in the state, which a schedule overwrites; or pass --notune), "
            f"got {config.schedule!r}"
        )
    ranges = config.tuning.lr_ranges
    with_space = list(ranges)
    for opt in optimizers:
        if optim.is_full_batch(opt):
            continue  # L-BFGS & co.: their line search sets the step; nothing to tune
        if opt not in ranges:
            raise common.UsageError(
                f"--config.tuning.lr_ranges: expected a search space for every tuned "
                f"optimizer (one of {', '.join(with_space)}), got none for {opt!r}"
            )
        space = tuple(ranges[opt]) if isinstance(ranges[opt], (tuple, list)) else (ranges[opt],)
        if (
            len(space) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in space)
            or not 0 < space[0] <= space[1]
        ):
            raise common.UsageError(
                f"--config.tuning.lr_ranges.{opt}: expected (low, high) with 0 < low <= high, got {space!r}"
            )


def _learning_rates(config: ml_collections.ConfigDict, optimizers: tuple[str, ...]) -> dict[str, float]:
    """The rate each optimizer is built with: the config's, or (tuned, none given) its range's midpoint."""
    rates = {}
    for opt in optimizers:
        if opt in config.learning_rates:
            rates[opt] = float(config.learning_rates[opt])
        elif config.tune and not optim.is_full_batch(opt):
            low, high = config.tuning.lr_ranges[opt]
            rates[opt] = float((low * high) ** 0.5)  # overwritten per member: the sweep's values are data
        else:
            raise common.UsageError(
                f"--lr: expected a learning rate for {opt!r} (untuned), got none; give --lr={opt}:VALUE"
            )
    return rates


def validate(config: ml_collections.ConfigDict) -> Plan:
    """Checks every name and number of ``config`` before anything is trained.

    Raises:
      UsageError: ``--<field>: expected ..., got ...`` (one line naming the field and
        the valid choices).
    """
    mode = common.parse_choices("mode", [config.mode], MODES)[0]
    optimizers = common.parse_choices("optimizers", config.optimizers, optim.valid_optimizers())
    surfaces = common.parse_choices("surfaces", config.surfaces, tuple(trajectories.SURFACES))
    models = common.model_registry().parse(config.models)
    common.dataset_registry().check(config.dataset)
    common.parse_choices("schedule", [config.schedule], optim.SCHEDULES)
    seeds = common.parse_int_list("seeds", config.seeds, minimum=0)
    common.parse_choices("config.profile_cost", [config.profile_cost], report.PROFILE_COSTS)
    if not config.tau_max > 1:
        raise common.UsageError(f"--config.tau_max: expected a value > 1; got {config.tau_max}")
    for flag in ("sweep", "tune"):
        if not isinstance(config.get(flag, False), bool):
            raise common.UsageError(f"--{flag}: expected true or false; got {config[flag]!r}")
    for field in (
        "num_steps",
        "batch_size",
        "eval_every",
        "lbfgs_steps",
        "lbfgs_eval_every",
        "val_size",
        "lbfgs_history",
    ):
        _positive(field, config[field])
    _check_targets(config)
    if config.tune and mode == "train":
        _check_tuning(config, optimizers)
    learning_rates = _learning_rates(config, optimizers) if mode == "train" else {}
    if mode == "2d":
        for surface in surfaces:
            absent = [o for o in optimizers if o not in config.trajectory_lrs.get(surface, {})]
            if absent:
                raise common.UsageError(
                    f"--config.trajectory_lrs: expected a learning rate for every "
                    f"optimizer on {surface!r}, got none for {absent[0]!r}"
                )
    return Plan(mode, models, optimizers, seeds, learning_rates, surfaces)


def run(
    config: ml_collections.ConfigDict,
    plan: Plan,
    workdir: Any,
    log: Callable[[str], None] = print,
    command: str | None = None,
) -> str:
    """Runs ``plan`` and writes every output under ``workdir``; returns the markdown summary.

    ``command`` (the command line, for report.md) defaults to a note that the run was a library call.
    """
    if plan.mode == "2d":
        return run_2d(config, plan, workdir, log)
    return run_train(config, plan, workdir, log, command)


def run_2d(config: ml_collections.ConfigDict, plan: Plan, workdir: Any, log: Callable[[str], None] = print) -> str:
    """The 2-D mode: trajectories of every optimizer on every surface."""
    log(f"2-D mode: {', '.join(plan.optimizers)} on {', '.join(plan.surfaces)}")
    paths = trajectories.run_trajectories(
        plan.optimizers,
        surfaces=plan.surfaces,
        learning_rates={s: dict(config.trajectory_lrs[s]) for s in plan.surfaces},
        num_steps={s: int(config.trajectory_steps[s]) for s in plan.surfaces},
    )
    return trajectories.write_trajectory_report(workdir, paths)


def tuning_budget(config: ml_collections.ConfigDict, plan: Plan) -> dict[str, Any]:
    """The tuning budget, as printed with the result and in the report (a JSON-able dict)."""
    tuned = [o for o in plan.optimizers if not optim.is_full_batch(o)]
    runs = int(config.tuning.grid_size) * len(plan.seeds) if config.tune else len(plan.seeds)
    return {
        "tuned": bool(config.tune),
        "grid_size": int(config.tuning.grid_size) if config.tune else 1,
        "lr_ranges": {o: tuple(config.tuning.lr_ranges[o]) for o in tuned} if config.tune else {},
        "seeds": list(plan.seeds),
        "runs_per_model_optimizer": runs,
        "num_steps": int(config.num_steps),
        "batch_size": int(config.batch_size),
        "sweeps": len(tuned) * len(plan.models) if config.tune else 0,
        "total_runs": runs * len(tuned) * len(plan.models),
        "selection": config.tuning.select,
        "untuned": [o for o in plan.optimizers if optim.is_full_batch(o)],
    }


def budget_line(budget: Mapping[str, Any]) -> str:
    """One line: ``5 learning rates x 3 seeds per (model, optimizer), 1000 steps, ...``."""
    if not budget["tuned"]:
        return (
            f"untuned: the config's learning rate per optimizer x {len(budget['seeds'])} seeds, "
            f"{budget['num_steps']} steps of batch {budget['batch_size']}"
        )
    untuned = ", ".join(budget["untuned"])
    return (
        f"{budget['grid_size']} log-spaced learning rates x {len(budget['seeds'])} seeds per (model, "
        f"optimizer) = {budget['runs_per_model_optimizer']} runs in one run_sweep, {budget['num_steps']} "
        f"steps of batch {budget['batch_size']}; {budget['sweeps']} sweeps, {budget['total_runs']} runs; "
        f"chosen by the mean final {budget['selection'].replace('_', ' ')} over the seeds (test unused)"
        + (f"; untuned (no learning rate): {untuned}" if untuned else "")
    )


class Study(NamedTuple):
    """What the train mode trained.

    Attributes:
      results: the reported runs (the seeds at each optimizer's chosen learning rate).
      all_results: every run (every grid point's members too), for results.json.
      tuning: one record per tuned (model, optimizer) (see :func:`tuning_record`).
    """

    results: list[run_lib.RunResult]
    all_results: list[run_lib.RunResult]
    tuning: list[dict[str, Any]]


def tuning_record(model: str, optimizer: str, tuned: tune.Tuned) -> dict[str, Any]:
    """A JSON-able record of one tuning sweep (grid, per-member val metrics, choice)."""
    return {
        "model": model,
        "optimizer": optimizer,
        "grid": tuned.grid.tolist(),
        "seeds": tuned.seeds.tolist(),
        "val_loss": tuned.val_loss.tolist(),
        "val_accuracy": tuned.val_accuracy.tolist(),
        "diverged": tuned.diverged.tolist(),
        "chosen": tuned.chosen,
        "learning_rate": tuned.learning_rate,
        "at_edge": tuned.at_edge,
        "wall_seconds": tuned.wall_seconds,
    }


def run_tuned(
    config: ml_collections.ConfigDict,
    plan: Plan,
    *,
    problems: Mapping[str, run_lib.Problem],
    splits: common.Splits,
    log: Callable[[str], None] = print,
) -> Study:
    """Tunes every minibatch optimizer's learning rate (one run_sweep per model and optimizer).

    Full-batch rules (``needs_objective``: L-BFGS's line search sets its own step)
    have no learning rate to tune: they keep ``fit``'s loop at the config's value.
    """
    results, all_results, tuning = [], [], []
    cache: dict = {}
    batch_size = min(config.batch_size, len(splits.train["label"]))
    jobs = [(m, o) for m in plan.models for o in plan.optimizers]
    for i, (model, opt) in enumerate(jobs, 1):
        start = time.monotonic()
        if optim.is_full_batch(opt):
            runs = run_lib.run_all(
                [run_lib.RunSpec(model, opt, plan.learning_rates[opt], s) for s in plan.seeds],
                problems=problems,
                splits=splits,
                config=config,
                log=None,
                optimizers=cache,
            )
            results += runs
            all_results += runs
            log(
                f"[{i}/{len(jobs)}] {model:>6s} {opt:>19s}: untuned (full batch), {len(runs)} seeds  "
                f"({time.monotonic() - start:.1f} s)"
            )
            continue
        optimizer, _ = run_lib.optimizer_for(config, opt, plan.learning_rates[opt], cache)
        grid = tune.learning_rate_grid(*config.tuning.lr_ranges[opt], int(config.tuning.grid_size))
        tuned = tune.tune_learning_rate(
            problems[model].model,
            optimizer,
            train=splits.train,
            val=splits.val,
            grid=grid,
            seeds=plan.seeds,
            num_steps=config.num_steps,
            batch_size=batch_size,
            eval_every=config.eval_every,
            explosion_factor=sweep_lib.EXPLOSION_FACTOR,
            select=config.tuning.select,
        )
        specs = [run_lib.RunSpec(model, opt, float(lr), int(s)) for lr, s in zip(*tune.grid_members(grid, plan.seeds))]
        members = sweep_lib.results_from_sweep(
            specs, tuned.sweep, problem=problems[model], optimizer=optimizer, splits=splits, config=config, start=start
        )
        all_results += members
        results += [members[k] for k in tuned.members_at(tuned.chosen)]
        tuning.append(tuning_record(model, opt, tuned))
        log(
            f"[{i}/{len(jobs)}] {model:>6s} {opt:>19s}: lr {grid[0]:.3g}..{grid[-1]:.3g} x {len(plan.seeds)} seeds, "
            f"chosen {tuned.learning_rate:.3g} (val loss {np.mean(tuned.val_loss[tuned.chosen]):.4f}, "
            f"acc {np.mean(tuned.val_accuracy[tuned.chosen]):.3f})"
            f"{' AT THE GRID EDGE' if tuned.at_edge else ''}, {int(tuned.diverged.sum())} diverged  "
            f"({time.monotonic() - start:.1f} s)"
        )
    return Study(results, all_results, tuning)


def run_fixed(
    config: ml_collections.ConfigDict,
    plan: Plan,
    *,
    problems: Mapping[str, run_lib.Problem],
    splits: common.Splits,
    log: Callable[[str], None] = print,
) -> Study:
    """``--notune``: every optimizer at the config's learning rate (the loop, or ``--sweep``)."""
    run_fn = sweep_lib.run_all_sweep if config.get("sweep", False) else run_lib.run_all
    specs = [
        run_lib.RunSpec(m, o, plan.learning_rates[o], s)
        for m in plan.models
        for o in plan.optimizers
        for s in plan.seeds
    ]
    results = run_fn(specs, problems=problems, splits=splits, config=config, log=log, optimizers={})
    return Study(results, results, [])


def run_train(
    config: ml_collections.ConfigDict,
    plan: Plan,
    workdir: Any,
    log: Callable[[str], None] = print,
    command: str | None = None,
) -> str:
    """The train mode: tune (or not), train every (model, optimizer, seed), then the report."""
    start, cpu_start = time.monotonic(), time.process_time()
    splits = common.load_splits(
        config.dataset,
        val_size=config.val_size,
        train_size=config.train_size or None,
        test_size=config.test_size or None,
        data_dir=config.data_dir or None,
    )
    log(
        f"{config.dataset}: train {len(splits.train['label'])}, val {len(splits.val['label'])}, "
        f"test {len(splits.test['label'])}, {splits.num_classes} classes, input {splits.input_shape}"
    )
    budget = tuning_budget(config, plan)
    log(f"budget: {budget_line(budget)}")
    problems = run_lib.build_problems(config, plan.models, splits.num_classes)
    study = (run_tuned if config.tune else run_fixed)(config, plan, problems=problems, splits=splits, log=log)
    if config.get("tensorboard", training.tensorboard_available()):
        report.write_tensorboard(workdir, study.results)
    return report.write_report(
        workdir,
        study.results,
        targets={m: p.target for m, p in problems.items()},
        tau_max=config.tau_max,
        config=config.to_dict(),
        all_results=study.all_results,
        tuning=study.tuning,
        budget=budget,
        budget_line=budget_line(budget),
        command=command,
        clock=(start, cpu_start),
    )
