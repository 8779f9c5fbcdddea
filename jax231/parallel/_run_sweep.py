"""``run_sweep``: the whole training loop of ``K`` vmapped runs, on device.

Between evaluations the loop is one compiled ``lax.fori_loop`` over steps, each
step drawing every member's minibatch from arrays held on the device; an
evaluation is one vmapped forward pass over the validation set.
"""

from __future__ import annotations

import collections
import functools
import time
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

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
from jax231.types import ArrayLike, PyTree

TRAIN_METRICS = ("loss", "accuracy", "grad_norm", "update_ratio")


def _resolve_optimizer(optimizer: Any, hyperparams: Mapping[str, np.ndarray], kwargs: Mapping[str, Any]):
    """A GradientTransformation from a name, a factory or a ready transformation."""
    if hasattr(optimizer, "init") and hasattr(optimizer, "update"):
        return optimizer
    # Built with member 0's values; every member's own values are then written
    # into its state by init_sweep.
    build_kwargs = {name: float(values[0]) for name, values in hyperparams.items()}
    build_kwargs.update(kwargs)
    if isinstance(optimizer, str):
        from jax231 import optimizers

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
    from jax231 import optimizers

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
    chunk: Callable  # (states, start, stop, x, y, l2_values, data_keys) -> (states, means, finite)
    evaluate: Callable  # (states, xv, yv) -> metrics


