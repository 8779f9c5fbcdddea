"""Metric logs of a run: CSV, JSON lines, TensorBoard event files, a progress bar."""

from __future__ import annotations

import csv
import errno
import importlib.util
import json
import math
import pathlib
import sys
from typing import Any, Mapping, Sequence

CSV_NAME = "metrics.csv"
JSONL_NAME = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


_ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS})


def check_workdir(workdir: str | pathlib.Path) -> pathlib.Path:
    """Creates ``workdir`` if needed and checks that a file can be written there.

    Raises:
      ValueError: naming the path, when it cannot be created (a path through a file).
      OSError: disk full, quota exceeded, permission denied, read-only (the environment).
    """
    path = pathlib.Path(workdir).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".jax231_write_probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        if e.errno in _ENVIRONMENT_ERRNOS:  # disk full, quota, permissions: the environment, not the argument
            raise
        raise ValueError(f"workdir: expected a writable directory, got {str(path)!r} ({e})") from e
    return path


def _fmt(value: float | int | None) -> str:
    """CSV cell: ints as ints, floats round-trippable (repr), missing/NaN blank."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value) if isinstance(value, int) else repr(float(value))


class MetricLogger:
    """Writes one row per evaluation to ``metrics.csv`` and ``metrics.jsonl``.

    When a run resumes, the files are rewritten from the checkpointed history
    first, so rows logged after the last checkpoint of the interrupted run are
    not duplicated. With ``tensorboard=True`` the scalars also go to
    ``workdir/tensorboard`` through ``tf.summary`` (TensorFlow is imported lazily).
    """

    def __init__(self, workdir: pathlib.Path, keys: Sequence[str], *, tensorboard: bool = False):
        self.workdir = pathlib.Path(workdir)
        self.keys = list(keys)
        self._tb = None
        if tensorboard:
            import tensorflow as tf  # lazy: TF takes seconds to import

            self._tf = tf
            self._tb = tf.summary.create_file_writer(str(self.workdir / TENSORBOARD_DIR))
            # tf.summary.scalar lives in the tensorboard package, which TF does not
            # require; the core tf.summary.write with the scalars plugin's metadata
            # writes the same event (TensorBoard shows it as a scalar curve).
            self._scalar_metadata = tf.compat.v1.SummaryMetadata(
                plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="scalars")
            )

    def reset(self, history: Mapping[str, list]) -> None:
        """Rewrites both files from ``history`` (one row per entry of ``history['step']``)."""
        with open(self.workdir / CSV_NAME, "w", newline="") as f:
            csv.writer(f).writerow(self.keys)
        (self.workdir / JSONL_NAME).write_text("")
        for i in range(len(history.get("step", []))):
            self._append({k: history[k][i] for k in self.keys}, tensorboard=False)

    def write(self, row: Mapping[str, float]) -> None:
        self._append(row, tensorboard=True)

    def _append(self, row: Mapping[str, float], *, tensorboard: bool) -> None:
        with open(self.workdir / CSV_NAME, "a", newline="") as f:
            csv.writer(f).writerow([_fmt(row.get(k)) for k in self.keys])
        clean = {k: (None if isinstance(row.get(k), float) and math.isnan(row[k]) else row.get(k)) for k in self.keys}
        with open(self.workdir / JSONL_NAME, "a") as f:
            f.write(json.dumps(clean) + "\n")
        if tensorboard and self._tb is not None:
            with self._tb.as_default():
                for k in self.keys:
                    v = row.get(k)
                    if k != "step" and v is not None and not math.isnan(v):
                        self._tf.summary.write(
                            k,
                            self._tf.constant(float(v), self._tf.float32),
                            step=int(row["step"]),
                            metadata=self._scalar_metadata,
                        )
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


class ProgressBar:
    """A one-line ``\\r`` progress bar: ``step 200/1000 [#####.....] loss 0.53 acc 0.81``."""

    def __init__(self, total: int, *, initial: int = 0, width: int = 30, stream=None):
        self.total = total
        self.width = width
        self.stream = stream if stream is not None else sys.stderr
        self.update(initial, {})

    def update(self, step: int, metrics: Mapping[str, float]) -> None:
        filled = int(self.width * step / max(self.total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        parts = [f"step {step}/{self.total} [{bar}]"]
        for key, label in (
            ("train_loss", "loss"),
            ("train_accuracy", "acc"),
            ("val_loss", "val_loss"),
            ("val_accuracy", "val_acc"),
        ):
            v = metrics.get(key)
            if v is not None and not math.isnan(v):
                parts.append(f"{label} {v:.4f}")
        self.stream.write("\r" + " ".join(parts))
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def tensorboard_available() -> bool:
    """Whether TensorFlow and TensorBoard are importable (the default of the experiments' ``tensorboard`` field)."""
    return all(importlib.util.find_spec(name) is not None for name in ("tensorflow", "tensorboard"))


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def write_tensorboard(
    logdir: str | pathlib.Path,
    history: Mapping[str, Sequence[float]],
    *,
    step_key: str = "step",
    hparams: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    trial_id: str | None = None,
) -> None:
    """Writes one run's history as TensorBoard scalars, and optionally its HParams trial.

    Every key of ``history`` but ``step_key`` and ``'time'`` becomes a scalar
    curve at the steps ``history[step_key]`` (non-finite values are skipped).
    With ``hparams`` the run is also an HParams trial (``tensorboard.plugins.hparams``),
    so the runs of a sweep or a search can be compared in TensorBoard's table
    view; ``metrics`` are final scalars written at the last step.

    Args:
      logdir: the run's directory (``workdir/tensorboard/<run name>``); created.
      history: ``{name: values}`` with ``history[step_key]`` the steps.
      step_key: the key holding the steps (``'epoch'`` for per-epoch histories).
      hparams: the run's hyperparameters (str, bool, int or float values).
      metrics: final metrics of the run (e.g. ``{'final/val_accuracy': 0.61}``).
      trial_id: the trial's name in the HParams table (default: the directory name).
    """
    import tensorflow as tf  # lazy: TF takes seconds to import
    from tensorboard.plugins.hparams import api as hp  # comes with TF's tensorboard

    logdir = pathlib.Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    steps = [int(s) for s in history.get(step_key, [])]
    last = steps[-1] if steps else 0
    writer = tf.summary.create_file_writer(str(logdir))
    with writer.as_default():
        if hparams:
            hp.hparams(
                {k: (v if isinstance(v, (str, bool, int, float)) else str(v)) for k, v in hparams.items()},
                trial_id=trial_id or logdir.name,
            )
        for name, values in history.items():
            if name in (step_key, "time"):
                continue
            for step, value in zip(steps, values):
                if _finite(value):
                    tf.summary.scalar(name, float(value), step=step)
        for name, value in (metrics or {}).items():
            if _finite(value):
                tf.summary.scalar(name, float(value), step=last)
    writer.close()
