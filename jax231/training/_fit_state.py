"""``fit``'s host-side loop state: history, best step, early stopping, time, status.

A :class:`FitLoop` is a plain value; :func:`add_chunk`, :func:`add_row`,
:func:`stop` and :func:`should_stop` are pure functions of it, and
:func:`to_json` / :func:`from_json` make it part of every checkpoint, which is
what makes a resumed run end with the history of an uninterrupted one.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, NamedTuple

from jax231.training._core import TRAIN_METRICS
from jax231.training._guards import EarlyStoppingState

HISTORY_KEYS = (
    "step",
    "time",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "grad_norm",
    "update_ratio",
)
STATUSES = ("completed", "diverged", "early_stopped", "timed_out")


class FitLoop(NamedTuple):
    """Where a ``fit`` run stands between two chunks.

    Attributes:
      step: updates made.
      history: one list per key of :data:`HISTORY_KEYS` (plus ``eval_fn``'s keys).
      pending: sums of the train metrics since the last evaluation, and ``count``.
      best_step: step of the lowest validation loss (-1: none yet).
      best_val: that loss (``inf``: none yet).
      early: the early-stopping state (``None`` without patience).
      initial_loss: the training loss of update 0 (NaN before it ran).
      elapsed: seconds trained by earlier calls (resumptions).
      status: one of :data:`STATUSES`.
      message: the human-readable summary so far.
    """

    step: int
    history: dict[str, list]
    pending: dict[str, float]
    best_step: int = -1
    best_val: float = math.inf
    early: EarlyStoppingState | None = None
    initial_loss: float = math.nan
    elapsed: float = 0.0
    status: str = "completed"
    message: str = ""


def _no_pending() -> dict[str, float]:
    return {k: 0.0 for k in TRAIN_METRICS} | {"count": 0}


def new_loop(early: EarlyStoppingState | None) -> FitLoop:
    return FitLoop(step=0, history={k: [] for k in HISTORY_KEYS}, pending=_no_pending(), early=early)


def add_chunk(loop: FitLoop, sums: Mapping[str, Any], num_done: int, initial_loss: float) -> FitLoop:
    """Accumulates a chunk's good updates (``step`` moves by ``num_done``); ``sums`` may hold
    ``'loss/<term>'`` keys besides :data:`TRAIN_METRICS` (history ``'train_loss/<term>'``)."""
    pending = {k: loop.pending.get(k, 0.0) + float(sums[k]) for k in sums}
    return loop._replace(
        step=loop.step + num_done,
        initial_loss=initial_loss,
        pending=pending | {"count": loop.pending["count"] + num_done},
    )


def train_row(loop: FitLoop, seconds: float) -> dict[str, float]:
    """The history row of the updates since the last evaluation (val_* still NaN)."""
    count = max(loop.pending["count"], 1)
    return {
        "step": loop.step,
        "time": loop.elapsed + seconds,
        "train_loss": loop.pending["loss"] / count,
        "train_accuracy": loop.pending["accuracy"] / count,
        "grad_norm": loop.pending["grad_norm"] / count,
        "update_ratio": loop.pending["update_ratio"] / count,
        "val_loss": math.nan,
        "val_accuracy": math.nan,
        **{f"train_{k}": loop.pending[k] / count for k in loop.pending if k.startswith("loss/")},
    }


def add_row(loop: FitLoop, row: Mapping[str, float]) -> FitLoop:
    """Appends an evaluation row; the pending sums restart; the best step follows val_loss."""
    history = {k: v + [row.get(k, math.nan)] for k, v in loop.history.items()}
    for k in row:
        if k not in history:  # a new eval_fn key: earlier rows had none
            history[k] = [math.nan] * (len(history["step"]) - 1) + [row[k]]
    improved = row["val_loss"] < loop.best_val
    return loop._replace(
        history=history,
        pending=_no_pending(),
        best_step=loop.step if improved else loop.best_step,
        best_val=row["val_loss"] if improved else loop.best_val,
    )


def stop(loop: FitLoop, status: str, message: str) -> FitLoop:
    return loop._replace(status=status, message=loop.message + message)


def should_stop(loop: FitLoop, num_steps: int) -> bool:
    return loop.status != "completed" or loop.step >= num_steps


def _json(value: Any) -> Any:
    """NaN/inf -> None so the loop state is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _nan(value: Any) -> float:
    return math.nan if value is None else value


def _inf(value: Any) -> float:
    """A best-so-far loss from JSON: ``None`` stands for ``inf`` (nothing seen yet)."""
    return math.inf if value is None else value


def to_json(loop: FitLoop, *, elapsed: float, seed: int, batch_size: int) -> dict:
    """The checkpointed loop state (JSON: non-finite floats become null)."""
    early = loop.early
    return {
        "history": {k: [_json(v) for v in vs] for k, vs in loop.history.items()},
        "initial_loss": _json(loop.initial_loss),
        "elapsed": elapsed,
        "best_step": loop.best_step,
        "best_val": _json(loop.best_val),
        "pending": {k: _json(v) for k, v in loop.pending.items()},
        "early_stopping": [_json(early.best), early.best_step, early.num_bad] if early else None,
        "seed": seed,
        "batch_size": batch_size,
        "status": loop.status,
    }


def from_json(saved: Mapping[str, Any], *, step: int, with_early: bool) -> FitLoop:
    """The inverse of :func:`to_json` (status and message start afresh: only early stopping is final)."""
    early = None
    if with_early:
        early = EarlyStoppingState(*saved["early_stopping"])
        early = early._replace(best=_inf(early.best))
    return FitLoop(
        step=step,
        history={k: [_nan(v) for v in vs] for k, vs in saved["history"].items()},
        pending={k: _nan(v) for k, v in saved["pending"].items()},
        best_step=saved["best_step"],
        best_val=_inf(saved["best_val"]),
        early=early,
        initial_loss=_nan(saved["initial_loss"]),
        elapsed=saved["elapsed"],
    )
