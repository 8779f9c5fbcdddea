"""Report of compare_optimizers: summary and tuning tables, curves, sensitivity, profiles, JSON, report.md."""

from __future__ import annotations

import math
import pathlib
from typing import Any, Mapping, Sequence

import numpy as np

from jax231 import training

from experiments import _common as common
from experiments.compare_optimizers import optim, report_md, sensitivity
from experiments.compare_optimizers.run import RunResult

SUMMARY_COLUMNS = (
    "model",
    "optimizer",
    "lr",
    "final train loss",
    "val acc",
    "test acc",
    "steps to target",
    "seconds to target",
    "reached",
    "seeds",
)


def _mean_std(values: Sequence[float], *, digits: int = 3) -> str:
    return common.format_mean_std(values, digits=digits)


def summary_rows(results: Sequence[RunResult], *, targets: Mapping[str, float]) -> list[dict]:
    """One row per (model, optimizer): mean ± std over seeds.

    Steps and seconds to target average the seeds that reached the target (``reached``
    says how many); accuracies are those of the final parameters.
    """
    records = [{"model": r.spec.model, "optimizer": r.spec.optimizer, "result": r} for r in results]

    def col(fn, digits=3):
        return lambda group: _mean_std([fn(g["result"]) for g in group], digits=digits)

    rows = common.aggregate(
        records,
        by=("model", "optimizer"),
        columns={
            "lr": lambda g: ", ".join(sorted({f"{x['result'].spec.learning_rate:.3g}" for x in g})),
            "final train loss": col(lambda r: r.final_train_loss, 4),
            "val acc": col(lambda r: r.val_accuracy),
            "test acc": col(lambda r: r.test_accuracy),
            "steps to target": col(lambda r: r.steps_to_target, 0),
            "seconds to target": col(lambda r: r.seconds_to_target, 2),
            "reached": lambda g: f"{sum(math.isfinite(x['result'].steps_to_target) for x in g)}/{len(g)}",
            "seeds": lambda g: len(g),
        },
    )
    for row in rows:
        row["model"] = f"{row['model']} (target {targets[row['model']]:.2f})"
    return rows


PROFILE_COSTS = ("seconds", "epochs", "steps")
"""Costs a performance profile can compare: wall seconds (compilation excluded), passes
over the training set (L-BFGS: iterations, line-search evaluations not counted) or updates."""


def run_cost(r: RunResult, cost: str) -> float:
    """Cost of reaching the target in ``cost`` units (``inf`` if never reached)."""
    if cost == "seconds":
        return r.seconds_to_target
    if cost == "epochs":
        return r.steps_to_target * r.epochs_per_step
    return r.steps_to_target


def profile_costs(results: Sequence[RunResult], *, cost: str = "seconds") -> dict[str, list[float]]:
    """``optimizer -> cost on each problem``; problems are the (model, seed) pairs run by all."""
    by_opt: dict[str, dict[tuple[str, int], float]] = {}
    for r in results:
        by_opt.setdefault(r.spec.optimizer, {})[(r.spec.model, r.spec.seed)] = run_cost(r, cost)
    problems = sorted(set.intersection(*(set(v) for v in by_opt.values()))) if by_opt else []
    return {opt: [v[p] for p in problems] for opt, v in by_opt.items()}


def curve_panels(results: Sequence[RunResult], key: str) -> dict[str, dict[str, Any]]:
    """``model -> optimizer -> (epochs, [history[key] per seed])`` for :func:`plot_curves`."""
    panels: dict[str, dict[str, list]] = {}
    for r in results:
        series = panels.setdefault(r.spec.model, {}).setdefault(r.spec.optimizer, [None, []])
        x = np.asarray(r.history["step"], np.float64) * r.epochs_per_step
        if series[0] is None or len(x) < len(series[0]):
            series[0] = x
        series[1].append(np.asarray(r.history[key], np.float64))
    for series in (s for p in panels.values() for s in p.values()):
        n = len(series[0])
        series[1] = [y[:n] for y in series[1]]
    return {m: {o: tuple(s) for o, s in p.items()} for m, p in panels.items()}


def result_record(r: RunResult) -> dict[str, Any]:
    """A JSON-able dict of one run."""
    return {**r.spec._asdict(), **{k: v for k, v in r._asdict().items() if k != "spec"}}


