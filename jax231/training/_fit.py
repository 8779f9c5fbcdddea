"""``fit``: one model trained by the compiled core (:mod:`._core`) in chunks of steps.

On-device arrays (the fast path): the data is put on the device once and the
updates between two evaluations/checkpoints run as ONE compiled loop
(:mod:`jax231.training._core`: batches gathered from a per-epoch permutation
inside the loop, the optional ``batch_fn`` hook, the guard at every update).
The compiled programs are cached per ``(model, optimizer, loss, penalty,
batch_fn)`` object, so seeds and ``hyperparams`` (data) never recompile.
Random numbers follow the one convention of :mod:`jax231._rng`; batches may be
pytrees (:mod:`._batch`: multi-output and unsupervised models).

Guards (CS231n notes, "babysitting the learning process"; :class:`Guards`):

1. initial loss: the data loss on up to 1024 training examples is compared
   with chance level (``log C`` / ``C - 1``); a mismatch warns once and
   opens the message (``check_initial_loss``; named losses only).
2. explosion: an update whose training loss is NaN/Inf or exceeds
   ``explosion_factor`` times the loss of update 0, or whose gradient,
   parameter or update norm is not finite, stops training with status
   ``'diverged'``; the returned state is the last good one (see
   :func:`last_good_state`). The state reached at a checkpoint and at the
   end is checked the same way, so a checkpoint never holds an exploded state.
3. early stopping: after ``early_stopping_patience`` evaluations without a
   lower validation loss, status ``'early_stopped'`` and the best snapshot
   is returned (also when training completes, whenever the patience is set).

With ``workdir`` (:class:`Checkpointing`): orbax checkpoints (atomic) every
``checkpoint_every`` steps (default: every evaluation) and at the end; calling
``fit`` again with the same ``workdir`` resumes from the latest checkpoint,
bitwise (the ``batch_fn`` stream included: its keys depend on the step only).
``metrics.csv``/``metrics.jsonl`` get one row per evaluation; ``tensorboard/``
event files when ``log_tensorboard`` (:class:`Logging`).

The pieces, each one screen: :class:`_Run` holds what does not change during a
run (programs, data, options, files); :func:`_start` makes or restores the
state and the :class:`~jax231.training._fit_state.FitLoop`; :func:`_train_chunk`
runs the updates up to the next evaluation/checkpoint boundary and names the
last good state when the guard fires; :func:`_evaluate` appends the history
row; :func:`_finish` wraps up.
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings
from typing import Callable, Iterable, Iterator, Mapping, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np

from jax231._rng import run_keys
from jax231._validation import check_seed
from jax231.optimizers import get_hyperparams, set_hyperparams
from jax231.training import _batch, _guards, _logging
from jax231.training import _fit_state as fs
from jax231.training._checkpoint import Checkpointer
from jax231.training._core import BatchFn, LoopData
from jax231.training._files import WorkdirLock
from jax231.training._fit_state import HISTORY_KEYS, STATUSES, FitLoop
from jax231.training._options import (
    Checkpointing,
    Guards,
    Logging,
    check_batch_fn,
    check_eval_fn,
    check_options,
    check_positive,
)
from jax231.training._runner import Runner, eval_view, get_runner, run_iterator
from jax231.training._state import TrainState
from jax231.training._steps import Batch, EvalStep, LossName, evaluate
from jax231.types import Array, GradientTransformation, Model, Params, PyTree

EvalFn = Callable[[int, TrainState], "Mapping[str, float] | None"]


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    Attributes:
      state: the final ``TrainState``; the best-validation snapshot when
        ``early_stopping_patience`` is set; the last good state when diverged.
      history: lists with one entry per evaluation, keys :data:`HISTORY_KEYS`
        (plus the keys an ``eval_fn`` returns). ``train_*``, ``grad_norm`` and
        ``update_ratio`` are means over the minibatch steps since the previous
        evaluation (train mode, penalty included in the loss); ``val_*``
        evaluate the state at ``step`` (inference mode, data loss only, the
        optimizer's ``eval_params`` when it has them; NaN without ``val``);
        ``time`` is wall-clock seconds since the start of the run (resumptions included).
      status: one of :data:`STATUSES`.
      best_step: the step of the lowest validation loss (-1 without ``val``).
      message: a human-readable summary (the initial-loss verdict when it
        failed, the divergence step and loss, ...), each said once.
      initial_loss: the training loss of update 0 (NaN if none ran in this process
        and none was checkpointed).
      eval_step: fit's own eval step (the compiled one: :meth:`evaluate` reuses it).
      eval_batch_size: the batch size of its evaluations.
    """

    state: TrainState
    history: dict[str, list]
    status: str
    best_step: int
    message: str
    initial_loss: float = math.nan
    eval_step: EvalStep | None = None
    eval_batch_size: int = 1024

    def evaluate(self, data: Batch | Iterable[Batch], *, batch_size: int | None = None) -> dict[str, float]:
        """``{'loss', 'accuracy'}`` of :attr:`state` on another split, with fit's compiled eval step."""
        if self.eval_step is None:
            raise ValueError("FitResult.evaluate: expected a result made by fit, got eval_step=None")
        return evaluate(self.eval_step, self.state, data, batch_size=batch_size or self.eval_batch_size)


