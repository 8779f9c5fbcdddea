"""The 2-D mode: every optimizer's path on three classic surfaces (the notes' picture).

The CS231n notes animate update rules on a loss surface: SGD zig-zags across an
ill-conditioned valley, momentum overshoots, adaptive methods head straight for the
minimum, and plain SGD lingers on a saddle point. This module reproduces the picture:

* ``quadratic``: :math:`f(x, y) = \\tfrac12 (x^2 + \\kappa y^2)`, condition number
  :math:`\\kappa` (default 20); minimum at the origin.
* ``rosenbrock``: :math:`f(x, y) = (1 - x)^2 + 100 (y - x^2)^2`; minimum at (1, 1)
  at the bottom of a curved, flat-floored valley.
* ``saddle``: :math:`f(x, y) = x^2 - y^2 + y^4 / 4`; a saddle at the origin and minima
  at :math:`(0, \\pm\\sqrt 2)` (the quartic keeps the surface bounded below so L-BFGS's
  line search has a minimum to find); the start lies almost on the ridge ``y = 0``.

Each path is one ``lax.scan`` of ``(value, grad) -> update`` with the full objective
passed as ``value_fn`` (what L-BFGS's line search needs; other rules ignore it).

References:
  CS231n notes, "Neural Networks Part 3", section "Parameter updates" (the animations
  by Alec Radford): https://cs231n.github.io/neural-networks-3/#update
"""

from __future__ import annotations

import math
import os
import pathlib
from typing import Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt  # headless Agg (experiments._common sets it too)
import numpy as np
from matplotlib import animation

from experiments import _common as common
from jax231.training import atomic_path
from experiments.compare_optimizers import optim


class Surface(NamedTuple):
    """A 2-D test function and how to draw it.

    Attributes:
      name: short name (``'quadratic'``, ``'rosenbrock'``, ``'saddle'``).
      fn: ``f(xy) -> scalar`` for ``xy`` of shape ``(2,)``.
      start: starting point.
      minima: the global minimisers (for distance-to-minimum and markers).
      xlim: x range drawn.
      ylim: y range drawn.
      log_levels: draw contours of ``log(f - f_min + 1e-3)`` (Rosenbrock's valley).
    """

    name: str
    fn: Callable[[jax.Array], jax.Array]
    start: tuple[float, float]
    minima: tuple[tuple[float, float], ...]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    log_levels: bool = False


def quadratic(xy: jax.Array, condition_number: float = 20.0) -> jax.Array:
    """``0.5 * (x**2 + condition_number * y**2)``."""
    return 0.5 * (xy[0] ** 2 + condition_number * xy[1] ** 2)


def rosenbrock(xy: jax.Array) -> jax.Array:
    """``(1 - x)**2 + 100 * (y - x**2)**2``."""
    return (1.0 - xy[0]) ** 2 + 100.0 * (xy[1] - xy[0] ** 2) ** 2


def saddle(xy: jax.Array) -> jax.Array:
    """``x**2 - y**2 + y**4 / 4``: saddle at 0, minima ``(0, ±sqrt(2))`` with value -1."""
    return xy[0] ** 2 - xy[1] ** 2 + 0.25 * xy[1] ** 4


SURFACES: dict[str, Surface] = {
    "quadratic": Surface("quadratic", quadratic, (-4.5, 1.5), ((0.0, 0.0),), (-5.0, 5.0), (-2.0, 2.0)),
    "rosenbrock": Surface(
        "rosenbrock", rosenbrock, (-1.2, 1.0), ((1.0, 1.0),), (-2.0, 2.0), (-1.0, 3.0), log_levels=True
    ),
    "saddle": Surface(
        "saddle", saddle, (2.0, 1e-3), ((0.0, math.sqrt(2)), (0.0, -math.sqrt(2))), (-2.5, 2.5), (-2.5, 2.5)
    ),
}
"""The surfaces of the 2-D mode, by name."""


