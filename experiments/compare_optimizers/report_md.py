"""``report.md`` of the train mode: every table and figure, the command, budget, machine, a reading.

The reading is one paragraph generated from the numbers of the run (best and
worst test accuracy per model and whether the gap exceeds the seeds' spread, the
profile winners in steps and seconds, choices at a grid edge, divergences, the
flattest and sharpest sensitivity curves); nothing in it is written in advance.
"""

from __future__ import annotations

import os
import pathlib
import platform
import sys
import time
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from jax231.training import atomic_write_text

from experiments.compare_optimizers import sensitivity
from experiments.compare_optimizers.run import RunResult

FIGURES = (
    ("sensitivity.png", "Learning-rate sensitivity: final validation loss and accuracy vs learning rate"),
    ("curves_loss.png", "Training loss at the chosen learning rates"),
    ("curves_accuracy.png", "Validation accuracy at the chosen learning rates"),
    ("performance_profile_steps.png", "Performance profile in steps to target (minibatch optimizers)"),
    ("performance_profile_seconds.png", "Performance profile in seconds to target"),
)
"""(file, caption) of the figures embedded when they exist."""


def machine() -> dict[str, Any]:
    """Platform, CPU count, Python and jax versions, backend and devices, load average."""
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": ", ".join(str(d) for d in jax.devices()),
    }
    if hasattr(os, "getloadavg"):
        info["load average (1, 5, 15 min) at the end"] = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return info


def _by_optimizer(results: Sequence[RunResult], model: str) -> dict[str, np.ndarray]:
    out: dict[str, list[float]] = {}
    for r in results:
        if r.spec.model == model:
            out.setdefault(r.spec.optimizer, []).append(r.test_accuracy)
    return {o: np.asarray(v, np.float64) for o, v in out.items()}


def _accuracy_sentence(results: Sequence[RunResult], model: str, target: float) -> str:
    acc = _by_optimizer(results, model)
    order = sorted(acc, key=lambda o: -np.mean(acc[o]))
    best, second, worst = order[0], order[min(1, len(order) - 1)], order[-1]
    gap = float(np.mean(acc[best]) - np.mean(acc[second]))
    spread = float(max(np.std(acc[best]), np.std(acc[second])))
    verdict = ("more than" if gap > spread else "within") + f" the larger seed std ({spread:.3f})"
    reached = sum(
        all(np.isfinite(r.steps_to_target) for r in results if r.spec.model == model and r.spec.optimizer == o)
        for o in acc
    )
    text = (
        f"On {model}, {best} has the best mean test accuracy ({np.mean(acc[best]):.3f}) and {worst} "
        f"the worst ({np.mean(acc[worst]):.3f}), a spread of {np.mean(acc[best]) - np.mean(acc[worst]):.3f}"
    )
    if second != best:
        text += f"; the gap to the runner-up {second} ({gap:.3f}) is {verdict}"
    return text + f"; {reached} of {len(acc)} optimizers reach the {target:.2f} val target on every seed."


