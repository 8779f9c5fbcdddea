"""``algoperf_mini``: every optimizer tuned and scored by AlgoPerf's rules on small workloads.

:func:`validate` checks the whole config before anything trains; :func:`run` runs
``config.algoperf_mode``: ``'benchmark'`` (external tuning and self-tuning on every
workload, then :mod:`.scoring` and the report) or ``'set_targets'`` (the run that sets
the workloads' targets, see ``algoperf_config.py``).

One *group* is the members trained together: all ``num_trials x num_studies`` trials of
one optimizer on one workload (hyperparameters drawn by :func:`sample_trials`, one seed
per trial), or its ``num_studies`` self-tuning runs. With ``config.sweep`` a group is
one :func:`train_members` call (``jax231.parallel.run_sweep``: one compiled program,
the hyperparameters written into each member's optimizer state); otherwise each member
is one ``jax231.training.fit``. Times: a member's seconds per step is the median
seconds per step of its group between evaluations (the first, which holds the
compilation, left out) divided by the group's size in sweep mode; seconds to target =
steps to target x that.
"""

from __future__ import annotations

import json
import math
import pathlib
import platform
import time
import zlib
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from scipy.stats import qmc

from jax231 import optimizers, parallel, training

from experiments import _common as common
from experiments.compare_optimizers import algoperf_report, scoring, workloads as workloads_lib

ALGOPERF_MODES = ("benchmark", "set_targets", "rescore")
SCALES = ("log", "linear")
RULESETS = ("external", "self-tuning")


class Plan(NamedTuple):
    """A validated selection.

    Attributes:
      mode: ``'benchmark'`` or ``'set_targets'``.
      workloads: workload names.
      optimizers: the optimizers scored (benchmark) or the target-setting ones.
      spaces: ``optimizer -> hyperparameter -> (low, high, scale)``.
    """

    mode: str
    workloads: tuple[str, ...]
    optimizers: tuple[str, ...]
    spaces: dict[str, dict[str, tuple[float, float, str]]]


# ----------------------------------------------------------------------------- validation
def _minibatch_optimizers() -> tuple[str, ...]:
    """Rules ``run_sweep`` can train (those needing the full-batch objective, L-BFGS and the like, excluded)."""
    return tuple(name for name in optimizers.NAMES if not optimizers.get(name).needs_objective)


def _check_space(name: str, space: Any) -> dict[str, tuple[float, float, str]]:
    field = f"--config.search_spaces.{name}"
    if not space:
        raise common.UsageError(
            f"{field}: expected at least one hyperparameter as (low, high, 'log' or 'linear'), got nothing"
        )
    out = {}
    for hp, spec in dict(space).items():
        if not isinstance(spec, (tuple, list)) or len(spec) != 3 or spec[2] not in SCALES:
            raise common.UsageError(f"{field}.{hp}: expected (low, high, one of {', '.join(SCALES)}), got {spec!r}")
        low, high, scale = float(spec[0]), float(spec[1]), str(spec[2])
        if not (math.isfinite(low) and math.isfinite(high) and low <= high and (scale == "linear" or low > 0)):
            raise common.UsageError(
                f"{field}.{hp}: expected finite low <= high (low > 0 for 'log'), got ({low}, {high}, {scale!r})"
            )
        out[hp] = (low, high, scale)
    try:
        optimizers.get(name, **{hp: low for hp, (low, _, _) in out.items()})
    except ValueError as err:
        raise common.UsageError(f"{field}: {err}") from None
    return out


def _check_workload(name: str, cfg: Any) -> None:
    field = f"--config.workload_configs.{name}"
    if cfg is None:
        raise common.UsageError(f"{field}: expected an entry for the workload, got none")
    metric = common.parse_choices(
        f"config.workload_configs.{name}.metric", [cfg.get("metric")], tuple(workloads_lib.METRICS)
    )[0]
    target = cfg.get("target")
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not math.isfinite(target):
        raise common.UsageError(f"{field}.target: expected a finite number, got {target!r}")
    if metric == "val_accuracy" and not 0 < target <= 1:
        raise common.UsageError(
            f"{field}.target: expected a val_accuracy in (0, 1] (no optimizer can exceed accuracy 1), got {target}"
        )
    if metric == "val_loss" and not target > 0:
        raise common.UsageError(f"{field}.target: expected a val_loss > 0, got {target}")
    for key in ("num_steps", "batch_size", "eval_every", "val_size"):
        value = cfg.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise common.UsageError(f"{field}.{key}: expected a positive integer, got {value!r}")


