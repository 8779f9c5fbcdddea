"""Learning-rate range test: raise the learning rate exponentially until the loss explodes.

At step ``t`` of ``T`` the learning rate is

.. math::  \\eta_t = \\eta_{min} (\\eta_{max} / \\eta_{min})^{t / (T - 1)},

one minibatch update per step. The run stops when the (bias-corrected,
exponentially smoothed) loss exceeds ``stop_factor`` times its minimum or is not
finite. Two suggestions are reported: the learning rate where the smoothed loss
falls fastest against ``log eta`` (steepest descent), and a tenth of the learning
rate of the smoothed minimum (the "one order of magnitude below the blow-up" rule).

Library half of ``python -m experiments.lr_find.main``.

References:
  Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017.
  CS231n notes, "Neural networks 3": babysitting the learning process.
"""

from __future__ import annotations

import math
import pathlib
import time
from typing import NamedTuple

import jax.numpy as jnp
import matplotlib.pyplot as plt  # headless Agg (experiments._common sets it too)
import ml_collections
import numpy as np

from experiments import _common
from experiments._common import UsageError
from experiments.train import experiment as train_lib
from jax231 import training


class LrFindResult(NamedTuple):
    """The curve of a range test and the suggestions read from it.

    Attributes:
      learning_rates: learning rate of every step run (the run may stop early).
      losses: the minibatch loss of every step (before its update).
      smoothed: bias-corrected exponential moving average of ``losses``.
      exploded_at: the learning rate at which the run stopped, or None if it never exploded.
      min_loss_lr: learning rate of the smallest smoothed loss.
      steepest_lr: learning rate of the steepest descent of the smoothed loss.
      suggested_lr: ``min_loss_lr / 10``.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    exploded_at: float | None
    min_loss_lr: float
    steepest_lr: float
    suggested_lr: float


def exponential_ramp(min_lr: float, max_lr: float, num_steps: int):
    """The schedule ``step -> min_lr * (max_lr / min_lr) ** (step / (num_steps - 1))``."""
    log_ratio = math.log(max_lr / min_lr)

    def schedule(step):
        fraction = jnp.asarray(step, jnp.float32) / max(num_steps - 1, 1)
        return min_lr * jnp.exp(log_ratio * fraction)

    return schedule


def smooth(losses: np.ndarray, beta: float) -> np.ndarray:
    """Bias-corrected EMA: ``a_t = beta a_{t-1} + (1 - beta) l_t``, returned as ``a_t / (1 - beta^(t+1))``."""
    out, average = np.empty(len(losses)), 0.0
    for t, loss in enumerate(losses):
        average = beta * average + (1 - beta) * loss
        out[t] = average / (1 - beta ** (t + 1))
    return out


def suggestions(learning_rates: np.ndarray, smoothed: np.ndarray) -> tuple[float, float]:
    """``(min_loss_lr, steepest_lr)`` of a smoothed curve.

    The steepest point is the most negative ``d smoothed / d log(lr)`` (central
    differences, ``np.gradient``) between the first tenth of the curve -- skipped,
    because the moving average is still settling there -- and the minimum.
    """
    finite = np.isfinite(smoothed)
    best = int(np.argmin(np.where(finite, smoothed, np.inf)))
    skip = len(smoothed) // 10
    if best - skip < 2:
        return float(learning_rates[best]), float(learning_rates[best])
    slope = np.gradient(smoothed[skip : best + 1], np.log(learning_rates[skip : best + 1]))
    return float(learning_rates[best]), float(learning_rates[skip + int(np.argmin(slope))])


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Raises :class:`UsageError` naming the field for a config that cannot run."""
    if not 0 < config.min_lr < config.max_lr:
        raise UsageError(f"--config.min_lr/max_lr: expected 0 < min_lr < max_lr; got {config.min_lr}, {config.max_lr}")
    if config.num_steps < 3:
        raise UsageError(f"--config.num_steps: expected >= 3 steps for a curve; got {config.num_steps}")
    if not 0 <= config.smoothing < 1:
        raise UsageError(f"--config.smoothing: expected 0 <= smoothing < 1; got {config.smoothing}")
    if not config.stop_factor > 1:
        raise UsageError(f"--config.stop_factor: expected > 1; got {config.stop_factor}")