class _Run(NamedTuple):
    """What stays fixed during one ``fit`` call."""

    runner: Runner
    data: LoopData | None  # on-device arrays; None for an iterator
    batches: Iterator[Batch] | None
    probe: Batch  # up to 1024 training examples (initial-loss check)
    val: Batch | None
    num_steps: int
    batch_size: int
    eval_every: int
    eval_batch_size: int
    seed: int
    guards: Guards
    ckpt_every: int | None
    eval_fn: EvalFn | None
    ckpt: Checkpointer | None
    logger: _logging.MetricLogger | None
    bar: _logging.ProgressBar | None
    started: float
    step_args: tuple = ()
    config: dict | None = None  # what a resumed run must share with its checkpoint (:func:`_run_config`)
    allow_config_change: bool = False


def _check_arrays(name: str, data: object) -> int:
    n = _batch.check(name, data)
    if n == 0:
        raise ValueError(f"{name}: expected at least one example, got 0")
    _guards.check_data(name, cast(Batch, data), num_classes=None, finite=False)  # numeric dtypes (values: in _prepare)
    return n


def _prepend(first, rest):
    yield first
    yield from rest


def _train_source(
    train: Batch | Iterable[Batch], batch_size: int | None
) -> tuple[dict[str, PyTree] | None, Iterator[Batch] | None, Batch, int]:
    """``(arrays or None, batches or None, probe, batch_size)`` of the ``train`` argument."""
    if isinstance(train, Mapping):
        n_train = _check_arrays("train", train)
        batch_size = n_train if batch_size is None else batch_size
        check_positive("batch_size", batch_size)
        if batch_size > n_train:
            raise ValueError(f"batch_size: expected at most the {n_train} training examples, got {batch_size}")
        arrays = _batch.to_device(train)
        probe = {k: _batch.head(v, 1024) for k, v in arrays.items()}
        return arrays, None, probe, batch_size
    batches = iter(train)
    first = next(batches, None)
    if first is None:
        raise ValueError("train: the iterator of batches is empty")
    _check_arrays("train batch", first)
    return None, _prepend(first, batches), first, _batch.num_examples(first)


def _initial_state(runner: Runner, init_key, images, hyperparams) -> TrainState:
    """The fresh state; ``input_shape`` is one example's shape (a dict of them for dict inputs)."""
    if isinstance(images, Mapping):
        shapes = tuple(sorted((k, tuple(np.shape(v)[1:])) for k, v in images.items()))
        state = runner.init(init_key, input_shape=shapes, named=True)
    else:
        state = runner.init(init_key, input_shape=tuple(np.shape(images)[1:]))
    if hyperparams:
        try:
            state = state._replace(opt_state=set_hyperparams(state.opt_state, **hyperparams))
        except ValueError as e:
            raise ValueError(f"hyperparams: {e}") from e
    return state