def tuning_rows(tuning: Sequence[Mapping[str, Any]]) -> list[dict]:
    """One row per tuned (model, optimizer): grid, chosen rate, its val loss / accuracy, divergences."""
    rows = []
    for rec in tuning:
        g = rec["chosen"]
        rows.append(
            {
                "model": rec["model"],
                "optimizer": rec["optimizer"],
                "grid": f"{rec['grid'][0]:.3g}..{rec['grid'][-1]:.3g} ({len(rec['grid'])})",
                "chosen lr": f"{rec['learning_rate']:.3g}",
                "at edge": "yes" if rec["at_edge"] else "",
                "val loss (chosen)": _mean_std(rec["val_loss"][g], digits=4),
                "val acc (chosen)": _mean_std(rec["val_accuracy"][g]),
                "diverged members": f"{int(np.sum(rec['diverged']))}/{np.size(rec['diverged'])}",
                "sweep s": round(rec["wall_seconds"], 1),
            }
        )
    return rows


def write_profile(
    workdir: pathlib.Path, results: Sequence[RunResult], *, cost: str, tau_max: float, exclude: Sequence[str] = ()
) -> tuple[str, list[dict]]:
    """``performance_profile_<cost>.png/.md/.csv``; returns the markdown and the rows.

    ``exclude``: optimizers left out (the full-batch rules in steps: an L-BFGS
    iteration is a full pass plus a line search, not a minibatch update).
    """
    costs = profile_costs([r for r in results if r.spec.optimizer not in exclude], cost=cost)
    if not costs or not all(len(v) for v in costs.values()):
        return "", []
    profile = common.performance_profile(costs, tau_max=tau_max)
    cost_name = f"{cost} to target"
    common.plot_profile(
        workdir / f"performance_profile_{cost}.png",
        profile,
        cost_name=cost_name,
        title=f"performance profile, {cost} (problems: model x seed)",
    )
    rows = common.profile_rows(profile, at=(1.0, 1.5, 2.0, tau_max))
    left_out = f" Left out: {', '.join(exclude)} (full batch: an iteration is not a minibatch step)." if exclude else ""
    note = {
        "steps": " Steps are minibatch updates." + left_out,
        "seconds": " Seconds: median seconds per update x steps, compilation excluded; a swept run's "
        "seconds are its sweep's divided by its members (amortised), L-BFGS is timed alone.",
        "epochs": "",
    }[cost]
    text = common.write_tables(
        workdir,
        f"performance_profile_{cost}",
        rows,
        title=f"performance profile in {cost}",
        notes=f"rho(tau): fraction of the {len(next(iter(costs.values())))} problems (model, seed) whose "
        f"target the optimizer reaches within tau x the fastest optimizer's {cost_name}; score: area "
        f"under rho on [1, {tau_max:g}] / {tau_max - 1:g} (AlgoPerf).{note}",
    )
    return text, rows


