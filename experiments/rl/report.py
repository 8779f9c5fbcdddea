"""Report of the rl experiment: returns table, throughput, DQN optimizer comparison, curves, summary lines.

Reads the ``Outcome`` records of :mod:`experiments.rl.experiment` (which imports this module).
"""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING, Any, Mapping

import ml_collections
import numpy as np

from experiments import _common as common

if TYPE_CHECKING:
    from experiments.rl.experiment import Outcome

RETURN_COLUMNS = (
    "algorithm",
    "optimizer",
    "lr",
    "solved",
    "solved by (env steps)",
    "median steps to solve",
    "final eval return",
    "best eval return",
    "final train return",
    "run seconds",
    "compile seconds",
)
THROUGHPUT_COLUMNS = (
    "algorithm",
    "agents",
    "env steps/s (1 agent)",
    "env steps/s (all agents)",
    "ratio",
    "compile seconds (1 / all)",
)


def steps_to_solve(env_steps: np.ndarray, eval_return: np.ndarray, threshold: float) -> np.ndarray:
    """Env steps of the first evaluation with mean return >= ``threshold``, per run (``inf`` if none).

    Args:
      env_steps: ``(E,)`` steps at each evaluation.
      eval_return: ``(..., E)``.
      threshold: the solved return.
    """
    solved = np.asarray(eval_return) >= threshold
    first = np.argmax(solved, axis=-1)
    return np.where(solved.any(-1), np.asarray(env_steps, np.float64)[first], np.inf)


def summary_line(name: str, steps: np.ndarray, threshold: float, budget: int) -> str:
    """``dqn: solved 15/16 seeds (mean evaluation return >= 475) in 183,000 env steps``."""
    solved = np.isfinite(steps)
    head = f"{name}: solved {int(solved.sum())}/{steps.size} seeds (mean evaluation return >= {threshold:g})"
    if not solved.any():
        return f"{head} within {budget:,} env steps"
    return f"{head} in {int(steps[solved].max()):,} env steps"


def _row(label: str, outcome: Outcome, h: int, threshold: float) -> dict[str, Any]:
    steps = steps_to_solve(outcome.env_steps, outcome.eval_return[h], threshold)
    solved = steps[np.isfinite(steps)]
    return {
        "algorithm": label,
        "optimizer": outcome.job.optimizer,
        "lr": f"{outcome.job.learning_rates[h]:.3g}",
        "solved": f"{solved.size}/{steps.size}",
        "solved by (env steps)": f"{int(solved.max()):,}" if solved.size else "—",
        "median steps to solve": f"{int(np.median(steps)):,}" if solved.size * 2 > steps.size else "—",
        "final eval return": common.format_mean_std(outcome.eval_return[h, :, -1], digits=1),
        "best eval return": common.format_mean_std(outcome.eval_return[h].max(-1), digits=1),
        "final train return": common.format_mean_std(outcome.train_return[h, :, -1], digits=1),
        "run seconds": f"{outcome.run_seconds:.1f}",
        "compile seconds": f"{outcome.compile_seconds:.1f}",
    }


def _series(outcome: Outcome, h: int, key: str = "eval_return") -> tuple[np.ndarray, list[np.ndarray]]:
    values = getattr(outcome, key)[h]
    return outcome.env_steps, [values[s] for s in range(values.shape[0])]


def _throughput_rows(throughput: Mapping[str, tuple[Outcome, Outcome]]) -> list[dict[str, Any]]:
    rows = []
    for label, (one, many) in throughput.items():
        a, b = one.agent_steps_per_second, many.agent_steps_per_second
        rows.append(
            {
                "algorithm": label,
                "agents": many.job.num_seeds,
                "env steps/s (1 agent)": f"{a:,.0f}",
                "env steps/s (all agents)": f"{b:,.0f}",
                "ratio": f"{b / a:.1f}x",
                "compile seconds (1 / all)": f"{one.compile_seconds:.1f} / {many.compile_seconds:.1f}",
            }
        )
    return rows