def _start(
    run: _Run, state: TrainState, model: Model, loss: LossName, path: str | None
) -> tuple[FitLoop, TrainState, TrainState | None]:
    """A fresh loop (with the initial-loss check), or the one of the latest checkpoint."""
    patience = run.guards.early_stopping_patience
    loop, best = fs.new_loop(_guards.EarlyStopping(patience).init() if patience else None), None
    if run.ckpt is not None and run.ckpt.latest_step() is not None:
        state, saved, best = run.ckpt.restore(
            state, with_best=patience is not None, config=run.config, allow_config_change=run.allow_config_change
        )
        step = run.ckpt.restored_step  # the newest INTACT checkpoint, not always the latest
        assert step is not None  # set by restore
        for key, value in (("seed", run.seed), ("batch_size", run.batch_size)):
            if saved[key] != value:
                raise ValueError(f"workdir: {str(path)!r} holds a run with {key}={saved[key]}, got {key}={value}")
        loop = fs.from_json(saved, step=step, with_early=patience is not None)
        if saved["status"] == "early_stopped":  # only early stopping is final
            loop = fs.stop(
                loop, "early_stopped", f"already early stopped at step {step} (checkpoint in {str(path)!r}); "
            )
    if run.logger is not None:
        run.logger.reset(loop.history)
    if loop.step == 0 and run.guards.check_initial_loss and not callable(loss):
        loop = _check_initial_loss(run, state, model, loss, loop)
    return loop, state, best


def _check_initial_loss(run: _Run, state: TrainState, model: Model, loss: str, loop: FitLoop) -> FitLoop:
    """The notes' first sanity check, said once: a warning and the same words in the message."""
    value = (
        evaluate(run.runner.eval_step, state, run.probe, batch_size=run.eval_batch_size)["loss"]
        if run.data is not None
        else evaluate(run.runner.eval_step, state, [run.probe])["loss"]
    )
    num_classes = jax.eval_shape(
        lambda s, x: model.apply(s.params, s.model_state, x, train=False, rng=None)[0],
        state,
        _batch.head(run.probe["image"], 1),
    ).shape[-1]
    check = _guards.check_initial_loss(value, num_classes, kind=loss)
    if check.ok:
        return loop
    warnings.warn(check.message, stacklevel=5)
    return loop._replace(message=loop.message + check.message + "; ")