def _profile_sentence(profiles: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    parts = []
    for cost, rows in profiles.items():
        if not rows:
            continue
        top = max(rows, key=lambda r: r["score"])
        low = min(rows, key=lambda r: r["score"])
        if top["score"] == low["score"]:
            parts.append(f"in {cost} every optimizer scores {top['score']:.2f}")
        else:
            parts.append(
                f"in {cost} {top['optimizer']} scores highest ({top['score']:.2f}) and "
                f"{low['optimizer']} lowest ({low['score']:.2f})"
            )
    return ("Performance profiles: " + "; ".join(parts) + ".") if parts else ""


def _tuning_sentence(tuning: Sequence[Mapping[str, Any]]) -> str:
    if not tuning:
        return "No learning rate was tuned (--notune): the table reflects the config's rates."
    edge = [f"{r['optimizer']} on {r['model']}" for r in tuning if r["at_edge"]]
    diverged = sum(int(np.sum(r["diverged"])) for r in tuning)
    members = sum(int(np.size(r["diverged"])) for r in tuning)
    flat = []
    for r in tuning:  # flatness: grid points whose mean val loss is within 5% of the best
        mean = sensitivity.curve(r, "val_loss")[0]
        best = np.nanmin(mean) if np.isfinite(mean).any() else np.nan
        good = np.isfinite(mean) & (mean <= 1.05 * best)
        flat.append((int(np.sum(good)), len(mean), r["optimizer"], r["model"]))
    flat.sort()
    # What choosing by loss costs in accuracy (or the reverse): the chosen point vs the grid's best val acc.
    costs = []
    for r in tuning:
        acc = sensitivity.curve(r, "val_accuracy")[0]
        if np.isfinite(acc).any():
            costs.append((float(np.nanmax(acc) - acc[r["chosen"]]), r["optimizer"], r["model"]))
    lost = sorted((c for c in costs if c[0] > 0.01), reverse=True)
    text = (
        f"{diverged} of {members} tuning runs diverged. "
        + (
            f"The chosen point's mean val accuracy is more than 0.01 below the best grid point's for "
            f"{len(lost)} of {len(costs)} tuned pairs (largest: {lost[0][1]} on {lost[0][2]}, "
            f"{lost[0][0]:.3f}): final val loss and val accuracy disagree there. "
            if lost
            else "The chosen point is within 0.01 of the best grid point's val accuracy everywhere. "
        )
        + (
            f"The choice fell on a grid edge for {', '.join(edge)}: its optimum may lie outside the range. "
            if edge
            else "Every choice lies inside its grid. "
        )
    )
    return text + (
        f"The most forgiving curve is {flat[-1][2]} on {flat[-1][3]} ({flat[-1][0]}/{flat[-1][1]} "
        f"grid points within 5% of its best val loss), the sharpest {flat[0][2]} on {flat[0][3]} "
        f"({flat[0][0]}/{flat[0][1]})."
    )


def reading(
    results: Sequence[RunResult],
    *,
    profiles: Mapping[str, Sequence[Mapping[str, Any]]],
    tuning: Sequence[Mapping[str, Any]],
    targets: Mapping[str, float],
) -> str:
    """The one-paragraph reading of the run, every figure in it taken from the arguments."""
    models = list(dict.fromkeys(r.spec.model for r in results))
    sentences = [_accuracy_sentence(results, m, targets[m]) for m in models]
    sentences += [_profile_sentence(profiles), _tuning_sentence(tuning)]
    return " ".join(s for s in sentences if s)


def write_report_md(
    workdir: str | os.PathLike,
    results: Sequence[RunResult],
    *,
    sections: Mapping[str, str],
    profiles: Mapping[str, Sequence[Mapping[str, Any]]],
    tuning: Sequence[Mapping[str, Any]],
    budget_line: str,
    command: str | None,
    clock: tuple[float, float] | None,
    targets: Mapping[str, float],
) -> pathlib.Path:
    """Writes ``report.md`` (see the module docstring); returns its path."""
    workdir = pathlib.Path(workdir)
    lines = [
        "# compare_optimizers report",
        "",
        "Command (from the repository root):",
        "",
        "```",
        command or "(library call: experiment.run)",
        "```",
        "",
        f"**Budget:** {budget_line or 'n/a'}",
        "",
    ]
    if clock is not None:
        wall, cpu = time.monotonic() - clock[0], time.process_time() - clock[1]
        lines += [
            f"**Run time:** {wall:.1f} s wall, {cpu:.1f} s CPU (this process, all threads; "
            "data loading, compilation, training and this report included).",
            "",
        ]
    lines += ["**Machine:**", ""] + [f"- {k}: {v}" for k, v in machine().items()] + [""]
    lines += ["## Reading", "", reading(results, profiles=profiles, tuning=tuning, targets=targets), ""]
    for key in ("summary", "tuning"):
        if sections.get(key):
            lines += [sections[key], ""]
    for name, caption in FIGURES:
        if (workdir / name).exists():
            lines += [f"### {caption}", "", f"![{caption}]({name})", ""]
    for key, text in sections.items():
        if key.startswith("profile_") and text:
            lines += [text, ""]
    lines += ["Every run (all grid points' members too) is in `results.json`; tables are also CSV.", ""]
    return atomic_write_text(workdir / "report.md", "\n".join(lines))


__all__ = ["machine", "reading", "write_report_md"]
