"""Report of ``algoperf_mini``: a table per workload, the ranking, profile PNGs, curves, JSON of every trial.

``report.md`` embeds every table and plot, with the command, the budget, the machine, the
measured wall and CPU time and a one-paragraph reading generated from the scores
(:func:`reading`); ``results.json`` holds every trial for later analysis.
"""

from __future__ import annotations

import math
import pathlib
from typing import Any, Sequence

import numpy as np

from jax231 import training

from experiments import _common as common
from experiments.compare_optimizers import scoring

COMMAND = (
    "python -m experiments.compare_optimizers.main "
    "--config=experiments/compare_optimizers/config.py:algoperf_mini --workdir=WORKDIR"
)
PROFILES = (("external", "steps"), ("external", "seconds"), ("self-tuning", "steps"), ("self-tuning", "seconds"))


def _fmt(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:.4g}"


def _hps(values: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.3g}" for k, v in values.items()) or "defaults"


def workload_rows(result: Any, optimizers: Sequence[str]) -> list[dict]:
    """One row per optimizer: both rulesets' times, trials reached, the fastest trial, the best metric."""
    rows = []
    for opt in optimizers:
        ext = [t for t in result.trials if t.optimizer == opt and t.ruleset == "external"]
        own = [t for t in result.trials if t.optimizer == opt and t.ruleset == "self-tuning"]
        fastest = min(ext, key=lambda t: (t.steps_to_target, t.index))
        mode = "max" if result.metric == "val_accuracy" else "min"
        best = [t.best_metric for t in ext if math.isfinite(t.best_metric)]
        row = {
            "optimizer": opt,
            "external: steps": _fmt(result.times["external"][opt]["steps"]),
            "external: s": _fmt(result.times["external"][opt]["seconds"]),
            "trials reached": f"{sum(math.isfinite(t.steps_to_target) for t in ext)}/{len(ext)}",
            "fastest trial": _hps(fastest.hyperparams) if math.isfinite(fastest.steps_to_target) else "—",
            f"best {result.metric}": _fmt((max if mode == "max" else min)(best)) if best else "—",
        }
        if own:
            row.update(
                {
                    "self-tuning: steps": _fmt(result.times["self-tuning"][opt]["steps"]),
                    "self-tuning: s": _fmt(result.times["self-tuning"][opt]["seconds"]),
                    "self reached": f"{sum(math.isfinite(t.steps_to_target) for t in own)}/{len(own)}",
                }
            )
        rows.append(row)
    return rows


def profiles(results: Sequence[Any], optimizers: Sequence[str], *, tau_max: float) -> dict[str, common.Profile]:
    """The four profiles (ruleset x cost) over the workloads that ran."""
    ran = [r for r in results if not r.skipped]
    out = {}
    for ruleset, cost in PROFILES:
        if not ran or not all(ruleset in r.times and r.times[ruleset] for r in ran):
            continue
        times = {opt: [r.times[ruleset][opt][cost] for r in ran] for opt in optimizers}
        out[f"{ruleset}, {cost}"] = scoring.benchmark(times, tau_max=tau_max)
    return out


def _curves(workdir: pathlib.Path, results: Sequence[Any], optimizers: Sequence[str]) -> pathlib.Path | None:
    """Validation metric vs step of each optimizer's best external trial, one panel per workload."""
    panels = {}
    for r in results:
        if r.skipped:
            continue
        series = {}
        for opt in optimizers:
            ext = [t for t in r.trials if t.optimizer == opt and t.ruleset == "external"]
            key = (lambda t: -t.best_metric) if r.metric == "val_accuracy" else (lambda t: t.best_metric)
            best = min(ext, key=lambda t: key(t) if math.isfinite(t.best_metric) else math.inf)
            series[opt] = (r.steps, [best.curve])
        panels[f"{r.name} ({r.metric}, target {r.target:g})"] = series
    if not panels:
        return None
    return common.plot_curves(
        workdir / "curves.png", panels, ylabel="validation metric", title="best external-tuning trial per optimizer"
    )


def _winner_sentence(name: str, profile: common.Profile) -> str:
    """``'<name>: best <solver> (score s, reached k/P), then <solver> (s), ...'`` for one profile."""
    reached = np.isfinite(profile.ratios).sum(axis=1)
    order = sorted(range(len(profile.solvers)), key=lambda i: (-float(profile.scores[i]), profile.solvers[i]))
    first, rest = order[0], order[1:]
    problems = profile.ratios.shape[1]
    text = (
        f"In the {name} ranking {profile.solvers[first]} scores highest ({float(profile.scores[first]):.3f}, "
        f"reaching the target on {int(reached[first])}/{problems} workloads)"
    )
    if rest:
        text += ", then " + ", ".join(f"{profile.solvers[i]} ({float(profile.scores[i]):.3f})" for i in rest)
    return text + "."