def _next_stop(run: _Run, t: int) -> int:
    def boundary(every):
        return math.inf if every is None else (t // every + 1) * every

    return int(min(run.num_steps, boundary(run.eval_every), boundary(run.ckpt_every)))


def _chunk(run: _Run, state: TrainState, initial_loss: float, num_steps: int):
    return run.runner.chunk(
        state,
        jnp.float32(initial_loss),
        jnp.array(True),
        run.data,
        state.step,
        jnp.int32(num_steps),
        batch_size=run.batch_size,
    )


class _Starts(NamedTuple):
    """The starts of the current and previous chunks: where the last good state is replayed from."""

    previous: tuple[TrainState, float, int] | None
    current: tuple[TrainState, float, int]


def last_good_state(run: _Run, starts: _Starts, num_done: int) -> TrainState:
    """The state before the first bad update's parameters (the guard's "last good state").

    The update of step ``s`` is judged on the parameters ``w_s`` (its loss and
    gradient), which update ``s - 1`` made; so the last good state is ``w_{s-1}``:
    ``num_done - 1`` updates from the current chunk's start, or, when the chunk's
    first update was bad, ``length - 1`` from the previous chunk's start
    (recomputed by the same compiled program: bitwise the state it passed through).
    When neither exists (the very first update of this call was bad) it is the start.
    """
    if num_done > 0:
        start, start_loss, _ = starts.current
        return _replay(run, start, start_loss, num_done - 1)
    if starts.previous is None:
        return starts.current[0]
    start, start_loss, length = starts.previous
    return _replay(run, start, start_loss, length - 1)


def _replay(run: _Run, state: TrainState, initial_loss: float, num_steps: int) -> TrainState:
    return state if num_steps <= 0 else _chunk(run, state, initial_loss, num_steps).state


def _divergence(loop: FitLoop, factor: float, bad_step: int, bad_loss: float, kept: TrainState) -> FitLoop:
    if not math.isfinite(bad_loss):
        what = "is not finite"
    elif bad_loss > factor * loop.initial_loss:
        what = f"exceeds {factor:g} x the initial loss {loop.initial_loss:.4g}"
    else:
        what = "is finite but a gradient, parameter or update norm is not"
    return fs.stop(
        loop,
        "diverged",
        f"diverged at step {bad_step}: training loss {bad_loss:.4g} {what}; "
        f"returning the last good state (step {int(kept.step)})",
    )


def _train_chunk(run: _Run, state: TrainState, loop: FitLoop, starts: _Starts | None, prev: TrainState | None):
    """Updates up to the next boundary; on a bad update, the last good state and status 'diverged'.

    At a checkpoint boundary and at the end the state reached is checked too
    (the guard on the update it would make next, whose result is dropped), so
    an explosion in the last update of a chunk never reaches a checkpoint nor
    ends a run as 'completed'.
    """
    stop_at = _next_stop(run, loop.step)
    factor = jnp.float32(math.inf if run.guards.explosion_factor is None else run.guards.explosion_factor)
    if run.batches is not None:
        out, prev = run_iterator(
            run.runner.jit_step, state, prev, loop.initial_loss, run.batches, stop_at - loop.step, factor, run.step_args
        )
    else:
        starts = _Starts(starts.current if starts else None, (state, loop.initial_loss, stop_at - loop.step))
        out = _chunk(run, state, loop.initial_loss, stop_at - loop.step)
        if not bool(out.bad) and (stop_at == run.num_steps or _on(stop_at, run.ckpt_every)):
            probe = _chunk(run, out.state, float(out.initial_loss), 1)
            if bool(probe.bad):
                out = out._replace(bad=probe.bad, bad_loss=probe.bad_loss, bad_step=probe.bad_step)
    loop = fs.add_chunk(loop, out.sums, int(out.num_done), float(out.initial_loss))
    if not bool(out.bad):
        return out.state, loop, starts, prev
    if run.batches is not None:  # the iterator path tracks the last good state itself
        assert prev is not None
        kept = prev
    else:
        assert starts is not None
        kept = last_good_state(run, starts, int(out.num_done))
    loop = _divergence(loop, float(factor), int(out.bad_step), float(out.bad_loss), kept)
    return kept, loop, starts, prev


def _on(step: int, every: int | None) -> bool:
    return every is not None and step % every == 0


def _evaluate(run: _Run, state: TrainState, loop: FitLoop, best: TrainState | None):
    """The history row at an evaluation boundary, the eval callback, early stopping."""
    row = fs.train_row(loop, time.monotonic() - run.started)
    if run.val is not None:
        v = evaluate(run.runner.eval_step, state, run.val, batch_size=run.eval_batch_size)
        row["val_loss"], row["val_accuracy"] = v["loss"], v["accuracy"]
    if run.eval_fn is not None:
        extra = run.eval_fn(loop.step, state)
        if extra is not None and not isinstance(extra, Mapping):
            raise ValueError(f"eval_fn: expected a dict of floats or None, got {type(extra).__name__}")
        row.update({k: float(v) for k, v in (extra or {}).items()})
    loop = fs.add_row(loop, row)
    if len(loop.history["step"]) == run.guards.babysit_after:
        loop = _babysit(run.guards, loop)
    if run.logger is not None:
        run.logger.write(row)
    if run.bar is not None:
        run.bar.update(loop.step, row)
    if loop.early is not None:
        assert run.guards.early_stopping_patience is not None  # loop.early is set only with a patience
        stopper = _guards.EarlyStopping(run.guards.early_stopping_patience)
        early, improved, stop = stopper.update(loop.early, row["val_loss"], loop.step)
        loop, best = loop._replace(early=early), state if improved else best
        if stop:
            loop = fs.stop(
                loop,
                "early_stopped",
                f"early stopped at step {loop.step}: no lower validation "
                f"loss in {stopper.patience} evaluations; restored step {early.best_step}",
            )
    return loop, best


def _babysit(guards: Guards, loop: FitLoop) -> FitLoop:
    """The flat-loss and update-ratio checks, said once (at evaluation ``babysit_after``) like the initial loss."""
    k = guards.babysit_after
    assert k is not None  # called at evaluation babysit_after only
    checks = [
        _guards.check_flat_loss(
            loop.history["train_loss"], loop.initial_loss, num_evals=k, min_drop=guards.flat_loss_drop
        )
    ]
    if guards.update_ratio_band is not None:
        checks.append(_guards.check_update_ratio(loop.history["update_ratio"][:k], band=guards.update_ratio_band))
    for check in checks:
        if not check.ok:
            warnings.warn(check.message, stacklevel=6)
            loop = loop._replace(message=loop.message + check.message + "; ")
    return loop


def _after_chunk(run: _Run, state: TrainState, loop: FitLoop, best: TrainState | None):
    """Evaluation, time budget and checkpoint after a good chunk."""
    if loop.step % run.eval_every == 0 or loop.step == run.num_steps:
        loop, best = _evaluate(run, state, loop, best)
    seconds = time.monotonic() - run.started
    budget = run.guards.max_seconds
    if budget is not None and seconds > budget and loop.step < run.num_steps and loop.status == "completed":
        loop = fs.stop(loop, "timed_out", f"stopped at step {loop.step} after {seconds:.1f} s (max_seconds={budget})")
    if run.ckpt is not None and (
        _on(loop.step, run.ckpt_every) or loop.step == run.num_steps or loop.status != "completed"
    ):
        saved = fs.to_json(loop, elapsed=loop.elapsed + seconds, seed=run.seed, batch_size=run.batch_size)
        run.ckpt.save(loop.step, state, saved, best if loop.early is not None else None, config=run.config)
    return loop, best


def _finish(run: _Run, state: TrainState, loop: FitLoop, best: TrainState | None) -> FitResult:
    for closable in (run.bar, run.ckpt, run.logger):
        if closable is not None:
            closable.close()
    if loop.early is not None and best is not None and loop.status != "diverged":
        state = best
    if loop.status == "completed":
        loop = fs.stop(loop, "completed", f"completed {run.num_steps} steps")
    return FitResult(
        state=state,
        history=loop.history,
        status=loop.status,
        best_step=loop.best_step,
        message=loop.message,
        initial_loss=loop.initial_loss,
        eval_step=run.runner.eval_step,
        eval_batch_size=run.eval_batch_size,
    )


def fit(
    model: Model,
    optimizer: GradientTransformation,
    *,
    train: Batch | Iterable[Batch],
    val: Batch | None = None,
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
    l2: float | None = None,
    batch_fn: BatchFn | None = None,
    eval_fn: EvalFn | None = None,
    guards: Guards | None = None,
    checkpointing: Checkpointing | None = None,
    logging: Logging | None = None,
) -> FitResult:
    """Trains ``model`` with ``optimizer`` for ``num_steps`` updates (the module docstring
    describes the compiled loop, the guards and the checkpoints).

    Args:
      model: a ``Model(init, apply)`` (reuse the object to reuse the compilation).
      optimizer: a ``GradientTransformation``; its ``eval_params`` (an EMA held
        in the state, ``jax231.optimizers.average_params``) is what is evaluated.
      train: ``{'image': (N, ...), 'label': (N,)}`` arrays, or an iterator of
        such batches (slower, a jitted step per batch; not fast-forwarded on
        resumption). Both values may be pytrees with the leading axis ``N`` and
        ``'label'`` may be absent (:mod:`._batch`): the ``loss`` callable then
        gets the model's output and label pytrees (or ``None``), accuracies are
        NaN. Integer label leaves become int32, other leaves stay as they are.
      val: optional validation arrays, evaluated every ``eval_every`` steps.
      loss: ``'softmax'``, ``'svm'`` or a per-example callable.
      penalty: optional regulariser ``R(params)`` added to the training loss.
      num_steps: total number of updates (including those of a resumed run).
      batch_size: examples per update; ``None`` is full batch (L-BFGS).
      eval_every: steps between evaluations (and history rows).
      seed: the run's seed (:func:`jax231.training.run_keys`).
      workdir, checkpoint_every, max_to_keep: see :class:`Checkpointing`; early_stopping_patience,
        explosion_factor, check_initial_loss, max_seconds: :class:`Guards`; progress, log_tensorboard:
        :class:`Logging`. eval_batch_size: batch size of the validation passes.
      hyperparams: optimizer hyperparameters written into the fresh state (``set_hyperparams``), as
        data: one optimizer, many values, one compilation (a resumed run keeps its checkpoint's).
      batch_fn: on-device hook ``batch_fn(key, batch) -> batch`` on every training batch (augmentation,
        noise), ``key = fold_in(hook_key, step)``; same keys, shapes, dtypes out (checked before compiling).
        A ``batch_fn(key, batch, *, step)`` (a ``step`` keyword) also gets the global step, traced
        (epoch-dependent augmentation: ``jax231.pipelines.alternating_flip_fn``).
      eval_fn: ``eval_fn(step, state) -> dict of floats or None`` at every evaluation (snapshots, extra
        metrics); its floats join the history row. guards, checkpointing, logging: the option groups
        whole (they replace the corresponding flat arguments).

    Returns:
      A :class:`FitResult`.

    Raises:
      ValueError: bad arguments (one line naming the argument), an unwritable ``workdir`` (before any
        training), a ``workdir`` holding a run with another seed, batch size, model shape, hyperparameters,
        L2 strength or training data (unless ``Checkpointing(allow_config_change=True)``), no intact
        checkpoint in it, or another live run holding its lock (:class:`WorkdirLockedError`).
    """
    guards = guards or Guards(explosion_factor, check_initial_loss, early_stopping_patience, max_seconds)
    files = checkpointing or Checkpointing(workdir, checkpoint_every, max_to_keep)
    logs = logging or Logging(progress, log_tensorboard)
    for name, value in (("num_steps", num_steps), ("eval_every", eval_every), ("eval_batch_size", eval_batch_size)):
        check_positive(name, value)
    check_seed("seed", seed)
    check_options(guards, files, has_val=val is not None)
    run, state = _prepare(
        model,
        optimizer,
        train,
        val,
        loss,
        penalty,
        num_steps,
        batch_size,
        eval_every,
        seed,
        guards,
        files,
        logs,
        eval_batch_size,
        hyperparams,
        l2,
        batch_fn,
        eval_fn,
    )
    return _train_locked(run, state, model, loss, files, logs, num_steps)


def _train_locked(
    run: _Run, state: TrainState, model: Model, loss: LossName, files: Checkpointing, logs: Logging, num_steps: int
) -> FitResult:
    """One run per workdir at a time: a second one stops here with one line naming the holder."""
    lock = WorkdirLock(files.workdir).acquire() if files.workdir is not None else None
    try:
        return _train(run, state, model, loss, files, logs, num_steps)
    finally:
        if lock is not None:
            lock.release()


def _train(
    run: _Run, state: TrainState, model: Model, loss: LossName, files: Checkpointing, logs: Logging, num_steps: int
) -> FitResult:
    """The loop of :func:`fit`: resume or start, then chunks until a stop (under the workdir lock)."""
    loop, state, best = _start(run, state, model, loss, files.workdir)
    starts, prev = None, state
    run = run._replace(
        bar=_logging.ProgressBar(num_steps, initial=loop.step) if logs.progress else None, started=time.monotonic()
    )
    while not fs.should_stop(loop, num_steps):
        state, loop, starts, prev = _train_chunk(run, state, loop, starts, prev)
        if loop.status == "completed":
            loop, best = _after_chunk(run, state, loop, best)
    return _finish(run, state, loop, best)


def _prepare(
    model: Model,
    optimizer: GradientTransformation,
    train: Batch | Iterable[Batch],
    val: Batch | None,
    loss: LossName,
    penalty: Callable[[Params], Array] | None,
    num_steps: int,
    batch_size: int | None,
    eval_every: int,
    seed: int,
    guards: Guards,
    files: Checkpointing,
    logs: Logging,
    eval_batch_size: int,
    hyperparams: Mapping[str, float] | None,
    l2: float | None,
    batch_fn: BatchFn | None,
    eval_fn: EvalFn | None,
) -> tuple[_Run, TrainState]:
    """Validates the data and hooks, builds the programs and the fresh state (nothing trains)."""
    arrays, batches, probe, batch_size = _train_source(train, batch_size)
    if batch_fn is not None and arrays is None:
        raise ValueError("batch_fn: expected on-device train arrays, got an iterator of batches")
    check_batch_fn(batch_fn, {k: _batch.head(v, batch_size) for k, v in probe.items()})
    check_eval_fn(eval_fn)
    if val is not None:
        _check_arrays("val", val)
    path = _logging.check_workdir(files.workdir) if files.workdir is not None else None
    if l2 is not None and not (isinstance(l2, (int, float, np.floating)) and math.isfinite(l2) and l2 >= 0):
        raise ValueError(f"l2: expected a finite float >= 0 or None, got {l2!r}")
    runner = get_runner(model, optimizer, loss, penalty, batch_fn, with_l2=l2 is not None)
    keys = run_keys(seed)
    state = _initial_state(runner, keys.init, probe["image"], hyperparams)
    # Data at the door: finite pixels, integer labels in [0, C) (C: the model's outputs), before training.
    named = isinstance(loss, str) and "label" in probe  # (a named loss without labels is refused by the step)
    classes = _guards.output_classes(model, state, probe["image"]) if named else None
    splits: tuple[tuple[str, Batch | None], ...] = (
        ("train", cast(Batch, train) if arrays is not None else probe),
        ("val", val),
    )
    for name, split in splits:
        if split is not None:
            _guards.check_data(name, split, num_classes=classes, finite=guards.check_finite_inputs)
    if val is not None:
        val = _batch.to_device(val)
    if classes is not None:  # a named classification loss: class indices (floats holding integers included)
        arrays, val = (None if d is None else {**d, "label": jnp.asarray(d["label"], jnp.int32)} for d in (arrays, val))
    factor = jnp.float32(math.inf if guards.explosion_factor is None else guards.explosion_factor)
    step_args = () if l2 is None else (jnp.float32(l2),)
    data = (
        None
        if arrays is None
        else LoopData(arrays["image"], arrays.get("label"), keys.data, keys.hook, factor, step_args)
    )
    ckpt = Checkpointer(path, max_to_keep=files.max_to_keep) if path is not None else None
    logger = _logging.MetricLogger(path, HISTORY_KEYS, tensorboard=logs.log_tensorboard) if path else None
    ckpt_every = (files.checkpoint_every or eval_every) if ckpt is not None else None
    run = _Run(
        runner,
        data,
        batches,
        probe,
        val,
        num_steps,
        batch_size,
        eval_every,
        eval_batch_size,
        seed,
        guards,
        ckpt_every,
        eval_fn,
        ckpt,
        logger,
        None,
        0.0,
        step_args,
        _run_config(state, arrays, l2) if ckpt is not None else None,
        files.allow_config_change,
    )
    return run, state


def _run_config(state: TrainState, arrays: Batch | None, l2: float | None) -> dict:
    """What a resumed run must share with its checkpoint, besides the seed and batch size checked
    by :func:`_start`: the optimizer's constant hyperparameters, the L2 strength and the training
    data (its size and a digest of its labels). The model's shapes are checked by the checkpoint."""
    hyperparams = {k: float(np.asarray(v)) for k, v in get_hyperparams(state.opt_state).items() if np.ndim(v) == 0}
    config: dict = {"hyperparams": hyperparams, "l2": l2}
    if arrays is not None:  # the labels' digest (the inputs' for an unsupervised model)
        digest = hashlib.sha256()
        for leaf in jax.tree_util.tree_leaves(arrays.get("label", arrays["image"])):
            digest.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
        config["train_examples"] = _batch.num_examples(arrays)
        config["train_labels_sha256"] = digest.hexdigest()[:16]
    return config


__all__ = ["FitResult", "HISTORY_KEYS", "STATUSES", "fit", "last_good_state", "eval_view"]
