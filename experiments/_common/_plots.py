"""Matplotlib figures for experiment reports (Agg backend: no display needed)."""

from __future__ import annotations

import os
import pathlib
from typing import Mapping, Sequence

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from experiments._common._profiles import Profile  # pylint: disable=wrong-import-position
from jax231.training import atomic_path  # pylint: disable=wrong-import-position

Curve = tuple[Sequence[float], Sequence[Sequence[float]]]
"""``(x, ys)``: one x axis and one y sequence per seed (drawn as mean with a min–max band)."""


def save_figure(fig: "matplotlib.figure.Figure", path: str | os.PathLike, *, dpi: int = 110) -> pathlib.Path:
    """Saves ``fig`` to ``path`` atomically (temporary name, then rename) and closes it."""
    path = pathlib.Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    return path


def _colors(names: Sequence[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def plot_curves(
    path: str | os.PathLike,
    panels: Mapping[str, Mapping[str, Curve]],
    *,
    xlabel: str = "step",
    ylabel: str,
    logy: bool = False,
    title: str | None = None,
    max_cols: int = 4,
) -> pathlib.Path:
    """One panel per key of ``panels`` (e.g. per model), one line per series (e.g. optimizer).

    Args:
      path: the PNG to write.
      panels: ``panel title -> series name -> (x, ys over seeds)``; each series is drawn
        as the mean over seeds with a shaded min–max band.
      xlabel: x-axis label.
      ylabel: y-axis label.
      logy: log-scale y axis (for losses).
      title: figure title.
      max_cols: panels per row (more panels wrap onto further rows).

    Returns:
      ``path`` as a :class:`pathlib.Path`.
    """
    names = list(dict.fromkeys(name for series in panels.values() for name in series))
    colors = _colors(names)
    num = max(len(panels), 1)
    ncols = min(num, max_cols)
    nrows = -(-num // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 3.8 * nrows), squeeze=False)
    axes = axes.ravel()
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for ax, (panel, series) in zip(axes, panels.items()):
        for name, (x, ys) in series.items():
            ys = np.asarray([np.asarray(y, dtype=np.float64) for y in ys])
            if ys.size == 0:
                continue
            x = np.asarray(x, dtype=np.float64)[: ys.shape[1]]
            with np.errstate(all="ignore"):
                mean, low, high = np.nanmean(ys, 0), np.nanmin(ys, 0), np.nanmax(ys, 0)
            ax.plot(x, mean, color=colors[name], label=name, lw=1.5)
            if ys.shape[0] > 1:
                ax.fill_between(x, low, high, color=colors[name], alpha=0.2, lw=0)
        ax.set_title(panel)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_profile(
    path: str | os.PathLike, profile: Profile, *, cost_name: str = "time to target", title: str | None = None
) -> pathlib.Path:
    """Draws ``rho_o(tau)`` for every solver on a log ``tau`` axis (a step plot)."""
    colors = _colors(list(profile.solvers))
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for i, solver in enumerate(profile.solvers):
        ax.step(
            profile.taus,
            profile.rho[i],
            where="post",
            color=colors[solver],
            label=f"{solver} ({profile.scores[i]:.2f})",
            lw=1.5,
        )
    ax.set_xscale("log")
    ax.set_xlim(1.0, profile.taus[-1])
    ticks = [t for t in (1, 1.25, 1.5, 2, 3, 4, 6, 10, 20, 50, 100) if t <= profile.taus[-1]]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"τ  ({cost_name} / best {cost_name})")
    ax.set_ylabel("fraction of problems within τ×best")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, title="optimizer (score)", title_fontsize=8)
    ax.set_title(title or "performance profile")
    fig.tight_layout()
    return save_figure(fig, path)
