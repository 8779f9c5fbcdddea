"""``fit``'s options, grouped: guards, checkpointing, logging, hooks.

``fit`` keeps its flat keyword arguments (``explosion_factor=``, ``workdir=``,
``progress=``, ...); each group may also be passed whole (``guards=Guards(...)``),
which then replaces the flat arguments of that group.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping, NamedTuple

import jax
import numpy as np

from jax231.training import _batch


class Guards(NamedTuple):
    """The sanity checks of the notes ("babysitting the learning process").

    Attributes:
      explosion_factor: an update whose training loss exceeds this many times
        the loss of update 0 is bad (``None``: finiteness only).
      check_initial_loss: compare the initial loss with chance level (warns once).
      early_stopping_patience: evaluations without a lower validation loss before
        stopping (``None``: never).
      max_seconds: stop at the first evaluation past this wall-clock budget.
      babysit_after: at this evaluation (1-based) the flat-loss and
        update-ratio checks run once and warn (``None``: never).
      flat_loss_drop: the fraction of the initial loss that must be gone by then.
      update_ratio_band: ``(low, high)`` around the notes' ~1e-3 (``None``: no ratio check).
      check_finite_inputs: refuse training data with a NaN or inf pixel before
        anything trains (``False``: the explicit opt-out).
    """

    explosion_factor: float | None = 3.0
    check_initial_loss: bool = True
    early_stopping_patience: int | None = None
    max_seconds: float | None = None
    babysit_after: int | None = None
    flat_loss_drop: float = 0.01
    update_ratio_band: tuple[float, float] | None = (1e-4, 1e-2)
    check_finite_inputs: bool = True


class Checkpointing(NamedTuple):
    """Where and how often the run is saved (orbax, atomic; resumed on the next call).

    Attributes:
      workdir: directory of checkpoints and logs (``None``: nothing on disk).
      checkpoint_every: steps between checkpoints (default: every evaluation).
      max_to_keep: checkpoints kept on disk.
      allow_config_change: resume although the checkpointed run had other
        hyperparameters, L2 strength or training data (refused by default,
        naming the differing fields).
    """

    workdir: str | None = None
    checkpoint_every: int | None = None
    max_to_keep: int | None = 2
    allow_config_change: bool = False


class Logging(NamedTuple):
    """What the run reports while it trains.

    Attributes:
      progress: a one-line progress bar on stderr.
      log_tensorboard: TensorBoard event files under ``workdir/tensorboard``.
    """

    progress: bool = False
    log_tensorboard: bool = False


def check_positive(name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive int{' or None' if allow_none else ''}, got {value!r}")


def check_options(guards: Guards, ckpt: Checkpointing, *, has_val: bool) -> None:
    """Validates the groups before anything compiles (one-line ``ValueError``)."""
    check_positive("checkpoint_every", ckpt.checkpoint_every, allow_none=True)
    check_positive("early_stopping_patience", guards.early_stopping_patience, allow_none=True)
    check_positive("babysit_after", guards.babysit_after, allow_none=True)
    if not 0 < guards.flat_loss_drop < 1:
        raise ValueError(f"flat_loss_drop: expected a float in (0, 1), got {guards.flat_loss_drop!r}")
    band = guards.update_ratio_band
    if band is not None and not (len(band) == 2 and 0 < band[0] < band[1]):
        raise ValueError(f"update_ratio_band: expected (low, high) with 0 < low < high or None, got {band!r}")
    if ckpt.checkpoint_every is not None and ckpt.workdir is None:
        raise ValueError(
            f"checkpoint_every: needs a workdir, got workdir=None (checkpoint_every={ckpt.checkpoint_every})"
        )
    if guards.early_stopping_patience is not None and not has_val:
        raise ValueError("early_stopping_patience: needs validation data, got val=None")
    factor = guards.explosion_factor
    if factor is not None and not factor > 1:
        raise ValueError(f"explosion_factor: expected a float > 1 or None, got {factor!r}")
    if guards.max_seconds is not None and not guards.max_seconds > 0:
        raise ValueError(f"max_seconds: expected a positive float or None, got {guards.max_seconds!r}")


def batch_fn_takes_step(batch_fn: Callable) -> bool:
    """Whether ``batch_fn`` declares a ``step`` keyword: ``batch_fn(key, batch, *, step)`` then gets
    the global step of the update (an int32 scalar traced on the device: epoch-dependent
    augmentation, such as airbench's alternating flips, :func:`jax231.pipelines.alternate_flips`)."""
    try:
        return "step" in inspect.signature(batch_fn).parameters
    except (TypeError, ValueError):  # no signature (a builtin): the plain (key, batch) form
        return False


def check_batch_fn(batch_fn: Callable | None, example: Mapping[str, Any]) -> None:
    """Rejects a ``batch_fn`` whose signature or output does not fit, before compiling.

    A ``batch_fn(key, batch) -> batch`` (or ``batch_fn(key, batch, *, step)``,
    :func:`batch_fn_takes_step`) must return a batch with the same keys,
    shapes and dtypes as the one it gets (traced abstractly, nothing runs).
    """
    if batch_fn is None:
        return
    if not callable(batch_fn):
        raise ValueError(f"batch_fn: expected a function (key, batch) -> batch, got {type(batch_fn).__name__}")
    spec = jax.tree_util.tree_map(
        lambda v: jax.ShapeDtypeStruct(np.shape(v), np.asarray(v).dtype if not hasattr(v, "dtype") else v.dtype),
        dict(example),
    )
    key = jax.ShapeDtypeStruct((2,), np.uint32)
    takes_step = batch_fn_takes_step(batch_fn)

    def call(k: Any, b: Any, t: Any) -> Any:
        return batch_fn(k, b, step=t) if takes_step else batch_fn(k, b)

    try:
        out = jax.eval_shape(call, key, spec, jax.ShapeDtypeStruct((), np.int32))
    except TypeError as e:
        raise ValueError(
            f"batch_fn: expected a function (key, batch) -> batch, got one that fails on "
            f"(key, batch): {str(e).splitlines()[0]}"
        ) from e
    got = _batch.spec(out) if isinstance(out, Mapping) else out
    want = _batch.spec(spec)
    if got != want:
        raise ValueError(f"batch_fn: expected a batch with the input's keys, shapes and dtypes {want}, got {got}")


def check_eval_fn(eval_fn: Callable | None) -> None:
    """Rejects an ``eval_fn`` that cannot be called as ``eval_fn(step, state)``."""
    if eval_fn is None:
        return
    try:
        inspect.signature(eval_fn).bind(0, None)
    except TypeError as e:
        raise ValueError(
            f"eval_fn: expected a function (step, state) -> dict of floats or None, "
            f"got one that cannot take (step, state): {e}"
        ) from e
    except ValueError:  # builtins without a signature: accept
        return
