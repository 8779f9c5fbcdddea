"""``run_sweep``: the whole training loop of ``K`` vmapped runs, on device.

Between evaluations the loop is one compiled ``lax.scan`` over steps, each step
drawing its minibatch from arrays held on the device; evaluations are one
vmapped forward pass over the validation set.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jax231.parallel._sweep import (
    ModelOrFactory,
    SweepResult,
    _check_sweep_values,
    _member_parts,
    init_sweep,
    make_sweep_step,
)
from jax231.types import ArrayLike, PyTree


def _resolve_optimizer(optimizer: Any, hyperparams: Mapping[str, jax.Array], kwargs: Mapping[str, Any]):
    """A GradientTransformation from a name, a factory or a ready transformation."""
    if hasattr(optimizer, "init") and hasattr(optimizer, "update"):
        return optimizer
    # Build with member 0's values; every member's own values are then written
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


def sweep_batch_indices(
    step: jax.Array, key: jax.Array, *, num_examples: int, batch_size: int
) -> jax.Array:
    """The example indices of minibatch ``step``: epoch-wise shuffling without replacement.

    Epoch ``e = step // (n // batch_size)`` uses the permutation
    ``jax.random.permutation(jax.random.fold_in(key, e), n)``; step ``i`` of the
    epoch takes its ``i``-th block of ``batch_size`` (the last ``n mod
    batch_size`` examples of a permutation are skipped that epoch).
    """
    steps_per_epoch = num_examples // batch_size
    epoch, i = jnp.divmod(step, steps_per_epoch)
    perm = jax.random.permutation(jax.random.fold_in(key, epoch), num_examples)
    return jax.lax.dynamic_slice_in_dim(perm, i * batch_size, batch_size)


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
    data_seed: int = 0,
    shuffle_per_seed: bool = False,
    optimizer_kwargs: Mapping[str, Any] | None = None,
) -> SweepResult:
    """Trains ``K = len(seeds)`` models at once, one compiled program for all.

    Member ``k`` is the run ``create_train_state(model_k, optimizer_k,
    rng=jax.random.key(seeds[k]))`` followed by ``num_steps`` train steps of
    :func:`jax231.training.make_train_step` on the minibatches of
    :func:`sweep_batch_indices`, where ``optimizer_k`` has
    ``hyperparams[name][k]``, ``model_k = model(**{n: model_hyperparams[n][k]})``
    and the loss carries ``l2[k] * 0.5 * ||W||^2`` (as ``jax231.losses.l2_penalty``
    defines it). The members differ only by these values: the data order is
    shared (``jax.random.key(data_seed)``) unless ``shuffle_per_seed``.

    Args:
      model: a ``Model``, or a factory such as
        ``functools.partial(jax231.models.get, 'mlp', hidden_sizes=(100, 100), num_classes=10)``
        when sweeping ``model_hyperparams``.
      optimizer: a ``jax231.optimizers`` name (built with ``optimizer_kwargs``
        and member 0's ``hyperparams``), a factory taking those keyword
        arguments, or a ``GradientTransformation`` whose state has ``hyperparams``.
      train: ``{'image': (N, ...), 'label': (N,)}`` arrays (moved to the device once).
      seeds: ``(K,)`` integer seeds (parameters and dropout keys).
      num_steps: optimizer steps per member.
      val: optional validation arrays, evaluated every ``eval_every`` steps.
      hyperparams: optimizer hyperparameters to sweep, ``(K,)`` each (e.g.
        ``learning_rate``, ``momentum``, ``weight_decay`` of ``adamw``).
      model_hyperparams: model factory arguments to sweep, ``(K,)`` each (e.g. ``drop_rate``).
      l2: ``(K,)`` L2 penalty strengths to sweep.
      batch_size: minibatch size; ``None`` for full-batch steps.
      eval_every: steps between evaluations; ``None`` evaluates once at the end.
      loss: as in :func:`jax231.training.make_loss_fn`.
      penalty: a fixed penalty added for every member.
      data_seed: seed of the shared data order.
      shuffle_per_seed: give member ``k`` its own order, keyed by ``fold_in(key(data_seed), seeds[k])``.
      optimizer_kwargs: static arguments of the optimizer factory.

    Returns:
      A :class:`SweepResult`.

    Raises:
      ValueError: on swept values whose shape is not ``(K,)``, unknown
        hyperparameter names, a ``batch_size`` outside ``[1, N]`` or a
        non-positive ``num_steps`` / ``eval_every``.

    Examples:
      >>> result = run_sweep(model, 'momentum', train=data, seeds=jnp.arange(4),
      ...                    hyperparams={'learning_rate': jnp.array([1e-3, 1e-2, 1e-1, 1.0])},
      ...                    num_steps=1000, batch_size=128)  # doctest: +SKIP
      >>> result.history['train_loss'].shape  # (K, evaluations)  # doctest: +SKIP
    """
    from jax231 import training

    seeds = jnp.asarray(seeds)
    if seeds.ndim != 1 or seeds.shape[0] < 1:
        raise ValueError(f"seeds must be a non-empty 1-D array of integers; got shape {seeds.shape}.")
    k = seeds.shape[0]
    opt_hp = _check_sweep_values(hyperparams, k, "hyperparams")
    model_hp = _check_sweep_values(model_hyperparams, k, "model_hyperparams")
    l2_values = None if l2 is None else _check_sweep_values({"l2": l2}, k, "l2")["l2"]
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1; got {num_steps}.")
    eval_every = num_steps if eval_every is None else eval_every
    if eval_every < 1:
        raise ValueError(f"eval_every must be >= 1 or None; got {eval_every}.")
    x, y = jnp.asarray(train["image"]), jnp.asarray(train["label"])
    n = x.shape[0]
    if y.shape != (n,):
        raise ValueError(f"train['label'] must have shape ({n},) to match train['image']; got {y.shape}.")
    full_batch = batch_size is None
    if not full_batch and not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be in [1, {n}] (the training set size) or None; got {batch_size}.")

    tx = _resolve_optimizer(optimizer, opt_hp, optimizer_kwargs or {})
    states = jax.jit(
        functools.partial(init_sweep, model, tx, input_shape=x.shape[1:]),
    )(seeds=seeds, hyperparams=opt_hp, model_hyperparams=model_hp)
    data_key = jax.random.key(data_seed)
    data_keys = jax.vmap(lambda s: jax.random.fold_in(data_key, s))(seeds) if shuffle_per_seed else None
    sweep_step = make_sweep_step(model, tx, loss=loss, penalty=penalty, shared_batch=not shuffle_per_seed)

    def batch_for(step, x, y):
        if full_batch:
            return {"image": x, "label": y}
        pick = functools.partial(sweep_batch_indices, step, num_examples=n, batch_size=batch_size)
        idx = jax.vmap(pick)(data_keys) if shuffle_per_seed else pick(data_key)
        return {"image": x[idx], "label": y[idx]}

    # One program for every chunk length: a fori_loop with traced bounds, so a
    # last chunk shorter than eval_every does not compile a second time.
    @functools.partial(jax.jit, donate_argnums=0)
    def run_chunk(states, start, stop, x, y, model_hp, l2_values):
        def body(step, carry):
            states, loss_sum, acc_sum, finite = carry
            states, metrics = sweep_step(states, batch_for(step, x, y), model_hp, l2_values)
            finite = finite & jnp.isfinite(metrics["loss"])
            return states, loss_sum + metrics["loss"], acc_sum + metrics["accuracy"], finite

        zeros = jnp.zeros(k, jnp.float32)
        carry = (states, zeros, zeros, jnp.ones(k, bool))
        states, loss_sum, acc_sum, finite = jax.lax.fori_loop(start, stop, body, carry)
        count = (stop - start).astype(jnp.float32)
        return states, loss_sum / count, acc_sum / count, finite

    @jax.jit
    def evaluate(states, xv, yv, model_hp):
        def one(state, model_values):
            member_model, _ = _member_parts(model, None, model_values, None)
            loss_fn = training.make_loss_fn(member_model, loss=loss)
            value, (logits, _) = loss_fn(
                state.params, state.model_state, {"image": xv, "label": yv}, state.rng, train=False
            )
            return value, jnp.mean(jnp.argmax(logits, axis=-1) == yv)

        return jax.vmap(one)(states, model_hp)

    if val is not None:
        xv, yv = jnp.asarray(val["image"]), jnp.asarray(val["label"])
    history: dict[str, list] = {"step": [], "time": [], "train_loss": [], "train_accuracy": []}
    if val is not None:
        history.update(val_loss=[], val_accuracy=[])
    finite = np.ones(k, dtype=bool)
    start_time = time.perf_counter()
    done = 0
    while done < num_steps:
        length = min(eval_every, num_steps - done)
        states, train_loss, train_acc, ok = run_chunk(
            states, jnp.int32(done), jnp.int32(done + length), x, y, model_hp, l2_values
        )
        done += length
        finite &= np.asarray(ok)
        history["train_loss"].append(np.asarray(train_loss))
        history["train_accuracy"].append(np.asarray(train_acc))
        if val is not None:
            val_loss, val_acc = evaluate(states, xv, yv, model_hp)
            history["val_loss"].append(np.asarray(val_loss))
            history["val_accuracy"].append(np.asarray(val_acc))
        history["step"].append(done)
        history["time"].append(time.perf_counter() - start_time)
    stacked = {
        name: np.asarray(values) if name in ("step", "time") else np.stack(values, axis=1)
        for name, values in history.items()
    }
    used = {"seed": np.asarray(seeds)}
    used.update({name: np.asarray(v) for name, v in {**opt_hp, **model_hp}.items()})
    if l2_values is not None:
        used["l2"] = np.asarray(l2_values)
    return SweepResult(state=states, history=stacked, diverged=~finite, hyperparams=used)


__all__ = ["run_sweep", "sweep_batch_indices"]