def _positive_int(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise common.UsageError(f"--config.{field}: expected a positive integer, got {value!r}")
    return value


def validate(config: ml_collections.ConfigDict) -> Plan:
    """Checks every name and number of an ``algoperf_mini`` config before anything trains.

    Raises:
      UsageError: one line naming the field and, for names, the valid choices.
    """
    mode = common.parse_choices("config.algoperf_mode", [config.algoperf_mode], ALGOPERF_MODES)[0]
    names = common.parse_choices("config.workloads", config.workloads, workloads_lib.NAMES)
    field = "target_setting_optimizers" if mode == "set_targets" else "optimizers"
    chosen = common.parse_choices(f"config.{field}", config[field], _minibatch_optimizers())
    spaces_cfg = config.search_spaces
    missing = [o for o in chosen if o not in spaces_cfg]
    if missing:
        raise common.UsageError(
            f"--config.search_spaces: expected an entry for every optimizer of "
            f"--config.{field}, got none for {missing[0]!r} (entries: {', '.join(spaces_cfg)})"
        )
    spaces = {o: _check_space(o, spaces_cfg[o]) for o in chosen}
    for name in names:
        _check_workload(name, config.workload_configs.get(name))
    for key in ("num_trials", "num_studies", "target_setting_trials", "target_setting_seeds"):
        _positive_int(key, config[key])
    if not config.tau_max > 1:
        raise common.UsageError(f"--config.tau_max: expected a value > 1, got {config.tau_max}")
    if not config.self_tuning_factor >= 1:
        raise common.UsageError(f"--config.self_tuning_factor: expected a value >= 1, got {config.self_tuning_factor}")
    if not 0 < config.target_setting_fraction <= 1:
        raise common.UsageError(
            f"--config.target_setting_fraction: expected a value in (0, 1], got {config.target_setting_fraction}"
        )
    return Plan(mode, names, chosen, spaces)


# ----------------------------------------------------------------------------- trials
def draw_seed(*parts: Any) -> int:
    """A stable seed from names (``zlib.crc32`` of ``'a/b/c'``): draws do not move when workloads are added."""
    return zlib.crc32("/".join(str(p) for p in parts).encode())


def sample_trials(space: Mapping[str, tuple[float, float, str]], num: int, *, seed: int) -> dict[str, np.ndarray]:
    """``num`` quasirandom points (scrambled Halton, as AlgoPerf's quasirandom search) of a search space.

    Returns:
      ``hyperparameter -> (num,) float32`` values, log-uniform or uniform in ``[low, high]``.
    """
    names = sorted(space)
    unit = qmc.Halton(d=len(names), scramble=True, seed=seed).random(num)
    out = {}
    for i, name in enumerate(names):
        low, high, scale = space[name]
        if scale == "log":
            values = np.exp(np.log(low) + unit[:, i] * (np.log(high) - np.log(low)))
        else:
            values = low + unit[:, i] * (high - low)
        out[name] = values.astype(np.float32)
    return out


def split_studies(num_trials: int, num_studies: int, *, seed: int) -> np.ndarray:
    """``(S, N)`` member indices: the ``S * N`` draws shuffled into ``S`` studies of ``N`` trials."""
    return np.random.default_rng(seed).permutation(num_trials * num_studies).reshape(num_studies, num_trials)


# ----------------------------------------------------------------------------- training
class Group(NamedTuple):
    """The members of one group after training.

    Attributes:
      steps: ``(E,)`` evaluated steps.
      metric: ``(K, E)`` the workload's validation metric (NaN after a member diverged).
      status: ``K`` statuses (``'completed'`` or ``'diverged'``).
      seconds_per_step: ``(K,)`` steady-state seconds per update of each member.
      wall_seconds: wall time of the group (compilation included).
    """

    steps: np.ndarray
    metric: np.ndarray
    status: list[str]
    seconds_per_step: np.ndarray
    wall_seconds: float


def _per_step(steps: np.ndarray, times: np.ndarray) -> float:
    """Median seconds per update between evaluations, the first interval (compilation) left out."""
    rates = np.diff(np.concatenate([[0.0], times])) / np.maximum(np.diff(np.concatenate([[0.0], steps])), 1.0)
    return float(np.median(rates[1:] if len(rates) > 1 else rates))


def train_members(model: Any, optimizer: str, **kwargs: Any) -> Any:
    """Trains a group's members together: the one call of ``jax231.parallel.run_sweep``.

    When more than one device exists (an accelerator host, several hosts under
    ``jax.distributed``, or ``XLA_FLAGS=--xla_force_host_platform_device_count=8``),
    the member axis is sharded over a ``members`` mesh of all devices
    (:func:`jax231.parallel.make_sweep_mesh`); results equal the one-device sweep's
    up to float32 reassociation.
    """
    mesh = parallel.make_sweep_mesh() if jax.device_count() > 1 else None
    return parallel.run_sweep(model, optimizer, mesh=mesh, **kwargs)


def _sweep_group(
    work: workloads_lib.Workload,
    wcfg,
    optimizer: str,
    seeds: np.ndarray,
    hyperparams: Mapping[str, np.ndarray] | None,
    num_steps: int,
) -> Group:
    start = time.monotonic()
    result = train_members(
        work.model,
        optimizer,
        train=work.splits.train,
        val=work.splits.val,
        seeds=seeds,
        hyperparams=hyperparams or None,
        num_steps=num_steps,
        batch_size=wcfg.batch_size,
        eval_every=wcfg.eval_every,
        loss=work.loss,
    )
    steps = np.asarray(result.history["step"], np.float64)
    metric = np.array(result.history[work.metric], np.float64)
    for k in np.flatnonzero(result.status == "diverged"):
        metric[k, steps > result.first_bad_step[k]] = np.nan
    per_step = _per_step(steps, np.asarray(result.history["time"], np.float64)) / len(seeds)
    return Group(
        steps, metric, [str(s) for s in result.status], np.full(len(seeds), per_step), time.monotonic() - start
    )


def _loop_group(
    work: workloads_lib.Workload,
    wcfg,
    optimizer: str,
    seeds: np.ndarray,
    hyperparams: Mapping[str, np.ndarray] | None,
    num_steps: int,
) -> Group:
    start = time.monotonic()
    tx = optimizers.get(optimizer)  # one object: fit compiles once, the values are data
    steps = np.arange(wcfg.eval_every, num_steps + wcfg.eval_every, wcfg.eval_every, dtype=np.float64)
    steps = np.minimum(steps, num_steps)[: math.ceil(num_steps / wcfg.eval_every)]
    metric, status, per_step = np.full((len(seeds), len(steps)), np.nan), [], []
    for k, seed in enumerate(seeds):
        values = {name: float(v[k]) for name, v in (hyperparams or {}).items()}
        result = training.fit(
            work.model,
            tx,
            train=work.splits.train,
            val=work.splits.val,
            loss=work.loss,
            num_steps=num_steps,
            batch_size=wcfg.batch_size,
            eval_every=wcfg.eval_every,
            seed=int(seed),
            check_initial_loss=False,
            hyperparams=values or None,
        )
        row = np.asarray(result.history[work.metric], np.float64)
        metric[k, : len(row)] = row
        status.append("diverged" if result.status == "diverged" else "completed")
        per_step.append(
            _per_step(np.asarray(result.history["step"], np.float64), np.asarray(result.history["time"], np.float64))
        )
    return Group(steps, metric, status, np.asarray(per_step), time.monotonic() - start)


def train_group(
    work: workloads_lib.Workload,
    wcfg,
    optimizer: str,
    seeds: np.ndarray,
    hyperparams: Mapping[str, np.ndarray] | None,
    num_steps: int,
    *,
    sweep: bool,
) -> Group:
    """Trains one group (see the module docstring) and returns its evaluations."""
    return (_sweep_group if sweep else _loop_group)(work, wcfg, optimizer, seeds, hyperparams, num_steps)


# ----------------------------------------------------------------------------- scoring one group
class Trial(NamedTuple):
    """One member's figures (``inf``: target not reached)."""

    optimizer: str
    ruleset: str
    index: int
    study: int
    seed: int
    hyperparams: dict[str, float]
    status: str
    steps_to_target: float
    seconds_to_target: float
    best_metric: float
    curve: list[float]
    steps: list[float]
    seconds_per_step: float


def _best(values: np.ndarray, mode: str) -> float:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan
    return float(finite.max() if mode == "max" else finite.min())


def score_group(
    group: Group,
    *,
    optimizer: str,
    ruleset: str,
    seeds: np.ndarray,
    hyperparams: Mapping[str, np.ndarray],
    studies: np.ndarray,
    target: float,
    mode: str,
) -> list[Trial]:
    """Every member's time to target (steps and seconds) and best validation metric."""
    study_of = np.empty(studies.size, int)
    for s, members in enumerate(studies):
        study_of[members] = s
    trials = []
    for k in range(len(seeds)):
        steps = scoring.time_to_target(group.steps, group.metric[k], target=target, mode=mode)
        trials.append(
            Trial(
                optimizer,
                ruleset,
                k,
                int(study_of[k]),
                int(seeds[k]),
                {n: float(v[k]) for n, v in hyperparams.items()},
                group.status[k],
                steps,
                steps * float(group.seconds_per_step[k]),
                _best(group.metric[k], mode),
                [float(v) for v in group.metric[k]],
                [float(v) for v in group.steps],
                float(group.seconds_per_step[k]),
            )
        )
    return trials


def ruleset_times(trials: Sequence[Trial]) -> dict[str, float]:
    """``{'steps', 'seconds'}`` of one optimizer under one ruleset: the median over studies of each
    study's fastest trial (:func:`scoring.external_tuning_time`; a self-tuning run is a study of one)."""
    studies = sorted({t.study for t in trials})
    out = {}
    for cost in ("steps", "seconds"):
        table = np.asarray([[getattr(t, f"{cost}_to_target") for t in trials if t.study == s] for s in studies])
        out[cost] = scoring.external_tuning_time(table)
    return out


def retarget(trial: Trial, target: float, mode: str) -> Trial:
    """``trial`` scored against another ``target`` (its stored curve; no training)."""
    steps = scoring.time_to_target(trial.steps, trial.curve, target=target, mode=mode)
    return trial._replace(steps_to_target=steps, seconds_to_target=steps * trial.seconds_per_step)


# ----------------------------------------------------------------------------- benchmark
class WorkloadResult(NamedTuple):
    """What one workload produced (or why it was skipped)."""

    name: str
    description: str
    metric: str
    target: float
    steps: list[float]
    trials: list[Trial]
    times: dict[str, dict[str, dict[str, float]]]  # ruleset -> optimizer -> {'steps', 'seconds'}
    wall_seconds: float
    skipped: str = ""


def default_hyperparams(optimizer: str, names: Sequence[str]) -> dict[str, float]:
    """The library defaults of ``names`` (read from a built state: what self-tuning runs with)."""
    held = optimizers.get_hyperparams(optimizers.get(optimizer).init({"w": jnp.zeros((2, 2))}))
    return {name: float(held[name]) for name in names}


class Members(NamedTuple):
    """The members of one (workload, optimizer) group and the rulesets they belong to.

    Attributes:
      seeds: ``(K,)`` seeds, the external trials first, then the self-tuning runs.
      hyperparams: ``name -> (K,)`` values (self-tuning members hold the library defaults).
      parts: ``(ruleset, member indices, (S, N) studies of those indices, step budget)``.
      num_steps: steps trained (the longest budget).
    """

    seeds: np.ndarray
    hyperparams: dict[str, np.ndarray]
    parts: list[tuple[str, np.ndarray, np.ndarray, int]]
    num_steps: int


def plan_members(config, plan: Plan, name: str, optimizer: str, budget: int) -> Members:
    """External trials (``N x S`` draws) and self-tuning runs (``S``, defaults, 1.5x budget) of one group.

    Both rulesets share one ``run_sweep`` program (one compilation per optimizer per
    workload): every member trains for the longest budget and each is scored on the
    evaluations within its own budget. Training on past a budget changes nothing
    before it (constant learning rates; no rule here depends on the run length).
    """
    n, s = config.num_trials, config.num_studies
    draws = sample_trials(plan.spaces[optimizer], n * s, seed=draw_seed(config.search_seed, name, optimizer))
    studies = split_studies(n, s, seed=draw_seed(config.search_seed, name, optimizer, "studies"))
    seeds = [config.seed + np.arange(n * s)]
    parts = [("external", np.arange(n * s), studies, budget)]
    num_steps = budget
    if config.self_tuning:
        own = int(round(config.self_tuning_factor * budget))
        defaults = default_hyperparams(optimizer, list(draws))
        draws = {k: np.concatenate([v, np.full(s, defaults[k], np.float32)]) for k, v in draws.items()}
        seeds.append(config.seed + 10_000 + np.arange(s))
        parts.append(("self-tuning", n * s + np.arange(s), (n * s + np.arange(s)).reshape(s, 1), own))
        num_steps = max(num_steps, own)
    return Members(np.concatenate(seeds).astype(np.int32), draws, parts, num_steps)


def _part(group: Group, members: np.ndarray, budget: int) -> Group:
    """The rows ``members`` of ``group``, evaluations up to ``budget``."""
    keep = group.steps <= budget
    return Group(
        group.steps[keep],
        group.metric[members][:, keep],
        [group.status[k] for k in members],
        group.seconds_per_step[members],
        group.wall_seconds,
    )


def run_workload(config, plan: Plan, name: str, log: Callable[[str], None] = print) -> WorkloadResult:
    """External tuning and self-tuning of every optimizer on workload ``name`` (one group per optimizer)."""
    start = time.monotonic()
    wcfg = config.workload_configs[name]
    mode = workloads_lib.METRICS[wcfg.metric]
    try:
        work = workloads_lib.build(name, wcfg)
    except workloads_lib.WorkloadUnavailable as err:
        log(f"{name}: skipped: {err}")
        return WorkloadResult(name, "", wcfg.metric, float(wcfg.target), [], [], {}, 0.0, skipped=str(err))
    log(f"{name}: {work.description}; target {wcfg.metric} {'>=' if mode == 'max' else '<='} {wcfg.target}")
    trials: list[Trial] = []
    times: dict[str, dict[str, dict[str, float]]] = {
        r: {} for r in RULESETS if r != "self-tuning" or config.self_tuning
    }
    steps: list[float] = []
    for optimizer in plan.optimizers:
        members = plan_members(config, plan, name, optimizer, wcfg.num_steps)
        group = train_group(
            work, wcfg, optimizer, members.seeds, members.hyperparams, members.num_steps, sweep=config.sweep
        )
        for ruleset, index, studies, budget in members.parts:
            part = _part(group, index, budget)
            local = np.searchsorted(index, studies)  # study tables index the part's rows
            scored = score_group(
                part,
                optimizer=optimizer,
                ruleset=ruleset,
                seeds=members.seeds[index],
                hyperparams={k: v[index] for k, v in members.hyperparams.items()},
                studies=local,
                target=float(wcfg.target),
                mode=mode,
            )
            trials += scored
            times[ruleset][optimizer] = ruleset_times(scored)
            steps = [float(x) for x in part.steps] if ruleset == "external" else steps
            reached = sum(math.isfinite(t.steps_to_target) for t in scored)
            log(
                f"  {optimizer:>20s} {ruleset:>11s}: {reached}/{len(scored)} reached, median over studies "
                f"{times[ruleset][optimizer]['steps']:g} steps"
            )
        log(f"  {optimizer:>20s}: {len(members.seeds)} members, {members.num_steps} steps, {group.wall_seconds:.0f} s")
    return WorkloadResult(
        name, work.description, wcfg.metric, float(wcfg.target), steps, trials, times, time.monotonic() - start
    )


def run_benchmark(config, plan: Plan, workdir, log: Callable[[str], None] = print) -> str:
    """Every workload, the scores, the report; returns the report's markdown."""
    start_wall, start_cpu = time.monotonic(), time.process_time()
    machine = f"{platform.machine()}, {platform.system()}, {_devices()}"
    results: list[WorkloadResult] = []
    text = ""
    for name in plan.workloads:  # the report is rewritten after every workload: a stopped run keeps its part
        results.append(run_workload(config, plan, name, log))
        text = algoperf_report.write_benchmark(
            workdir,
            results,
            config=config,
            plan=plan,
            machine=machine,
            wall_seconds=time.monotonic() - start_wall,
            cpu_seconds=time.process_time() - start_cpu,
        )
    return text


def _devices() -> str:
    devices = jax.devices()
    return f"{len(devices)} x {devices[0].platform} device"


# ----------------------------------------------------------------------------- targets
class TargetRow(NamedTuple):
    """How one workload's target was set."""

    workload: str
    metric: str
    target: float
    optimizer: str
    hyperparams: dict[str, float]
    seed_values: list[float]
    num_steps: int


def set_target(config, plan: Plan, name: str, log: Callable[[str], None] = print) -> TargetRow | None:
    """AlgoPerf's target protocol on one workload (see ``algoperf_config.py``); None when unavailable."""
    wcfg = config.workload_configs[name]
    mode = workloads_lib.METRICS[wcfg.metric]
    try:
        work = workloads_lib.build(name, wcfg)
    except workloads_lib.WorkloadUnavailable as err:
        log(f"{name}: skipped: {err}")
        return None
    budget = max(
        wcfg.eval_every, int(round(config.target_setting_fraction * wcfg.num_steps / wcfg.eval_every)) * wcfg.eval_every
    )
    best: TargetRow | None = None
    for optimizer in plan.optimizers:
        hps = sample_trials(
            plan.spaces[optimizer],
            config.target_setting_trials,
            seed=draw_seed(config.search_seed, name, optimizer, "targets"),
        )
        seeds = config.seed + 20_000 + np.arange(config.target_setting_trials, dtype=np.int32)
        group = train_group(work, wcfg, optimizer, seeds, hps, budget, sweep=config.sweep)
        bests = [_best(row, mode) for row in group.metric]
        k = int(np.nanargmax(bests) if mode == "max" else np.nanargmin(bests))
        chosen = {n: v[k] for n, v in hps.items()}
        reseeds = config.seed + 30_000 + np.arange(config.target_setting_seeds, dtype=np.int32)
        rerun = train_group(
            work,
            wcfg,
            optimizer,
            reseeds,
            {n: np.full(len(reseeds), v, np.float32) for n, v in chosen.items()},
            budget,
            sweep=config.sweep,
        )
        values = [_best(row, mode) for row in rerun.metric]
        row = TargetRow(
            name,
            wcfg.metric,
            float(np.median(values)),
            optimizer,
            {n: float(v) for n, v in chosen.items()},
            values,
            budget,
        )
        log(
            f"  {name}: {optimizer} best trial {row.hyperparams} -> median {wcfg.metric} {row.target:.4g} "
            f"over {len(values)} seeds"
        )
        better = best is None or (row.target > best.target if mode == "max" else row.target < best.target)
        best = row if better else best
    return best


def run_set_targets(config, plan: Plan, workdir, log: Callable[[str], None] = print) -> str:
    """The target-setting run: one :class:`TargetRow` per workload, written to ``targets.md``."""
    start_wall, start_cpu = time.monotonic(), time.process_time()
    rows: list[TargetRow] = []
    text = ""
    for name in plan.workloads:  # rewritten after every workload, as the benchmark's report
        row = set_target(config, plan, name, log)
        rows += [] if row is None else [row]
        text = algoperf_report.write_targets(
            workdir,
            rows,
            config=config,
            wall_seconds=time.monotonic() - start_wall,
            cpu_seconds=time.process_time() - start_cpu,
        )
    return text


def _trial_from_json(record: Mapping[str, Any]) -> Trial:
    """A :class:`Trial` from its JSON record (JSON holds ``null`` for inf and NaN)."""

    def number(v, missing):
        return missing if v is None else float(v)

    fields = {k: v for k, v in record.items() if k != "workload"}
    for key in ("steps_to_target", "seconds_to_target"):
        fields[key] = number(fields[key], math.inf)
    fields["best_metric"] = number(fields["best_metric"], math.nan)
    fields["seconds_per_step"] = number(fields["seconds_per_step"], math.nan)
    fields["curve"] = [number(v, math.nan) for v in fields["curve"]]
    return Trial(**fields)


def load_results(path) -> list[WorkloadResult]:
    """The workloads of a benchmark's ``results.json`` (trials with their curves)."""
    data = json.loads(pathlib.Path(path).read_text())
    out = []
    for name, info in data["workloads"].items():
        trials = [_trial_from_json(rec) for rec in data["trials"] if rec["workload"] == name]
        out.append(
            WorkloadResult(
                name,
                info["description"],
                info["metric"],
                info["target"],
                info["steps"],
                trials,
                {},
                info["wall_seconds"],
                info["skipped"],
            )
        )
    return out


def rescore(results: Sequence[WorkloadResult], config) -> list[WorkloadResult]:
    """Every workload scored again with the targets of ``config`` (from the stored curves; no training)."""
    out = []
    for r in results:
        if r.skipped:
            out.append(r)
            continue
        wcfg = config.workload_configs[r.name]
        trials = [retarget(t, float(wcfg.target), workloads_lib.METRICS[wcfg.metric]) for t in r.trials]
        times: dict[str, dict[str, dict[str, float]]] = {}
        for t in trials:
            times.setdefault(t.ruleset, {})[t.optimizer] = {}
        for ruleset, per_opt in times.items():
            for opt in per_opt:
                per_opt[opt] = ruleset_times([t for t in trials if t.ruleset == ruleset and t.optimizer == opt])
        out.append(r._replace(target=float(wcfg.target), trials=trials, times=times))
    return out


def run_rescore(config, plan: Plan, workdir, log: Callable[[str], None] = print) -> str:
    """Rewrites the report of the benchmark in ``workdir`` with the config's targets (no training)."""
    results = [
        r for r in rescore(load_results(pathlib.Path(workdir) / "results.json"), config) if r.name in plan.workloads
    ]
    previous = json.loads((pathlib.Path(workdir) / "results.json").read_text())
    log(f"rescored {len(results)} workloads with the config's targets")
    return algoperf_report.write_benchmark(
        workdir,
        results,
        config=config,
        plan=plan,
        machine=previous["machine"],
        wall_seconds=previous["wall_seconds"],
        cpu_seconds=previous["cpu_seconds"],
    )


def run(config: ml_collections.ConfigDict, workdir, log: Callable[[str], None] = print) -> str:
    """Validates ``config`` and runs its ``algoperf_mode``; returns the markdown written."""
    plan = validate(config)
    pathlib.Path(workdir).mkdir(parents=True, exist_ok=True)
    if plan.mode == "rescore":
        return run_rescore(config, plan, workdir, log)
    if plan.mode == "set_targets":
        return run_set_targets(config, plan, workdir, log)
    return run_benchmark(config, plan, workdir, log)


__all__ = [
    "Group",
    "Plan",
    "Trial",
    "WorkloadResult",
    "load_results",
    "plan_members",
    "rescore",
    "retarget",
    "run",
    "run_benchmark",
    "run_rescore",
    "run_set_targets",
    "run_workload",
    "sample_trials",
    "score_group",
    "set_target",
    "split_studies",
    "train_group",
    "train_members",
    "validate",
]
