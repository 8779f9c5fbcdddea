"""``fit``: the training loop, run in compiled chunks of steps on on-device data."""

from __future__ import annotations

import math
import time
import warnings
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jax231.training import _guards, _logging
from jax231.training._loop import TRAIN_METRICS, get_runner, replay, run_iterator
from jax231.training._state import TrainState
from jax231.training._steps import LossName, evaluate
from jax231.types import Array, Params

HISTORY_KEYS = (
    "step", "time", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
    "grad_norm", "update_ratio",
)
STATUSES = ("completed", "diverged", "early_stopped", "timed_out")


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    Attributes:
      state: the final ``TrainState``; the best-validation snapshot when
        ``early_stopping_patience`` is set; the last good state when diverged.
      history: lists with one entry per evaluation, keys :data:`HISTORY_KEYS`.
        ``train_*``, ``grad_norm`` and ``update_ratio`` are means over the
        minibatch steps since the previous evaluation (train mode, penalty
        included in the loss); ``val_*`` evaluate the state at ``step``
        (inference mode, data loss only; NaN without ``val``); ``time`` is
        wall-clock seconds since the start of the run (resumptions included).
      status: one of :data:`STATUSES`.
      best_step: the step of the lowest validation loss (-1 without ``val``).
      message: a human-readable summary (the divergence step and loss, ...).
    """

    state: TrainState
    history: dict[str, list]
    status: str
    best_step: int
    message: str


def _check_arrays(name: str, data: Any) -> int:
    if not isinstance(data, Mapping) or "image" not in data or "label" not in data:
        raise ValueError(f"{name}: expected a dict with 'image' and 'label' arrays, got {type(data).__name__}"
                         + (f" with keys {sorted(data)}" if isinstance(data, Mapping) else ""))
    n_img, n_lab = np.shape(data["image"])[0], np.shape(data["label"])[0]
    if n_img != n_lab:
        raise ValueError(f"{name}: expected as many labels as images, got {n_img} images and {n_lab} labels")
    if n_img == 0:
        raise ValueError(f"{name}: expected at least one example, got 0")
    return int(n_img)


def _check_positive(name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive int{' or None' if allow_none else ''}, got {value!r}")


def _empty_history() -> dict[str, list]:
    return {k: [] for k in HISTORY_KEYS}


def _next_boundary(t: int, every: int | None) -> float:
    return math.inf if every is None else (t // every + 1) * every


def fit(
    model: Any,
    optimizer: Any,
    *,
    train: Mapping[str, Any] | Iterable[Mapping[str, Any]],
    val: Mapping[str, Any] | None = None,
    loss: LossName = "softmax",
    penalty: Callable[[Params], Array] | None = None,
    num_steps: int,
    batch_size: int | None = None,
    eval_every: int = 100,
    seed: int = 0,
    workdir: str | None = None,
    checkpoint_every: int | None = None,
    early_stopping_patience: int | None = None,
    explosion_factor: float | None = 3.0,
    check_initial_loss: bool = True,
    progress: bool = False,
    log_tensorboard: bool = False,
    max_seconds: float | None = None,
    eval_batch_size: int = 1024,
    max_to_keep: int | None = 2,
    hyperparams: Mapping[str, float] | None = None,
) -> FitResult:
    """Trains ``model`` with ``optimizer`` for ``num_steps`` updates.

    On-device arrays (the fast path): the data is put on the device once and the
    updates between two evaluations/checkpoints run as ONE compiled
    ``lax.while_loop`` (batches gathered from a per-epoch permutation inside the
    loop, no host round-trip per step). The compiled functions are cached per
    ``(model, optimizer, loss, penalty)``, so a sweep over seeds compiles once.

    Guards (CS231n notes, "babysitting the learning process"):

    1. initial loss: before the first update the data loss on up to 1024
       training examples is compared with chance level (``log C`` / ``C - 1``);
       a mismatch warns (``check_initial_loss``).
    2. explosion: when an update's training loss is NaN/Inf or exceeds
       ``explosion_factor`` times the loss of update 0, training stops with
       status ``'diverged'``; the returned state is the last one whose loss was
       good, and checkpoints on disk are never overwritten by a bad state.
    3. early stopping: after ``early_stopping_patience`` evaluations without a
       lower validation loss, training stops with ``'early_stopped'``; the
       returned state is then the best-validation snapshot (also when training
       completes without stopping, whenever the patience is set).

    With ``workdir``: orbax checkpoints (atomic) every ``checkpoint_every``
    steps (default: at every evaluation) and at the end; calling ``fit`` again
    with the same ``workdir`` resumes from the latest checkpoint, and a run
    resumed on an evaluation/checkpoint boundary ends with bitwise the same
    parameters and history (``time`` aside) as an uninterrupted one.
    ``metrics.csv`` and ``metrics.jsonl`` get one row per evaluation;
    ``tensorboard/`` event files when ``log_tensorboard``.

    Args:
      model: a ``Model(init, apply)`` (reuse the object across calls to reuse
        the compilation).
      optimizer: a ``GradientTransformation`` (jax231.optimizers or optax).
      train: ``{'image': (N, ...), 'label': (N,)}`` arrays, or an iterator of
        such batches (a tf.data pipeline; slower, a jitted step per batch; on
        resumption the iterator is not fast-forwarded).
      val: optional validation arrays, evaluated every ``eval_every`` steps.
      loss: ``'softmax'``, ``'svm'`` or a per-example callable.
      penalty: optional regulariser ``R(params)`` added to the training loss.
      num_steps: total number of updates (including those of a resumed run).
      batch_size: examples per update; ``None`` is full batch (L-BFGS).
      eval_every: steps between evaluations (and history rows).
      seed: ``key(seed)`` is split into the init/dropout key and the data-order key.
      workdir: directory for checkpoints and logs; created; must be writable.
      checkpoint_every: steps between checkpoints (needs ``workdir``).
      early_stopping_patience: evaluations without improvement before stopping.
      explosion_factor: see guard 2; ``None`` disables the loss-ratio test
        (non-finite losses still stop training).
      check_initial_loss: run guard 1.
      progress: show a one-line progress bar on stderr.
      log_tensorboard: also write TensorBoard event files (imports TensorFlow).
      max_seconds: stop (status ``'timed_out'``) at the first evaluation past
        this wall-clock budget.
      eval_batch_size: batch size of the validation passes.
      max_to_keep: checkpoints kept on disk.
      hyperparams: optimizer hyperparameters to set in the fresh state
        (``jax231.optimizers.set_hyperparams``, e.g. ``{'learning_rate': 0.1}``).
        They enter as data: a sweep over learning rates with ONE optimizer
        object compiles once (a new optimizer object per value compiles anew).
        A resumed run keeps the values of its checkpoint.

    Returns:
      A :class:`FitResult`.

    Raises:
      ValueError: bad arguments (names the argument, the expectation and the
        value), an unwritable ``workdir`` (before any training), or a ``workdir``
        holding a run with another seed or batch size.
    """
    # 0. Validate everything before any compilation or training.
    _check_positive("num_steps", num_steps)
    _check_positive("eval_every", eval_every)
    _check_positive("checkpoint_every", checkpoint_every, allow_none=True)
    _check_positive("early_stopping_patience", early_stopping_patience, allow_none=True)
    _check_positive("eval_batch_size", eval_batch_size)
    if checkpoint_every is not None and workdir is None:
        raise ValueError(f"checkpoint_every: needs a workdir, got workdir=None (checkpoint_every={checkpoint_every})")
    if early_stopping_patience is not None and val is None:
        raise ValueError("early_stopping_patience: needs validation data, got val=None")
    if explosion_factor is not None and not explosion_factor > 1:
        raise ValueError(f"explosion_factor: expected a float > 1 or None, got {explosion_factor!r}")
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"max_seconds: expected a positive float or None, got {max_seconds!r}")
    on_device = isinstance(train, Mapping)
    if on_device:
        n_train = _check_arrays("train", train)
        if batch_size is None:
            batch_size = n_train
        _check_positive("batch_size", batch_size)
        if batch_size > n_train:
            raise ValueError(f"batch_size: expected at most the {n_train} training examples, got {batch_size}")
        images, labels = jnp.asarray(train["image"]), jnp.asarray(train["label"], jnp.int32)
        input_shape = tuple(images.shape[1:])
        batches: Iterator | None = None
    else:
        batches = iter(train)
        first = next(batches, None)
        if first is None:
            raise ValueError("train: the iterator of batches is empty")
        _check_arrays("train batch", first)
        input_shape = tuple(np.shape(first["image"])[1:])
        batch_size = int(np.shape(first["label"])[0])
        batches = _prepend(first, batches)
    if val is not None:
        _check_arrays("val", val)
        val = {"image": jnp.asarray(val["image"]), "label": jnp.asarray(val["label"], jnp.int32)}
    path = _logging.check_workdir(workdir) if workdir is not None else None

    runner = get_runner(model, optimizer, loss, penalty)
    init_key, data_key = jax.random.split(jax.random.PRNGKey(seed))
    state = runner.init(init_key, input_shape=input_shape)
    if hyperparams:
        from jax231.optimizers import set_hyperparams  # lazy: training does not need the package

        try:
            state = state._replace(opt_state=set_hyperparams(state.opt_state, **hyperparams))
        except ValueError as e:
            raise ValueError(f"hyperparams: {e}") from e

    # 1. Fresh start or resumption.
    stopper = _guards.EarlyStopping(early_stopping_patience) if early_stopping_patience else None
    es_state = stopper.init() if stopper else None
    history, best_state, best_step, best_val = _empty_history(), None, -1, math.inf
    initial_loss, elapsed0, status, message = math.nan, 0.0, "completed", ""
    pending = {k: 0.0 for k in TRAIN_METRICS} | {"count": 0}
    ckpt = logger = None
    if path is not None:
        from jax231.training._checkpoint import Checkpointer

        ckpt = Checkpointer(path, max_to_keep=max_to_keep)
        if ckpt.latest_step() is not None:
            t0 = ckpt.latest_step()
            state, loop, best_state = ckpt.restore(state, with_best=stopper is not None)
            for key, value in (("seed", seed), ("batch_size", batch_size)):
                if loop[key] != value:
                    raise ValueError(f"workdir: {str(path)!r} holds a run with {key}={loop[key]}, got {key}={value}")
            history, initial_loss, elapsed0 = loop["history"], _nan(loop["initial_loss"]), loop["elapsed"]
            best_step, best_val, pending = loop["best_step"], _inf(loop["best_val"]), loop["pending"]
            history = {k: [_nan(v) for v in vs] for k, vs in history.items()}
            if stopper:
                es_state = _guards.EarlyStoppingState(*loop["early_stopping"])
                es_state = es_state._replace(best=_inf(es_state.best))
            # Only early stopping is final; a timed-out run goes on where it stopped.
            if loop["status"] == "early_stopped":
                status = "early_stopped"
                message = f"already early stopped at step {t0} (checkpoint in {str(path)!r}); "
        logger = _logging.MetricLogger(path, HISTORY_KEYS, tensorboard=log_tensorboard)
        logger.reset(history)
    t = int(state.step)
    if t == 0 and check_initial_loss and not callable(loss):
        probe = {"image": images[:1024], "label": labels[:1024]} if on_device else first
        init_eval = evaluate(runner.eval_step, state, probe, batch_size=eval_batch_size) if on_device \
            else evaluate(runner.eval_step, state, [probe])
        num_classes = jax.eval_shape(
            lambda s, x: model.apply(s.params, s.model_state, x, train=False, rng=None)[0],
            state, jnp.asarray(probe["image"][:1]),
        ).shape[-1]
        check = _guards.check_initial_loss(init_eval["loss"], num_classes, kind=loss)
        if not check.ok:
            warnings.warn(check.message, stacklevel=2)
            message = check.message + "; "

    def snapshot_loop() -> dict:
        """The loop state that makes resumption exact (JSON: non-finite floats become null)."""
        return {
            "history": {k: [_json(v) for v in vs] for k, vs in history.items()},
            "initial_loss": _json(initial_loss), "elapsed": elapsed0 + time.monotonic() - start,
            "best_step": best_step, "best_val": _json(best_val), "pending": pending,
            "early_stopping": [_json(es_state.best), es_state.best_step, es_state.num_bad] if stopper else None,
            "seed": seed, "batch_size": batch_size, "status": status,
        }

    # 2. Train in chunks ending at evaluation / checkpoint boundaries.
    start = time.monotonic()
    bar = _logging.ProgressBar(num_steps, initial=t) if progress else None
    factor = jnp.float32(math.inf if explosion_factor is None else explosion_factor)
    # The last good state after an explosion: the iterator path keeps the
    # previous state on the host; the on-device path replays from the start of
    # the current chunk, or of the chunk before when the first update is bad.
    prev = state
    chunk_starts: list[tuple[TrainState, float, int]] = []  # (state, initial_loss, length)
    if status != "completed":  # a resumed run that had already stopped
        t = num_steps
    while t < num_steps:
        ckpt_every = checkpoint_every if checkpoint_every is not None else eval_every
        stop_at = int(min(num_steps, _next_boundary(t, eval_every),
                          _next_boundary(t, ckpt_every) if ckpt is not None else math.inf))
        if on_device:
            chunk_starts = chunk_starts[-1:] + [(state, initial_loss, stop_at - t)]
            out = runner.chunk(state, jnp.float32(initial_loss), data_key, images, labels,
                               jnp.int32(stop_at - t), factor, batch_size=batch_size)
        else:
            out = run_iterator(runner.jit_step, state, prev, initial_loss, batches, stop_at - t, factor)
        bad = bool(out.bad)
        initial_loss = float(out.initial_loss)
        done = int(out.num_done)
        pending = {k: pending[k] + float(out.sums[k]) for k in TRAIN_METRICS} | {"count": pending["count"] + done}
        if bad:
            bad_step = t + done
            status = "diverged"
            if not on_device:
                state = out.prev
            elif done > 0 or len(chunk_starts) == 2:
                start, start_loss, length = chunk_starts[-1] if done > 0 else chunk_starts[0]
                state = replay(runner.chunk, start, start_loss, data_key, images, labels,
                               done - 1 if done > 0 else length - 1, factor, batch_size=batch_size)
            # else: update t of the first chunk of this call was bad: keep its start state.
            what = "is not finite" if not math.isfinite(float(out.bad_loss)) else \
                f"exceeds {float(factor):g} x the initial loss {initial_loss:.4g}"
            message += (f"diverged at step {bad_step}: training loss {float(out.bad_loss):.4g} {what}; "
                        f"returning the last good state (step {int(state.step)})")
            break
        state, prev, t = out.state, out.prev if not on_device else None, stop_at
        if t % eval_every == 0 or t == num_steps:
            count = max(pending["count"], 1)
            row = {"step": t, "time": elapsed0 + time.monotonic() - start,
                   "train_loss": pending["loss"] / count, "train_accuracy": pending["accuracy"] / count,
                   "grad_norm": pending["grad_norm"] / count, "update_ratio": pending["update_ratio"] / count,
                   "val_loss": math.nan, "val_accuracy": math.nan}
            pending = {k: 0.0 for k in TRAIN_METRICS} | {"count": 0}
            if val is not None:
                v = evaluate(runner.eval_step, state, val, batch_size=eval_batch_size)
                row["val_loss"], row["val_accuracy"] = v["loss"], v["accuracy"]
                if v["loss"] < best_val:
                    best_val, best_step = v["loss"], t
            for k in HISTORY_KEYS:
                history[k].append(row[k])
            if logger is not None:
                logger.write(row)
            if bar is not None:
                bar.update(t, row)
            if stopper is not None:
                es_state, improved, stop = stopper.update(es_state, row["val_loss"], t)
                if improved:
                    best_state = state
                if stop:
                    status = "early_stopped"
                    message += (f"early stopped at step {t}: no lower validation loss in "
                                f"{early_stopping_patience} evaluations; restored step {es_state.best_step}")
        timed_out = max_seconds is not None and time.monotonic() - start > max_seconds and t < num_steps
        if timed_out and status == "completed":
            status = "timed_out"
            message += f"stopped at step {t} after {time.monotonic() - start:.1f} s (max_seconds={max_seconds})"
        if ckpt is not None and (t % ckpt_every == 0 or t == num_steps or status != "completed"):
            ckpt.save(t, state, snapshot_loop(), best_state if stopper is not None else None)
        if status != "completed":
            break

    # 3. Wrap up.
    if bar is not None:
        bar.close()
    if ckpt is not None:
        ckpt.close()
    if logger is not None:
        logger.close()
    if stopper is not None and best_state is not None and status != "diverged":
        state = best_state
    if status == "completed":
        message += f"completed {num_steps} steps"
    return FitResult(state=state, history=history, status=status, best_step=best_step, message=message)


def _prepend(first, rest):
    yield first
    yield from rest


def _nan(value) -> float:
    return math.nan if value is None else value


def _inf(value) -> float:
    """A best-so-far loss from JSON: ``None`` stands for ``inf`` (nothing seen yet)."""
    return math.inf if value is None else value


def _json(value):
    """NaN/inf -> None so the loop state is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
