"""``run_sweep``: ``K`` runs trained at once by the vmapped training core.

Between evaluations the members advance in one compiled call of
:func:`jax231.training.run_chunk` with ``members=True`` (the loop ``fit`` runs,
over the vmapped step): the same on-device batch order, ``batch_fn`` hook and
explosion guard as ``fit``, a member whose update is bad frozen at its last
good state while the others go on. An evaluation is one vmapped forward pass
over the validation set.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jax231 import optimizers, training
from jax231.parallel._sweep import (
    ModelOrFactory,
    SweepResult,
    check_sweep_values,
    grouped_vmap,
    init_sweep,
    make_sweep_step,
    member_groups,
    sweep_keys,
)
from jax231.training import _cache as training_cache
from jax231.training._options import check_positive
from jax231.types import ArrayLike, PyTree

TRAIN_METRICS = training.TRAIN_METRICS


def _resolve_optimizer(optimizer: Any, hyperparams: Mapping[str, np.ndarray], kwargs: Mapping[str, Any]):
    """A GradientTransformation from a name, a factory or a ready transformation."""
    if hasattr(optimizer, "init") and hasattr(optimizer, "update"):
        return optimizer
    # Built with member 0's values; every member's own values are then written
    # into its state by init_sweep.
    build_kwargs = {name: float(values[0]) for name, values in hyperparams.items()}
    build_kwargs.update(kwargs)
    if isinstance(optimizer, str):
        return optimizers.get(optimizer, **build_kwargs)
    if callable(optimizer):
        return optimizer(**build_kwargs)
    raise ValueError(
        "optimizer must be a name for jax231.optimizers.get, a factory or a GradientTransformation; "
        f"got {type(optimizer).__name__}."
    )


def _check_not_scheduled(states, requested: Mapping[str, np.ndarray]) -> None:
    """Raises if a swept optimizer hyperparameter was replaced by the optimizer's schedule.

    Optimizers re-evaluate a hyperparameter given as a schedule at every step
    (jax231 and ``optax.inject_hyperparams`` alike) and store the result, so a
    value written by :func:`init_sweep` survives the first updates only when the
    hyperparameter is a constant.
    """
    held = optimizers.get_hyperparams(states.opt_state)
    for name, values in requested.items():
        if not np.array_equal(np.asarray(held[name]), np.asarray(values, np.asarray(held[name]).dtype)):
            raise ValueError(
                f"hyperparams[{name!r}] cannot be swept: the optimizer computes it from a schedule at every "
                "step, which replaced the swept values; build the optimizer with a constant "
                f"{name} (or sweep seeds only)."
            )


class _Programs(NamedTuple):
    """The jitted programs of one sweep configuration (see :func:`_get_programs`)."""

    init: Callable  # (seeds, hyperparams, *, input_shape) -> states
    chunk: Callable  # training.run_chunk over K members
    evaluate: Callable  # (states, xv, yv) -> metrics


def _build_programs(model, tx, model_hp, *, loss, penalty, batch_size: int, batch_fn) -> _Programs:
    """Jits the programs of run_sweep; every array (seeds, data, keys, L2 strengths) is an argument."""
    groups = member_groups(model, model_hp)
    sweep_step = make_sweep_step(model, tx, loss=loss, penalty=penalty, model_hyperparams=model_hp)

    def init(seeds, hp, *, input_shape):
        return init_sweep(model, tx, seeds=seeds, input_shape=input_shape, hyperparams=hp, model_hyperparams=model_hp)

    # The one training loop of jax231 (training.run_chunk), over K members: a
    # member whose update is bad freezes at its last good state, the others go on.
    chunk = functools.partial(training.run_chunk, sweep_step, batch_size=batch_size, batch_fn=batch_fn,
                              members=True)

    def evaluate(states, xv, yv):
        def build(member_model):
            eval_step = training.make_eval_step(member_model, loss=loss)
            return lambda state: eval_step(training.eval_view(tx, state), {"image": xv, "label": yv})

        return grouped_vmap(groups, build, states)

    return _Programs(
        init=jax.jit(init, static_argnames="input_shape"),
        chunk=jax.jit(chunk),
        evaluate=jax.jit(evaluate),
    )


def _get_programs(model, optimizer, opt_hp, optimizer_kwargs, model_hp, *, loss, penalty, batch_size,
                  batch_fn) -> _Programs:
    """The programs of this configuration, from training's one compile cache.

    The key holds the model and optimizer *objects* (by identity, as ``fit``'s)
    with the static configuration: ``loss``, ``penalty``, ``batch_size``,
    ``batch_fn``, the concrete model hyperparameters (they pick the groups'
    models), and for an optimizer given by name or factory its
    ``optimizer_kwargs`` and the names of the swept hyperparameters. The swept
    values themselves are data (written into the optimizer state, or the L2
    strengths argument), so a call with other seeds or hyperparameters reuses
    the programs; array shapes (``K``, ``N``, the input shape) are handled by
    ``jax.jit`` itself.
    """
    is_transformation = hasattr(optimizer, "init") and hasattr(optimizer, "update")
    try:
        key = (
            "sweep", model, optimizer,
            None if is_transformation else (tuple(sorted(optimizer_kwargs.items())), tuple(sorted(opt_hp))),
            tuple((name, tuple(np.asarray(values).tolist())) for name, values in sorted(model_hp.items())),
            loss, penalty, batch_size, batch_fn,
        )
    except TypeError:
        key = (object(),)  # an unhashable part: build anew

    def build() -> _Programs:
        tx = _resolve_optimizer(optimizer, opt_hp, optimizer_kwargs)
        return _build_programs(model, tx, model_hp, loss=loss, penalty=penalty, batch_size=batch_size,
                               batch_fn=batch_fn)

    return training_cache.cached(key, build)


def _member_name(used: Mapping[str, np.ndarray], k: int) -> str:
    """``member 2 (seed=0, learning_rate=0.2)``: a sweep member by its values."""
    values = ", ".join(f"{name}={np.asarray(v)[k].item():.4g}" if name != "seed" else f"seed={int(v[k])}"
                       for name, v in used.items())
    return f"member {k} ({values})"


def _member_messages(used, status, bad_step, bad_loss, initial, factor) -> list[str]:
    messages = []
    for k, st in enumerate(status):
        if st != "diverged":
            messages.append(f"{_member_name(used, k)}: completed")
            continue
        loss = float(bad_loss[k])
        if not np.isfinite(loss):
            what = "is not finite"
        elif factor is not None and loss > factor * float(initial[k]):
            what = f"exceeds {factor:g} x the initial loss {float(initial[k]):.4g}"
        else:
            what = "is finite but a gradient, parameter or update norm is not"
        messages.append(f"{_member_name(used, k)}: diverged at step {int(bad_step[k])}: training loss "
                        f"{loss:.4g} {what}; frozen at its last good state")
    return messages


def run_sweep(
    model: ModelOrFactory,
    optimizer: Any,
    *,
    train: Mapping[str, ArrayLike],
    seeds: ArrayLike,
    num_steps: int,
    val: Mapping[str, ArrayLike] | None = None,
    hyperparams: Mapping[str, ArrayLike] | None = None,
    model_hyperparams: Mapping[str, ArrayLike] | None = None,
    l2: ArrayLike | None = None,
    batch_size: int | None = None,
    eval_every: int | None = None,
    loss: Any = "softmax",
    penalty: Callable[[PyTree], jax.Array] | None = None,
    optimizer_kwargs: Mapping[str, Any] | None = None,
    explosion_factor: float | None = 3.0,
    batch_fn: Callable[[Any, dict], dict] | None = None,
    eval_fn: Callable[[int, Any], Mapping[str, ArrayLike] | None] | None = None,
) -> SweepResult:
    """Trains ``K = len(seeds)`` models at once, one compiled program for all.

    Member ``k`` is the run ``jax231.training.fit(model_k, optimizer_k,
    train=train, seed=seeds[k], batch_size=batch_size, num_steps=num_steps,
    penalty=penalty_k, explosion_factor=explosion_factor)``: the same initial
    state, data order, dropout and hook keys (``training.run_keys(seeds[k])``),
    the same guard (a diverged member is frozen at the state ``fit`` would
    return; ``fit``'s extra check of the final state is not made), where ``optimizer_k`` holds ``hyperparams[name][k]``,
    ``model_k = model(**{name: model_hyperparams[name][k]})`` and ``penalty_k``
    adds ``jax231.losses.l2_penalty(params, strength=l2[k])``
    (:math:`\\tfrac{1}{2} \\lambda_k \\sum w^2`). Members with equal seeds share
    initialisation and data order (common random numbers for a hyperparameter
    search).

    Args:
      model: a ``Model``, or a factory such as
        ``functools.partial(jax231.models.get, 'mlp', hidden_sizes=(100, 100), num_classes=10)``
        when sweeping ``model_hyperparams``.
      optimizer: a ``jax231.optimizers`` name (built with ``optimizer_kwargs``
        and member 0's ``hyperparams``), a factory taking those keyword
        arguments, or a ``GradientTransformation`` whose state has ``hyperparams``.
      train: ``{'image': (N, ...), 'label': (N,)}`` arrays (moved to the device once).
      seeds: ``(K,)`` integer seeds.
      num_steps: optimizer steps per member.
      val: optional validation arrays, evaluated every ``eval_every`` steps.
      hyperparams: optimizer hyperparameters to sweep, ``(K,)`` each (e.g.
        ``learning_rate``, ``momentum``, ``weight_decay`` of ``adamw``). A
        hyperparameter that the optimizer computes from a schedule cannot be
        swept (the schedule overwrites it every step): a ``ValueError`` is
        raised after the first chunk of updates.
      model_hyperparams: model factory arguments to sweep, ``(K,)`` each (e.g.
        ``drop_rate``). Members are grouped by value; each group is vmapped
        separately inside the one compiled step, so ``K`` distinct values run
        one after the other (still one program and one compilation).
      l2: ``(K,)`` L2 penalty strengths to sweep.
      batch_size: minibatch size; ``None`` for full-batch steps.
      eval_every: steps between evaluations; ``None`` evaluates once at the end.
      loss: as in :func:`jax231.training.make_loss_fn`.
      penalty: a fixed penalty added for every member.
      optimizer_kwargs: static arguments of the optimizer factory.
      explosion_factor: ``fit``'s guard, per member: an update whose loss exceeds
        this many times the member's update-0 loss (or any non-finite loss,
        gradient, parameter or update norm) freezes the member at its last good
        state; ``None`` tests finiteness only.
      batch_fn: on-device hook ``batch_fn(key, batch) -> batch`` for one
        member's batch (vmapped over members), ``key = fold_in(run_keys(seed).hook, t)``.
      eval_fn: ``eval_fn(step, states) -> dict or None`` called at every
        evaluation with the stacked states (ensemble metrics, snapshots); each
        value (a scalar or ``(K,)``) becomes a history entry (``(E,)`` or ``(K, E)``).

    Returns:
      A :class:`SweepResult`.

    Raises:
      ValueError: on swept values whose shape is not ``(K,)``, unknown
        hyperparameter names, a swept hyperparameter driven by a schedule, a
        ``batch_size`` outside ``[1, N]`` or a non-positive ``num_steps`` /
        ``eval_every``.

    Examples:
      >>> result = run_sweep(model, 'momentum', train=data, seeds=jnp.arange(4),
      ...                    hyperparams={'learning_rate': jnp.array([1e-3, 1e-2, 1e-1, 1.0])},
      ...                    num_steps=1000, batch_size=128)  # doctest: +SKIP
      >>> result.history['val_accuracy'].shape  # (K, evaluations)  # doctest: +SKIP
    """
    keys = _check_seeds(seeds)
    k = keys.data.shape[0]
    opt_hp = check_sweep_values(hyperparams, k, "hyperparams")
    model_hp = check_sweep_values(model_hyperparams, k, "model_hyperparams")
    l2_values = None if l2 is None else jnp.asarray(check_sweep_values({"l2": l2}, k, "l2")["l2"], jnp.float32)
    check_positive("num_steps", num_steps)
    eval_every = num_steps if eval_every is None else eval_every
    check_positive("eval_every", eval_every)
    if explosion_factor is not None and not explosion_factor > 1:
        raise ValueError(f"explosion_factor: expected a float > 1 or None, got {explosion_factor!r}")
    x, y = jnp.asarray(train["image"]), jnp.asarray(train["label"], jnp.int32)
    n = x.shape[0]
    if y.shape != (n,):
        raise ValueError(f"train['label']: expected shape ({n},) to match train['image'], got {y.shape}")
    batch_size = n if batch_size is None else batch_size
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size: expected an int in [1, {n}] (the training set size) or None, got {batch_size}")
    training.check_batch_fn(batch_fn, {"image": x[:batch_size], "label": y[:batch_size]})
    programs = _get_programs(model, optimizer, opt_hp, optimizer_kwargs or {}, model_hp, loss=loss,
                             penalty=penalty, batch_size=batch_size, batch_fn=batch_fn)
    # Model hyperparameters stay concrete (they pick the group's model); the
    # optimizer's are traced, so new values do not recompile.
    states = programs.init(jnp.asarray(seeds), opt_hp, input_shape=tuple(x.shape[1:]))
    factor = jnp.float32(np.inf if explosion_factor is None else explosion_factor)
    data = training.LoopData(x, y, keys.data, keys.hook, factor, (l2_values,))
    val_arrays = None if val is None else (jnp.asarray(val["image"]), jnp.asarray(val["label"], jnp.int32))
    training.check_eval_fn(eval_fn)
    history, track = _train(programs, states, data, val_arrays, opt_hp, num_steps=num_steps, eval_every=eval_every,
                            eval_fn=eval_fn)
    used = {"seed": np.asarray(seeds), **opt_hp, **model_hp}
    if l2_values is not None:
        used["l2"] = np.asarray(l2_values)
    status = np.where(track.alive, "completed", "diverged")
    messages = _member_messages(used, status, track.bad_step, track.bad_loss, track.initial, explosion_factor)
    return SweepResult(state=track.states, history=history, diverged=~track.alive, hyperparams=used,
                       status=status, initial_loss=track.initial, first_bad_step=track.bad_step, messages=messages)


class _Track(NamedTuple):
    """Every member's progress between chunks (host NumPy, but the states)."""

    states: Any
    prev: Any
    alive: np.ndarray
    initial: np.ndarray
    bad_step: np.ndarray
    bad_loss: np.ndarray


def _check_seeds(seeds: ArrayLike) -> training.RunKeys:
    sweep_keys(seeds)  # validates: a non-empty 1-D integer array
    return jax.vmap(training.run_keys)(jnp.asarray(seeds))


def _train(programs: _Programs, states, data, val_arrays, opt_hp, *, num_steps: int, eval_every: int,
           eval_fn=None):
    """Chunks of the core loop between evaluations; the stacked history and the members' track."""
    k = data.data_key.shape[0]
    track = _Track(states, states, np.ones(k, bool), np.full(k, np.nan, np.float32),
                   np.full(k, -1, np.int32), np.full(k, np.nan, np.float32))
    rows: dict[str, list] = {"step": [], "time": [], **{_history_name(m): [] for m in TRAIN_METRICS}}
    if val_arrays is not None:
        rows.update(val_loss=[], val_accuracy=[])
    start_time, done = time.perf_counter(), 0
    while done < num_steps:
        stop = min(done + eval_every, num_steps)
        out = programs.chunk(track.states, jnp.asarray(track.initial), jnp.asarray(track.alive), data,
                             jnp.int32(done), jnp.int32(stop - done), track.prev)
        if done == 0:
            _check_not_scheduled(out.state, opt_hp)
        bad = np.asarray(out.bad)
        track = _Track(out.state, out.prev, np.asarray(out.alive), np.asarray(out.initial_loss),
                       np.where(bad, np.asarray(out.bad_step), track.bad_step),
                       np.where(bad, np.asarray(out.bad_loss), track.bad_loss))
        count = np.asarray(out.num_done).astype(np.float32)
        with np.errstate(invalid="ignore", divide="ignore"):
            for name, value in out.sums.items():
                rows[_history_name(name)].append(np.where(count > 0, np.asarray(value) / count, np.nan))
        if val_arrays is not None:
            metrics = programs.evaluate(track.states, *val_arrays)
            rows["val_loss"].append(np.asarray(metrics["loss"]))
            rows["val_accuracy"].append(np.asarray(metrics["accuracy"]))
        done = stop
        if eval_fn is not None:
            for name, value in (eval_fn(done, track.states) or {}).items():
                rows.setdefault(name, []).append(np.asarray(value))
        rows["step"].append(done)
        rows["time"].append(time.perf_counter() - start_time)
    history = {name: np.stack(values, axis=-1) for name, values in rows.items()}
    return history, track


def _history_name(metric: str) -> str:
    return f"train_{metric}" if metric in ("loss", "accuracy") else metric


__all__ = ["run_sweep"]