def _comparison(
    workdir: pathlib.Path, config: ml_collections.ConfigDict, outcomes: Mapping[str, Outcome], threshold: float
) -> tuple[str, list[dict], list[dict]]:
    compared = {k: v for k, v in outcomes.items() if k.startswith("dqn/")}
    if not compared:
        return "", [], []
    rows, panels, costs = [], {}, {}
    for outcome in compared.values():
        for h, lr in enumerate(outcome.job.learning_rates):
            rows.append(_row("dqn", outcome, h, threshold))
            panels.setdefault(outcome.job.optimizer, {})[f"lr {lr:.3g}"] = _series(outcome, h)
            costs[f"{outcome.job.optimizer} {lr:.3g}"] = list(
                steps_to_solve(outcome.env_steps, outcome.eval_return[h], threshold)
            )
    notes = (
        f"DQN on {config.env_name}, {config.total_steps:,} env steps per seed; each optimizer's learning "
        "rates and seeds are vmapped in one program (learning_rate set in the optimizer state). Solved: "
        f"first greedy evaluation with mean return >= {threshold:g}; mean ± std (population) over seeds."
    )
    text = common.write_tables(
        workdir,
        "dqn_optimizers",
        rows,
        columns=RETURN_COLUMNS,
        title="DQN: RMSProp vs Adam vs SGD+momentum",
        notes=notes,
    )
    common.plot_curves(
        workdir / "dqn_optimizers.png",
        panels,
        xlabel="env steps",
        ylabel="greedy evaluation return",
        title=f"DQN on {config.env_name}: optimizers",
    )
    profile_rows: list[dict] = []
    if any(np.isfinite(v).any() for v in costs.values()):
        profile = common.performance_profile(costs, tau_max=4.0)
        common.plot_profile(
            workdir / "dqn_performance_profile.png",
            profile,
            cost_name="env steps to solve",
            title="DQN optimizers (problems: seeds)",
        )
        profile_rows = common.profile_rows(profile)
        text += "\n" + common.write_tables(
            workdir,
            "dqn_performance_profile",
            profile_rows,
            title="DQN optimizers: performance profile",
            notes="rho(tau): fraction of seeds an optimizer (at a learning rate) solves within tau x the fastest's "
            "env steps; score: area under rho on [1, 4] / 3 (AlgoPerf).",
        )
    return text, rows, profile_rows


def write_report(
    workdir: pathlib.Path,
    config: ml_collections.ConfigDict,
    outcomes: Mapping[str, Outcome],
    throughput: Mapping[str, tuple[Outcome, Outcome]],
) -> list[str]:
    """Writes every table, figure and ``results.json``; returns the summary lines (one per algorithm)."""
    workdir = pathlib.Path(workdir)
    threshold = float(config.solved_return)
    main = {k: v for k, v in outcomes.items() if "/" not in k}
    rows = [_row(label, outcome, 0, threshold) for label, outcome in main.items()]
    notes = (
        f"{config.env_name}, {config.total_steps:,} env steps per seed, all seeds of an algorithm in one "
        f"jitted program. Eval return: greedy policy, mean over {config.eval_episodes} episodes, at "
        f"{config.num_evals} evenly spaced points; solved: first evaluation >= {threshold:g}; solved by: env "
        "steps by which all solved seeds were solved. Seconds on a 2-core CPU shared with other jobs."
    )
    common.write_tables(workdir, "returns", rows, columns=RETURN_COLUMNS, title="returns", notes=notes)
    common.write_tables(
        workdir,
        "throughput",
        _throughput_rows(throughput),
        columns=THROUGHPUT_COLUMNS,
        title="env steps per second, 1 vs vmapped agents",
        notes=f"Training programs of {config.throughput_steps:,} env steps per agent with one "
        f"1-episode evaluation, compilation excluded; medians of {config.throughput_rounds} "
        "rounds timing the two programs in alternation (same load for both).",
    )
    panel = f"{config.env_name} ({config.num_seeds} seeds: mean, min-max band)"
    curves = (("eval_return", "greedy evaluation return"), ("train_return", "training episode return"))
    for key, ylabel in curves if main else ():  # a comparison-only run has no main curves
        common.plot_curves(
            workdir / f"curves_{key}.png",
            {panel: {k: _series(v, 0, key) for k, v in main.items()}},
            xlabel="env steps",
            ylabel=ylabel,
            title=ylabel,
        )
    _, comparison_rows, profile_rows = _comparison(workdir, config, outcomes, threshold)
    lines = [
        summary_line(label, steps_to_solve(o.env_steps, o.eval_return[0], threshold), threshold, int(o.env_steps[-1]))
        for label, o in main.items()
    ]
    lines += [
        summary_line(
            f"{label} lr={lr:.3g}",
            steps_to_solve(o.env_steps, o.eval_return[h], threshold),
            threshold,
            int(o.env_steps[-1]),
        )
        for label, o in outcomes.items()
        if "/" in label
        for h, lr in enumerate(o.job.learning_rates)
    ]
    common.write_json(
        workdir / "results.json",
        {
            "config": config.to_dict(),
            "returns": rows,
            "throughput": _throughput_rows(throughput),
            "dqn_optimizers": comparison_rows,
            "dqn_performance_profile": profile_rows,
            "summary": lines,
            "runs": {
                label: {
                    "optimizer": o.job.optimizer,
                    "learning_rates": o.job.learning_rates,
                    "env_steps": o.env_steps,
                    "eval_return": o.eval_return,
                    "train_return": o.train_return,
                    "run_seconds": o.run_seconds,
                    "compile_seconds": o.compile_seconds,
                }
                for label, o in outcomes.items()
            },
        },
    )
    return lines
