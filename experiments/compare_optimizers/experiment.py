"""compare_optimizers as library functions: validate the config, run a mode, report.

``main.py`` only parses flags and calls :func:`apply_overrides`, :func:`validate` and
:func:`run`; tests call the same functions.
"""

from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple

import ml_collections

from jax231 import training

from experiments import _common as common
from experiments.compare_optimizers import optim, report, run as run_lib, sweep as sweep_lib, trajectories

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


def validate(config: ml_collections.ConfigDict) -> Plan:
    """Checks every name and number of ``config`` before anything is trained.

    Raises:
      UsageError: ``--<field>: unknown 'x'; valid: ...`` or a malformed value.
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
    if not isinstance(config.get("sweep", False), bool):
        raise common.UsageError(f"--sweep: expected true or false; got {config.sweep!r}")
    for field in ("num_steps", "batch_size", "eval_every", "lbfgs_steps", "lbfgs_eval_every",
                  "val_size", "lbfgs_history"):
        _positive(field, config[field])
    if isinstance(config.lr_search, bool) or not isinstance(config.lr_search, int) or config.lr_search < 0:
        raise common.UsageError(f"--lr_search: expected an integer >= 0; got {config.lr_search!r}")
    missing = [o for o in optimizers if o not in config.learning_rates]
    if missing:
        raise common.UsageError(f"--lr: no learning rate for {missing[0]!r}; give --lr={missing[0]}:VALUE")
    learning_rates = {o: float(config.learning_rates[o]) for o in optimizers}
    if mode == "2d":
        for surface in surfaces:
            absent = [o for o in optimizers if o not in config.trajectory_lrs.get(surface, {})]
            if absent:
                raise common.UsageError(f"--config.trajectory_lrs: no learning rate for {absent[0]!r} "
                                        f"on {surface!r}")
    return Plan(mode, models, optimizers, seeds, learning_rates, surfaces)


def run(config: ml_collections.ConfigDict, plan: Plan, workdir: Any,
        log: Callable[[str], None] = print) -> str:
    """Runs ``plan`` and writes every output under ``workdir``; returns the markdown summary."""
    if plan.mode == "2d":
        return run_2d(config, plan, workdir, log)
    return run_train(config, plan, workdir, log)


def run_2d(config: ml_collections.ConfigDict, plan: Plan, workdir: Any,
           log: Callable[[str], None] = print) -> str:
    """The 2-D mode: trajectories of every optimizer on every surface."""
    log(f"2-D mode: {', '.join(plan.optimizers)} on {', '.join(plan.surfaces)}")
    paths = trajectories.run_trajectories(
        plan.optimizers, surfaces=plan.surfaces,
        learning_rates={s: dict(config.trajectory_lrs[s]) for s in plan.surfaces},
        num_steps={s: int(config.trajectory_steps[s]) for s in plan.surfaces})
    return trajectories.write_trajectory_report(workdir, paths)


def run_train(config: ml_collections.ConfigDict, plan: Plan, workdir: Any,
              log: Callable[[str], None] = print) -> str:
    """The train mode: every (model, optimizer, seed) on the dataset, then the report."""
    start = time.monotonic()
    splits = common.load_splits(config.dataset, val_size=config.val_size,
                                train_size=config.train_size or None, test_size=config.test_size or None,
                                data_dir=config.data_dir or None)
    log(f"{config.dataset}: train {len(splits.train['label'])}, val {len(splits.val['label'])}, "
        f"test {len(splits.test['label'])}, {splits.num_classes} classes, input {splits.input_shape}")
    problems = run_lib.build_problems(config, plan.models, splits.num_classes)
    chosen = {(m, o): plan.learning_rates[o] for m in plan.models for o in plan.optimizers}
    run_fn = sweep_lib.run_all_sweep if config.get("sweep", False) else run_lib.run_all
    search_records: list[dict] = []
    cache: dict = {}  # (optimizer, lr) -> optimizer object, shared so that fit compiles once
    if config.lr_search > 0:
        log(f"learning-rate search: {config.lr_search} log-uniform samples per (model, optimizer), "
            f"seed {plan.seeds[0]}")
        chosen, search = run_lib.search_learning_rates(
            config, models=plan.models, optimizers=plan.optimizers, base_lrs=plan.learning_rates,
            problems=problems, splits=splits, seed=plan.seeds[0], log=log, optimizers_cache=cache,
            run_fn=run_fn)
        search_records = [report.result_record(r) for r in search]
        rows = [{"model": m, "optimizer": o, "chosen lr": f"{lr:.3g}"} for (m, o), lr in chosen.items()]
        common.write_tables(workdir, "lr_search", rows, title="learning-rate search (best val accuracy)")
    specs = [run_lib.RunSpec(m, o, chosen[(m, o)], s)
             for m in plan.models for o in plan.optimizers for s in plan.seeds]
    results = run_fn(specs, problems=problems, splits=splits, config=config, log=log, optimizers=cache)
    if config.get("tensorboard", training.tensorboard_available()):
        report.write_tensorboard(workdir, results)
    targets = {m: p.target for m, p in problems.items()}
    text = report.write_report(workdir, results, targets=targets, tau_max=config.tau_max,
                               config=config.to_dict(), profile_cost=config.profile_cost,
                               extra={"lr_search": search_records, "seconds_total": time.monotonic() - start})
    return text
