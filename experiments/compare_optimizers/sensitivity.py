"""The learning-rate sensitivity figure (DeepOBS): final validation metrics vs learning rate.

One column per model, two rows (final validation loss, final validation accuracy),
one curve per optimizer over its tuning grid: the mean over seeds, a min-max band,
the chosen point circled and a grid point where some seed diverged marked ``x``
(its mean is over the seeds that did not; where every seed diverged, the ``x`` sits
on the top edge). A flat curve is a forgiving
optimizer; a curve whose minimum sits at a grid edge asks for a wider range.

References:
  Schneider, Balles & Hennig, "DeepOBS", ICLR 2019, Figure 3 (sensitivity to the learning rate).
"""

from __future__ import annotations

import os
import pathlib
import warnings
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt  # headless Agg (experiments._common sets it)
import numpy as np

from experiments import _common as common

METRICS = (("val_loss", "final val loss", False), ("val_accuracy", "final val accuracy", False))
"""(record key, axis label, log y axis) of the two rows."""


def curve(record: Mapping[str, Any], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, low, high, any_diverged)`` over seeds per grid point of one tuning record.

    A diverged member's value is left out (NaN); a point where every seed diverged is NaN.
    """
    values = np.asarray(record[key], np.float64)
    diverged = np.asarray(record["diverged"], bool)
    values = np.where(diverged | ~np.isfinite(values), np.nan, values)
    with warnings.catch_warnings():  # an all-NaN row (every seed diverged) stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, 1), np.nanmin(values, 1), np.nanmax(values, 1), diverged.any(1)


def sensitivity_rows(tuning: Sequence[Mapping[str, Any]]) -> list[dict]:
    """One row per (model, optimizer, learning rate): mean val loss / accuracy, diverged seeds, chosen."""
    rows = []
    for rec in tuning:
        loss, acc = curve(rec, "val_loss")[0], curve(rec, "val_accuracy")[0]
        for g, lr in enumerate(rec["grid"]):
            rows.append(
                {
                    "model": rec["model"],
                    "optimizer": rec["optimizer"],
                    "lr": f"{lr:.3g}",
                    "val loss": round(float(loss[g]), 4),
                    "val acc": round(float(acc[g]), 3),
                    "diverged": f"{int(np.sum(rec['diverged'][g]))}/{len(rec['seeds'])}",
                    "chosen": "yes" if g == rec["chosen"] else "",
                }
            )
    return rows


def plot_sensitivity(path: str | os.PathLike, tuning: Sequence[Mapping[str, Any]]) -> pathlib.Path:
    """Draws the figure (see the module docstring) from :func:`experiment.tuning_record` records."""
    models = list(dict.fromkeys(r["model"] for r in tuning))
    names = list(dict.fromkeys(r["optimizer"] for r in tuning))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    colors = {n: cmap(i % cmap.N) for i, n in enumerate(names)}
    fig, axes = plt.subplots(2, max(len(models), 1), figsize=(5.4 * max(len(models), 1), 7.0), squeeze=False)
    for col, model in enumerate(models):
        for row, (key, label, logy) in enumerate(METRICS):
            ax = axes[row][col]
            lost = []  # grid points where every seed diverged: drawn at the top edge
            for rec in (r for r in tuning if r["model"] == model):
                grid = np.asarray(rec["grid"])
                mean, low, high, diverged = curve(rec, key)
                color = colors[rec["optimizer"]]
                ax.plot(grid, mean, "-", color=color, lw=1.4, label=rec["optimizer"])
                ax.fill_between(grid, low, high, color=color, alpha=0.15, lw=0)
                ax.plot(grid[rec["chosen"]], mean[rec["chosen"]], "o", mfc="none", mec=color, ms=9, mew=1.6)
                ax.plot(grid[diverged], mean[diverged], "x", color=color, ms=7)
                lost.append((grid[np.isnan(mean)], color))
            for xs, color in lost:  # x in data units, y in axes units (0.97: just under the top edge)
                ax.plot(xs, np.full(len(xs), 0.97), "x", color=color, ms=7, transform=ax.get_xaxis_transform())
            ax.set_xscale("log")
            if logy:
                ax.set_yscale("log")
            ax.set_title(f"{model}: {label}", fontsize=10)
            ax.set_xlabel("learning rate")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3, which="both")
    axes[0][0].legend(fontsize=7, title="o chosen, x a seed diverged", title_fontsize=7)
    fig.suptitle("learning-rate sensitivity (mean over seeds, min-max band)")
    fig.tight_layout()
    return common.save_figure(fig, path)


__all__ = ["curve", "plot_sensitivity", "sensitivity_rows"]