def lr_range_test(config: ml_collections.ConfigDict, splits: _common.Splits) -> LrFindResult:
    """Runs the range test of the module docstring on ``splits.train`` with :func:`jax231.training.fit`.

    ``fit`` evaluates every step (``eval_every=1``: each history row is one
    update's minibatch loss) with the seed's RNG convention (``training.run_keys``)
    and its explosion guard at ``stop_factor`` x the initial loss; the curve is then
    cut where the smoothed loss first exceeds ``stop_factor`` x its running minimum.

    Raises:
      UsageError: for an optimizer that picks its own step (L-BFGS's line search):
        a learning-rate range test means nothing there.
    """
    validate_config(config)
    model = train_lib.build_model(config, splits.num_classes)
    optimizer = train_lib.build_optimizer(
        config,
        num_steps=config.num_steps,
        learning_rate=exponential_ramp(config.min_lr, config.max_lr, config.num_steps),
    )
    if optimizer.needs_objective:
        raise UsageError(
            f"--config.optimizer: expected a first-order optimizer for a learning-rate range test "
            f"(it picks its step by line search), got {config.optimizer!r}"
        )
    result = training.fit(
        model,
        optimizer,
        train=splits.train,
        loss=config.loss,
        penalty=train_lib.build_penalty(config),
        num_steps=config.num_steps,
        batch_size=min(config.batch_size, len(splits.train["label"])),
        eval_every=1,
        seed=config.seed,
        explosion_factor=config.stop_factor,
        check_initial_loss=False,
    )
    losses = np.asarray(result.history["train_loss"], np.float64)
    steps = np.arange(len(losses) + 1)  # one more: the learning rate of fit's bad update, if any
    lrs = config.min_lr * np.exp(math.log(config.max_lr / config.min_lr) * steps / (config.num_steps - 1))
    smoothed = smooth(losses, config.smoothing)
    with np.errstate(invalid="ignore"):
        blown = ~np.isfinite(losses) | (smoothed > config.stop_factor * np.minimum.accumulate(smoothed))
    cut = int(np.argmax(blown)) + 1 if blown.any() else len(losses)
    exploded_at = float(lrs[cut - 1]) if blown.any() else float(lrs[cut]) if result.status == "diverged" else None
    lrs, losses, smoothed = lrs[:cut], losses[:cut], smoothed[:cut]
    min_loss_lr, steepest_lr = suggestions(lrs, smoothed)
    return LrFindResult(lrs, losses, smoothed, exploded_at, min_loss_lr, steepest_lr, min_loss_lr / 10)


def plot(path: pathlib.Path, result: LrFindResult, *, title: str) -> None:
    """Loss against learning rate (log x), raw and smoothed, with the suggestions marked."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(result.learning_rates, result.losses, alpha=0.35, lw=1, label="minibatch loss")
    ax.plot(result.learning_rates, result.smoothed, lw=2, label="smoothed")
    ax.axvline(result.suggested_lr, color="C2", ls="--", label=f"suggested {result.suggested_lr:.2g} (min/10)")
    ax.axvline(result.steepest_lr, color="C3", ls=":", label=f"steepest {result.steepest_lr:.2g}")
    finite = result.smoothed[np.isfinite(result.smoothed)]
    if finite.size:
        ax.set_ylim(top=min(float(np.nanmax(finite)), 1.5 * float(finite[0])) * 1.05)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> LrFindResult:
    """Range test on ``config``'s model and data; writes ``lr_find.png``, ``lr_find.csv``, ``results.json``."""
    validate_config(config)
    start = time.perf_counter()
    workdir = pathlib.Path(workdir)
    splits = train_lib.build_data(config)
    result = lr_range_test(config, splits)
    plot(
        workdir / "lr_find.png", result, title=f"LR range test: {config.model} / {config.optimizer} on {config.dataset}"
    )
    _common.write_csv(
        workdir / "lr_find.csv",
        [
            {"step": t, "learning_rate": lr, "loss": loss, "smoothed": s}
            for t, (lr, loss, s) in enumerate(zip(result.learning_rates, result.losses, result.smoothed))
        ],
    )
    if config.get("tensorboard", training.tensorboard_available()):
        training.write_tensorboard(
            workdir / "tensorboard" / "lr_find",
            {
                "step": list(range(len(result.losses))),
                "learning_rate": result.learning_rates,
                "minibatch_loss": result.losses,
                "smoothed_loss": result.smoothed,
            },
        )
    _common.write_json(
        workdir / "results.json",
        {
            "dataset": config.dataset,
            "model": config.model,
            "optimizer": config.optimizer,
            "steps_run": len(result.losses),
            "exploded_at": result.exploded_at,
            "min_loss_lr": result.min_loss_lr,
            "steepest_lr": result.steepest_lr,
            "suggested_lr": result.suggested_lr,
            "seconds": time.perf_counter() - start,
        },
    )
    return result