def trajectory(optimizer, fn: Callable[[jax.Array], jax.Array], start: Sequence[float], *, num_steps: int) -> jax.Array:
    """The points visited by ``optimizer`` minimising ``fn`` from ``start``.

    Args:
      optimizer: a ``GradientTransformation``; its ``update`` gets the keyword extras
        ``value``, ``grad`` and ``value_fn`` (L-BFGS's line search uses them).
      fn: the objective ``f(xy) -> scalar``.
      start: the first point, shape ``(2,)``.
      num_steps: number of updates.

    Returns:
      float32 array of shape ``(num_steps + 1, 2)``: the start, then every iterate
      (the point the rule would be evaluated at: ``optimizer.eval_params`` where it
      has them, e.g. schedule-free's average ``x``, as ``fit`` evaluates).
    """
    params = jnp.asarray(start, jnp.float32)
    value_and_grad = jax.value_and_grad(fn)
    eval_params = optimizer.eval_params or (lambda state, params: params)

    def step(carry, _):
        params, state = carry
        value, grad = value_and_grad(params)
        updates, state = optimizer.update(grad, state, params, value=value, grad=grad, value_fn=fn)
        params = optim.apply_updates(params, updates)
        return (params, state), eval_params(state, params)

    _, path = jax.lax.scan(step, (params, optimizer.init(params)), None, length=num_steps)
    return jnp.concatenate([params[None], path])


def run_trajectories(
    optimizers: Sequence[str],
    *,
    surfaces: Sequence[str],
    learning_rates: Mapping[str, Mapping[str, float]],
    num_steps: Mapping[str, int],
) -> dict[str, dict[str, np.ndarray]]:
    """Runs every optimizer on every surface.

    Args:
      optimizers: optimizer names.
      surfaces: surface names (keys of :data:`SURFACES`).
      learning_rates: ``surface -> optimizer -> learning rate``.
      num_steps: ``surface -> number of updates``.

    Returns:
      ``surface -> optimizer -> (num_steps + 1, 2)`` NumPy path.
    """
    out: dict[str, dict[str, np.ndarray]] = {}
    for name in surfaces:
        surface = SURFACES[name]
        out[name] = {}
        for opt_name in optimizers:
            opt = optim.build_optimizer(opt_name, learning_rate=learning_rates[name][opt_name])
            run = jax.jit(
                lambda opt=opt, surface=surface: trajectory(opt, surface.fn, surface.start, num_steps=num_steps[name])
            )
            out[name][opt_name] = np.asarray(run())
    return out


def summary_rows(paths: Mapping[str, Mapping[str, np.ndarray]]) -> list[dict]:
    """One row per (surface, optimizer): final value, distance to the nearest minimum."""
    rows = []
    for name, by_opt in paths.items():
        surface = SURFACES[name]
        minima = np.asarray(surface.minima)
        f_min = float(surface.fn(jnp.asarray(minima[0], jnp.float32)))
        for opt_name, path in by_opt.items():
            final = path[-1]
            finite = np.all(np.isfinite(path), axis=1)
            rows.append(
                {
                    "surface": name,
                    "optimizer": opt_name,
                    "steps": len(path) - 1,
                    "final_f_minus_min": float(surface.fn(jnp.asarray(final))) - f_min,
                    "final_distance": float(np.min(np.linalg.norm(minima - final, axis=1))),
                    "diverged": bool(not finite.all()),
                }
            )
    return rows


def _draw_surface(ax, surface: Surface, *, image: bool = False) -> None:
    """Filled contours of ``surface`` (log levels for Rosenbrock), its start and minima, on ``ax``.

    ``image=True`` draws the levels as one banded image instead (fast to redraw: the
    animation repaints every frame).
    """
    n = 150 if image else 300
    xs = np.linspace(*surface.xlim, n)
    ys = np.linspace(*surface.ylim, n)
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    zs = np.asarray(jax.vmap(surface.fn)(jnp.asarray(grid, jnp.float32))).reshape(n, n)
    if surface.log_levels:
        zs = np.log(zs - zs.min() + 1e-3)
    if image:
        bands = np.floor(30 * (zs - zs.min()) / (np.ptp(zs) + 1e-12))
        ax.imshow(
            bands,
            extent=(*surface.xlim, *surface.ylim),
            origin="lower",
            cmap="Greys",
            alpha=0.55,
            aspect="auto",
            interpolation="nearest",
        )
    else:
        ax.contourf(xs, ys, zs, levels=30, cmap="Greys", alpha=0.55)
        ax.contour(xs, ys, zs, levels=30, colors="k", linewidths=0.3, alpha=0.5)
    ax.plot(*surface.start, "k^", ms=7)
    for minimum in surface.minima:
        ax.plot(*minimum, "k*", ms=11)
    ax.set_xlim(surface.xlim)
    ax.set_ylim(surface.ylim)