def _build_programs(model, tx, model_hp, *, loss, penalty, batch_size: int) -> _Programs:
    """Jits the programs of run_sweep; every array (seeds, data, keys) is an argument."""
    from jax231 import training

    groups = member_groups(model, model_hp)
    sweep_step = make_sweep_step(model, tx, loss=loss, penalty=penalty, model_hyperparams=model_hp)

    def init(seeds, hp, *, input_shape):
        return init_sweep(model, tx, seeds=seeds, input_shape=input_shape, hyperparams=hp, model_hyperparams=model_hp)

    # One program for every chunk length: a fori_loop with traced bounds. The
    # epoch permutations are carried and recomputed only when an epoch starts
    # (the step counter is shared by all members, so this is a real branch).
    def chunk(states, start, stop, x, y, l2_values, data_keys):
        k, n = data_keys.shape[0], x.shape[0]
        steps_per_epoch = n // batch_size

        def orders(epoch):  # (K, N): every member's example order in this epoch
            return jax.vmap(lambda key: training.epoch_permutation(key, epoch, n))(data_keys)

        def body(t, carry):
            states, perms, sums, finite = carry
            pos = t % steps_per_epoch
            if batch_size == n:
                batches = {"image": jnp.broadcast_to(x, (k,) + x.shape), "label": jnp.broadcast_to(y, (k, n))}
            else:
                perms = jax.lax.cond(pos == 0, lambda: orders(t // steps_per_epoch), lambda: perms)
                idx = jax.lax.dynamic_slice_in_dim(perms, pos * batch_size, batch_size, axis=1)
                batches = {"image": x[idx], "label": y[idx]}
            states, metrics = sweep_step(states, batches, l2_values)
            sums = {name: sums[name] + metrics[name] for name in TRAIN_METRICS}
            return states, perms, sums, finite & jnp.isfinite(metrics["loss"])

        perms = orders(start // steps_per_epoch) if batch_size < n else jnp.zeros((k, 1), jnp.int32)
        sums = {name: jnp.zeros(k, jnp.float32) for name in TRAIN_METRICS}
        carry = jax.lax.fori_loop(start, stop, body, (states, perms, sums, jnp.ones(k, bool)))
        states, _, sums, finite = carry
        count = (stop - start).astype(jnp.float32)
        return states, {name: value / count for name, value in sums.items()}, finite

    def evaluate(states, xv, yv):
        def build(member_model):
            eval_step = training.make_eval_step(member_model, loss=loss)
            return lambda state: eval_step(state, {"image": xv, "label": yv})

        return grouped_vmap(groups, build, states)

    return _Programs(
        init=jax.jit(init, static_argnames="input_shape"),
        chunk=jax.jit(chunk, donate_argnums=0),
        evaluate=jax.jit(evaluate),
    )


_MAX_CACHED = 64
_programs_cache: collections.OrderedDict = collections.OrderedDict()


def _get_programs(model, optimizer, opt_hp, optimizer_kwargs, model_hp, *, loss, penalty, batch_size) -> _Programs:
    """The programs of this configuration, built (and compiled) once per process.

    As ``fit``'s ``training._loop.get_runner``, the key holds the model and
    optimizer *objects* (by identity) with the static configuration: ``loss``,
    ``penalty``, ``batch_size``, the concrete model hyperparameters (they pick
    the groups' models), and for an optimizer given by name or factory its
    ``optimizer_kwargs`` and the names of the swept hyperparameters. The swept
    values themselves are data (written into the optimizer state), so a call
    with other seeds or hyperparameters reuses the programs; array shapes
    (``K``, ``N``, the input shape) are handled by ``jax.jit`` itself. An
    unhashable key part (e.g. an array in ``optimizer_kwargs``) disables the cache.
    """
    is_transformation = hasattr(optimizer, "init") and hasattr(optimizer, "update")

    def build() -> _Programs:
        tx = _resolve_optimizer(optimizer, opt_hp, optimizer_kwargs)
        return _build_programs(model, tx, model_hp, loss=loss, penalty=penalty, batch_size=batch_size)

    try:
        key = (
            model,
            optimizer,
            None if is_transformation else (tuple(sorted(optimizer_kwargs.items())), tuple(sorted(opt_hp))),
            tuple((name, tuple(np.asarray(values).tolist())) for name, values in sorted(model_hp.items())),
            loss,
            penalty,
            batch_size,
        )
        hash(key)
    except TypeError:
        return build()
    if key in _programs_cache:
        _programs_cache.move_to_end(key)
        return _programs_cache[key]
    programs = _programs_cache[key] = build()
    if len(_programs_cache) > _MAX_CACHED:
        _programs_cache.popitem(last=False)
    return programs


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
) -> SweepResult:
    """Trains ``K = len(seeds)`` models at once, one compiled program for all.

    Member ``k`` is the run ``jax231.training.fit(model_k, optimizer_k,
    train=train, seed=seeds[k], batch_size=batch_size, num_steps=num_steps,
    penalty=penalty_k)`` without its guards: the same initial state, the same
    data order (``epoch_permutation`` of the seed's data key), the same dropout
    keys, where ``optimizer_k`` holds ``hyperparams[name][k]``,
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
    _, data_keys = sweep_keys(seeds)
    k = data_keys.shape[0]
    opt_hp = check_sweep_values(hyperparams, k, "hyperparams")
    model_hp = check_sweep_values(model_hyperparams, k, "model_hyperparams")
    l2_values = None if l2 is None else jnp.asarray(check_sweep_values({"l2": l2}, k, "l2")["l2"], jnp.float32)
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1; got {num_steps}.")
    eval_every = num_steps if eval_every is None else eval_every
    if eval_every < 1:
        raise ValueError(f"eval_every must be >= 1 or None; got {eval_every}.")
    x, y = jnp.asarray(train["image"]), jnp.asarray(train["label"], jnp.int32)
    n = x.shape[0]
    if y.shape != (n,):
        raise ValueError(f"train['label'] must have shape ({n},) to match train['image']; got {y.shape}.")
    batch_size = n if batch_size is None else batch_size
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be in [1, {n}] (the training set size) or None; got {batch_size}.")

    programs = _get_programs(
        model, optimizer, opt_hp, optimizer_kwargs or {}, model_hp, loss=loss, penalty=penalty, batch_size=batch_size
    )
    # Model hyperparameters stay concrete (they pick the group's model); the
    # optimizer's are traced, so new values do not recompile.
    states = programs.init(jnp.asarray(seeds), opt_hp, input_shape=tuple(x.shape[1:]))
    if val is not None:
        xv, yv = jnp.asarray(val["image"]), jnp.asarray(val["label"], jnp.int32)
    history: dict[str, list] = {"step": [], "time": []}
    history.update({f"train_{m}" if m in ("loss", "accuracy") else m: [] for m in TRAIN_METRICS})
    if val is not None:
        history.update(val_loss=[], val_accuracy=[])
    finite = np.ones(k, dtype=bool)
    start_time = time.perf_counter()
    done = 0
    while done < num_steps:
        stop = min(done + eval_every, num_steps)
        states, means, ok = programs.chunk(states, jnp.int32(done), jnp.int32(stop), x, y, l2_values, data_keys)
        if done == 0:
            _check_not_scheduled(states, opt_hp)
        done = stop
        finite &= np.asarray(ok)
        for name, value in means.items():
            history[f"train_{name}" if name in ("loss", "accuracy") else name].append(np.asarray(value))
        if val is not None:
            metrics = programs.evaluate(states, xv, yv)
            history["val_loss"].append(np.asarray(metrics["loss"]))
            history["val_accuracy"].append(np.asarray(metrics["accuracy"]))
        history["step"].append(done)
        history["time"].append(time.perf_counter() - start_time)
    stacked = {
        name: np.asarray(values) if name in ("step", "time") else np.stack(values, axis=1)
        for name, values in history.items()
    }
    used = {"seed": np.asarray(seeds), **opt_hp, **model_hp}
    if l2_values is not None:
        used["l2"] = np.asarray(l2_values)
    return SweepResult(state=states, history=stacked, diverged=~finite, hyperparams=used)


__all__ = ["run_sweep"]