def reading(results: Sequence[Any], profs: dict[str, common.Profile]) -> str:
    """The one-paragraph reading of a benchmark run, every figure taken from the arguments.

    It names the leader of each ruleset's step profile (the stable cost), the workloads whose
    target no optimizer reached, and how many (optimizer, workload) pairs reached the target
    under external tuning.
    """
    ran = [r for r in results if not r.skipped]
    if not ran or not profs:
        return "No workload ran to the end, so there is nothing to rank."
    sentences = [
        _winner_sentence(name, profs[name]) for name in ("external, steps", "self-tuning, steps") if name in profs
    ]
    external = profs.get("external, steps")
    if external is not None:
        solved = np.isfinite(external.ratios)
        unsolved = [r.name for r, any_solved in zip(ran, solved.any(axis=0)) if not any_solved]
        sentences.append(
            f"Under external tuning {int(solved.sum())} of {solved.size} (optimizer, workload) pairs reached "
            "the target (the median over studies of each study's fastest trial is finite)"
            + (f"; no optimizer reached it on {', '.join(unsolved)}." if unsolved else ".")
        )
    if "external, seconds" in profs:
        sentences.append(
            "The seconds profiles use steady-state seconds per step on this machine; on a shared machine "
            "they carry its contention, the step profiles do not."
        )
    return " ".join(sentences)


def _trial_records(results: Sequence[Any]) -> list[dict]:
    return [{"workload": r.name, **t._asdict()} for r in results for t in r.trials]


def write_benchmark(
    workdir: Any,
    results: Sequence[Any],
    *,
    config: Any,
    plan: Any,
    machine: str,
    wall_seconds: float,
    cpu_seconds: float,
) -> str:
    """Writes every table, plot and ``report.md``/``results.json``; returns the markdown."""
    workdir = pathlib.Path(workdir)
    parts = [
        "# algoperf_mini",
        "",
        f"Command: `{COMMAND}`",
        "",
        f"Budget: {config.num_trials} trials x {config.num_studies} studies per (optimizer, workload) "
        f"(external tuning); self-tuning: library defaults, {config.num_studies} runs, "
        f"{config.self_tuning_factor}x the steps. Training path: "
        f"{'run_sweep (one program per group)' if config.sweep else 'fit, trial by trial'}.",
        "",
        f"Machine: {machine}. Wall {wall_seconds / 60:.1f} min, CPU {cpu_seconds / 60:.1f} min "
        "(process time; the machine may be shared).",
        "",
    ]
    profs = profiles(results, plan.optimizers, tau_max=config.tau_max)
    parts += ["## Reading", "", reading(results, profs), ""]
    for r in results:
        if r.skipped:
            parts += [f"## {r.name}", "", f"Skipped: {r.skipped}", ""]
            continue
        title = f"{r.name}: {r.description}; target {r.metric} {r.target:g}"
        parts.append(common.write_tables(workdir, f"workload_{r.name}", workload_rows(r, plan.optimizers), title=title))
    if profs:
        parts.append(
            common.write_tables(
                workdir,
                "ranking",
                scoring.ranking_rows(profs),
                title="ranking: AlgoPerf benchmark score (area under the profile on [1, 4], normalised)",
            )
        )
    for name, profile in profs.items():
        stem = "profile_" + name.replace(", ", "_").replace("-", "_")
        common.plot_profile(
            workdir / f"{stem}.png",
            profile,
            cost_name=name.split(", ")[1] + " to target",
            title=f"performance profile: {name}",
        )
        parts += [f"![{name}]({stem}.png)", ""]
    if _curves(workdir, results, plan.optimizers) is not None:
        parts += ["![curves](curves.png)", ""]
    text = "\n".join(parts) + "\n"
    common.write_json(
        workdir / "results.json",
        {
            "config": config.to_dict(),
            "machine": machine,
            "wall_seconds": wall_seconds,
            "cpu_seconds": cpu_seconds,
            "times": {r.name: r.times for r in results},
            "workloads": {
                r.name: {
                    "description": r.description,
                    "metric": r.metric,
                    "target": r.target,
                    "steps": r.steps,
                    "wall_seconds": r.wall_seconds,
                    "skipped": r.skipped,
                }
                for r in results
            },
            "trials": _trial_records(results),
            "scores": {name: dict(zip(p.solvers, np.asarray(p.scores).tolist())) for name, p in profs.items()},
        },
    )
    training.atomic_write_text(workdir / "report.md", text)
    return text


def write_targets(workdir: Any, rows: Sequence[Any], *, config: Any, wall_seconds: float, cpu_seconds: float) -> str:
    """Writes ``targets.md`` (how each target was set) and returns it."""
    workdir = pathlib.Path(workdir)
    table = [
        {
            "workload": r.workload,
            "metric": r.metric,
            "target": f"{r.target:.4g}",
            "set by": r.optimizer,
            "hyperparameters": _hps(r.hyperparams),
            "steps": r.num_steps,
            "per-seed best": ", ".join(f"{v:.4g}" for v in r.seed_values),
        }
        for r in rows
    ]
    notes = (
        f"Target-setting algorithms {config.target_setting_optimizers}, {config.target_setting_trials} "
        f"trials each, best rerun with {config.target_setting_seeds} seeds; target = median of the seeds' "
        f"best validation metric. Wall {wall_seconds / 60:.1f} min, CPU {cpu_seconds / 60:.1f} min."
    )
    text = common.write_tables(workdir, "targets", table, title="targets (AlgoPerf's protocol, small)", notes=notes)
    common.write_json(workdir / "targets.json", [r._asdict() for r in rows])
    return text


__all__ = ["COMMAND", "profiles", "workload_rows", "write_benchmark", "write_targets"]