def _finite(path: np.ndarray) -> np.ndarray:
    return path[np.all(np.isfinite(path), axis=1)]


def plot_trajectories(path: str | os.PathLike, paths: Mapping[str, Mapping[str, np.ndarray]]) -> pathlib.Path:
    """Contours of each surface with every optimizer's path (one panel per surface)."""
    names = list(paths)
    opt_names = list(dict.fromkeys(o for by_opt in paths.values() for o in by_opt))
    cmap = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 4.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        _draw_surface(ax, SURFACES[name])
        for i, opt_name in enumerate(opt_names):
            if opt_name not in paths[name]:
                continue
            p = _finite(paths[name][opt_name])
            ax.plot(p[:, 0], p[:, 1], "-", color=cmap(i % 10), lw=1.4, label=opt_name)
            ax.plot(p[-1:, 0], p[-1:, 1], "o", color=cmap(i % 10), ms=4)
        ax.set_title(f"{name} ({len(next(iter(paths[name].values()))) - 1} steps)")
    axes[0][0].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return common.save_figure(fig, path)


def animate_trajectories(
    path: str | os.PathLike,
    paths: Mapping[str, Mapping[str, np.ndarray]],
    *,
    frames: int = 30,
    fps: int = 8,
    dpi: int = 50,
) -> pathlib.Path:
    """An animated GIF of every path growing over its surface (the notes' optimizer animation).

    Frame ``f`` of ``frames`` shows each path up to step ``ceil(f / frames * T)`` of its
    surface's ``T`` steps (surfaces with different step budgets advance together),
    each optimizer's current point as a dot. Written with matplotlib's Pillow writer.
    """
    names = list(paths)
    opt_names = list(dict.fromkeys(o for by_opt in paths.values() for o in by_opt))
    cmap = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.7), squeeze=False)
    artists = []  # (full path, line, dot) per (surface, optimizer)
    for ax, name in zip(axes[0], names):
        _draw_surface(ax, SURFACES[name], image=True)
        ax.set_title(f"{name} ({len(next(iter(paths[name].values()))) - 1} steps)", fontsize=9)
        ax.set_xticks([])  # no tick labels: text layout dominates the cost of a frame
        ax.set_yticks([])
        for i, opt_name in enumerate(opt_names):
            if opt_name not in paths[name]:
                continue
            (line,) = ax.plot([], [], "-", color=cmap(i % 10), lw=1.4, label=opt_name)
            (dot,) = ax.plot([], [], "o", color=cmap(i % 10), ms=4)
            artists.append((_finite(paths[name][opt_name]), line, dot))
    axes[0][0].legend(fontsize=6, loc="lower left")
    fig.tight_layout()

    def draw(frame: int):
        for full, line, dot in artists:
            end = max(1, math.ceil((frame + 1) / frames * len(full)))
            line.set_data(full[:end, 0], full[:end, 1])
            dot.set_data(full[end - 1 : end, 0], full[end - 1 : end, 1])
        return [a for _, line, dot in artists for a in (line, dot)]

    movie = animation.FuncAnimation(fig, draw, frames=frames, blit=False)
    path = pathlib.Path(path)
    with atomic_path(path) as tmp:
        movie.save(tmp, writer=animation.PillowWriter(fps=fps), dpi=dpi)
    plt.close(fig)
    return path


def write_trajectory_report(workdir: str | os.PathLike, paths: Mapping[str, Mapping[str, np.ndarray]]) -> str:
    """Writes ``trajectories.png``, ``trajectories.gif`` (animated), ``trajectories.md/.csv``
    and ``trajectories.json``."""
    workdir = pathlib.Path(workdir)
    plot_trajectories(workdir / "trajectories.png", paths)
    animate_trajectories(workdir / "trajectories.gif", paths)
    rows = summary_rows(paths)
    common.write_json(workdir / "trajectories.json", {"rows": rows, "paths": paths})
    return common.write_tables(
        workdir,
        "trajectories",
        rows,
        title="2-D trajectories",
        notes="final_f_minus_min: f(last iterate) - f(minimum); final_distance: to the nearest minimiser.",
    )