def write_report(
    workdir: str | pathlib.Path,
    results: Sequence[RunResult],
    *,
    targets: Mapping[str, float],
    tau_max: float,
    config: Mapping[str, Any],
    profile_cost: str = "steps",
    all_results: Sequence[RunResult] | None = None,
    tuning: Sequence[Mapping[str, Any]] = (),
    budget: Mapping[str, Any] | None = None,
    budget_line: str = "",
    command: str | None = None,
    clock: tuple[float, float] | None = None,
) -> str:
    """Writes every output of the train mode; returns the markdown summary (printed by main).

    Files: ``summary.md/.csv``; with tuning ``tuning.md/.csv``, ``sensitivity.png`` and
    ``sensitivity.md/.csv``; ``curves_loss.png``, ``curves_accuracy.png``;
    ``performance_profile_{steps,seconds}.png/.md/.csv``; ``results.json`` (every run,
    every grid point's members included, each flagged ``reported``); ``report.md``
    (all of it embedded, with the command, budget, machine and a reading).

    Args:
      results: the reported runs (the seeds at each optimizer's chosen rate).
      all_results: every run trained (default ``results``).
      tuning: :func:`experiment.tuning_record` records, one per tuned (model, optimizer).
      budget: the tuning budget (:func:`experiment.tuning_budget`), ``budget_line`` its one-line form.
      command: the command line, for report.md.
      clock: ``(time.monotonic(), time.process_time())`` at the start, for the run time in report.md.
    """
    workdir = pathlib.Path(workdir)
    rows = summary_rows(results, targets=targets)
    notes = (f"Budget: {budget_line}. " if budget_line else "") + (
        "Mean ± std (population) over seeds. lr: the chosen learning rate (see the budget; test never "
        "used). Accuracies and train loss are those of the "
        "final parameters (inference mode, whole split; schedule-free at its averaged point). Steps / "
        "seconds to target: first evaluation with val accuracy >= target, averaged over the seeds that "
        "reached it; seconds exclude compilation (median seconds per update x steps). L-BFGS steps are "
        "full-batch iterations."
    )
    title = "compare_optimizers: summary" + (
        f" (tuned: {budget['grid_size']} learning rates x {len(budget['seeds'])} seeds per optimizer, "
        f"{budget['num_steps']} steps)"
        if budget and budget.get("tuned")
        else " (untuned)"
        if budget
        else ""
    )
    sections = {
        "summary": common.write_tables(workdir, "summary", rows, columns=SUMMARY_COLUMNS, title=title, notes=notes)
    }
    if tuning:
        sections["tuning"] = common.write_tables(
            workdir,
            "tuning",
            tuning_rows(tuning),
            title="learning-rate tuning (one run_sweep per row)",
            notes=f"Chosen: the grid point with the best mean final {(budget or {}).get('selection', 'val_loss')} "
            "over the seeds (a diverged member counts as the worst). 'at edge': the choice is the first "
            "or last grid point.",
        )
        sensitivity.plot_sensitivity(workdir / "sensitivity.png", tuning)
        common.write_tables(
            workdir,
            "sensitivity",
            sensitivity.sensitivity_rows(tuning),
            title="learning-rate sensitivity (mean over seeds)",
        )
    common.plot_curves(
        workdir / "curves_loss.png",
        curve_panels(results, "train_loss"),
        xlabel="epochs (L-BFGS: iterations)",
        ylabel="train loss (mean since last eval)",
        logy=True,
        title="training loss (chosen learning rates)",
    )
    common.plot_curves(
        workdir / "curves_accuracy.png",
        curve_panels(results, "val_accuracy"),
        xlabel="epochs (L-BFGS: iterations)",
        ylabel="val accuracy",
        title="validation accuracy (chosen learning rates)",
    )
    profiles = {}
    full_batch = tuple(dict.fromkeys(r.spec.optimizer for r in results if optim.is_full_batch(r.spec.optimizer)))
    for cost in dict.fromkeys((profile_cost, "steps", "seconds")):
        sections[f"profile_{cost}"], profiles[cost] = write_profile(
            workdir, results, cost=cost, tau_max=tau_max, exclude=full_batch if cost == "steps" else ()
        )
    reported = {id(r) for r in results}
    common.write_json(
        workdir / "results.json",
        {
            "config": config,
            "budget": dict(budget or {}),
            "summary": rows,
            "tuning": list(tuning),
            "performance_profiles": profiles,
            "runs": [{**result_record(r), "reported": id(r) in reported} for r in (all_results or results)],
        },
    )
    report_md.write_report_md(
        workdir,
        results,
        sections=sections,
        profiles=profiles,
        tuning=tuning,
        budget_line=budget_line,
        command=command,
        clock=clock,
        targets=targets,
    )
    return sections["summary"] + "\n" + sections[f"profile_{profile_cost}"]


def write_tensorboard(workdir: Any, results: Sequence[Any], *, prefix: str = "") -> None:
    """Every run's curves under ``workdir/tensorboard/<run>``, each an HParams trial.

    Hyperparameters: model, optimizer, learning rate, seed; final metrics: the
    accuracies, the final train loss and the steps to target (TensorBoard's
    HParams table then compares the runs).
    """
    for r in results:
        s = r.spec
        name = f"{prefix}{s.model}_{s.optimizer}_lr{s.learning_rate:.3g}_seed{s.seed}"
        training.write_tensorboard(
            pathlib.Path(workdir) / "tensorboard" / name,
            r.history,
            hparams={
                "model": s.model,
                "optimizer": s.optimizer,
                "learning_rate": s.learning_rate,
                "seed": s.seed,
                "status": r.status,
            },
            metrics={
                "final/train_loss": r.final_train_loss,
                "final/val_accuracy": r.val_accuracy,
                "final/test_accuracy": r.test_accuracy,
                "final/steps_to_target": r.steps_to_target,
            },
        )
