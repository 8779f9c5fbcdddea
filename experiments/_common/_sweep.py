"""Helpers for experiments that train with :func:`jax231.parallel.run_sweep`.

``run_sweep`` trains ``K`` runs as one vmapped program and cannot stop one member,
so ``fit``'s explosion guard (stop when an update's training loss is non-finite or
exceeds ``explosion_factor`` times the loss of update 0) is applied afterwards from
the history: :func:`initial_losses` gives every member's update-0 loss and
:func:`explosions` flags the members whose loss went bad.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np


def initial_losses(model: Any, optimizer: Any, *, train: Mapping[str, Any], seeds: Any,
                   batch_size: int | None = None, hyperparams: Mapping[str, Any] | None = None,
                   model_hyperparams: Mapping[str, Any] | None = None, l2: Any = None,
                   loss: Any = "softmax", penalty: Callable | None = None) -> np.ndarray:
    """Every member's training loss at update 0 (penalty included), as ``fit`` records it.

    The loss of member ``k``'s initial parameters (``jax231.parallel.init_sweep``)
    on its first minibatch (the first ``batch_size`` indices of
    ``epoch_permutation(data_key, 0, N)``), in training mode with the step-0
    dropout key ``fold_in(rng, 0)``: what the first update of ``run_sweep`` (and of
    ``fit``) computes, without compiling a training step (forward passes only,
    run eagerly member by member). Arguments as for ``run_sweep``.

    Returns:
      ``(K,)`` float64 losses.
    """
    import jax  # pylint: disable=import-outside-toplevel
    import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

    from jax231 import losses, parallel, training  # pylint: disable=import-outside-toplevel

    x, y = jnp.asarray(train["image"]), jnp.asarray(train["label"], jnp.int32)
    n = x.shape[0]
    batch_size = n if batch_size is None else batch_size
    _, data_keys = parallel.sweep_keys(seeds)
    model_hyperparams = dict(model_hyperparams or {})
    states = parallel.init_sweep(model, optimizer, seeds=jnp.asarray(seeds), input_shape=x.shape[1:],
                                 hyperparams=hyperparams, model_hyperparams=model_hyperparams)
    out = []
    for k in range(data_keys.shape[0]):
        state = parallel.tree_index(states, k)
        member = model(**{name: values[k] for name, values in model_hyperparams.items()}) \
            if model_hyperparams else model
        if batch_size < n:
            idx = training.epoch_permutation(data_keys[k], 0, n)[:batch_size]
            batch = {"image": x[idx], "label": y[idx]}
        else:
            batch = {"image": x, "label": y}
        loss_fn = training.make_loss_fn(member, loss=loss, penalty=penalty)
        value, _ = loss_fn(state.params, state.model_state, batch, jax.random.fold_in(state.rng, 0), train=True)
        if l2 is not None:
            value = value + losses.l2_penalty(state.params, strength=jnp.float32(np.asarray(l2)[k]))
        out.append(float(value))
    return np.asarray(out, np.float64)


def explosions(train_loss: np.ndarray, initial: np.ndarray, diverged: np.ndarray,
               factor: float | None) -> np.ndarray:
    """Index of each member's first bad evaluation interval (``E`` when none is bad).

    An interval is bad when its mean training loss is not finite or exceeds
    ``factor * initial`` (``factor`` None: only non-finite losses count). A mean
    above the threshold implies an update above it, so every interval flagged here
    would have stopped ``fit``; a brief spike averaged away inside an interval is
    not seen (``fit`` checks every update).

    Args:
      train_loss: ``(K, E)`` mean training losses per evaluation interval.
      initial: ``(K,)`` update-0 losses (:func:`initial_losses`).
      diverged: ``(K,)`` ``run_sweep``'s non-finite flags.
      factor: ``fit``'s ``explosion_factor``.

    Returns:
      ``(K,)`` integers in ``[0, E]``.
    """
    train_loss = np.asarray(train_loss, np.float64)
    bad = ~np.isfinite(train_loss)
    if factor is not None:
        with np.errstate(invalid="ignore"):
            bad |= train_loss > factor * np.asarray(initial, np.float64)[:, None]
    num_evals = train_loss.shape[1]
    first = np.where(bad.any(axis=1), bad.argmax(axis=1), num_evals)
    # A non-finite update makes its interval's mean non-finite; the flag is a safeguard.
    return np.where(np.asarray(diverged) & (first == num_evals), num_evals - 1, first)
