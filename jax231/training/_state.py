"""The training state: everything a train step reads and writes."""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from jax231.types import Array, ModelState, OptState, Params, PRNGKey


class TrainState(NamedTuple):
    """All the arrays of a training run, as one pytree.

    A ``TrainState`` is a plain pytree, so it can be jitted, donated, vmapped over
    seeds or hyperparameters, replicated for ``pmap`` and checkpointed as a whole.

    Attributes:
      params: the model's trainable parameters (nested dicts of arrays).
      model_state: non-trainable model state, e.g. BatchNorm running statistics.
      opt_state: the optimizer's state (``optimizer.init(params)``).
      step: int32 scalar, the number of updates applied so far.
      rng: the run's PRNG key. It is never split in place: the dropout key of
        update ``t`` is ``jax.random.fold_in(rng, t)``, so the same seed gives
        the same numbers whatever the chunking, resumption or jitting.
    """

    params: Params
    model_state: ModelState
    opt_state: OptState
    step: Array
    rng: PRNGKey


def create_train_state(
    model: Any,
    optimizer: Any,
    *,
    rng: PRNGKey,
    input_shape: Sequence[int] | Mapping[str, Sequence[int]],
) -> TrainState:
    """Initialises a model and its optimizer into a :class:`TrainState`.

    The key is split in two: ``init_key, train_key = jax.random.split(rng)``;
    ``init_key`` initialises the parameters and ``train_key`` becomes
    ``TrainState.rng`` (the source of dropout keys).

    Args:
      model: a ``Model(init, apply)`` pair: ``model.init(rng, input_shape) ->
        (params, model_state)``.
      optimizer: a ``GradientTransformation(init, update)`` (jax231 or optax).
      rng: a PRNG key (``jax.random.key`` or ``jax.random.PRNGKey``).
      input_shape: the shape of one example, without the batch axis, e.g.
        ``(40, 1)`` for MNIST-1D; a dict of such shapes for a model whose input
        is a dict of arrays (``fit`` with pytree ``'image'``, e.g. a captioner
        reading images and teacher-forced tokens).

    Returns:
      A ``TrainState`` with ``step == 0``.

    Raises:
      ValueError: if ``input_shape`` is not a sequence of positive ints.
    """
    shapes = dict(input_shape) if isinstance(input_shape, Mapping) else {"": input_shape}
    for name, shape in shapes.items():
        if not tuple(shape) or not all(isinstance(d, int) and d > 0 for d in shape):
            raise ValueError(
                f"input_shape{f'[{name!r}]' if name else ''}: expected a non-empty tuple of positive ints "
                f"(one example, no batch axis), got {tuple(shape)!r}"
            )
    input_shape = {k: tuple(v) for k, v in shapes.items()} if isinstance(input_shape, Mapping) else tuple(input_shape)
    init_key, train_key = jax.random.split(rng)
    params, model_state = model.init(init_key, input_shape)
    opt_state = optimizer.init(params)
    return TrainState(
        params=params,
        model_state=model_state,
        opt_state=opt_state,
        step=jnp.zeros((), jnp.int32),
        rng=train_key,
    )
