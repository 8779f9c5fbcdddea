"""Sweeps in one program: ``K`` models trained at once under ``jax.vmap``.

Every leaf of a :class:`jax231.training.TrainState` gets a leading axis of size
``K``: member ``k`` has its own parameters (initialised from ``seeds[k]``), its
own dropout key, and its own hyperparameters, which are *values* in the state
rather than constants of the program:

* optimizer hyperparameters (learning rate, momentum, weight decay, ...) live
  in ``opt_state.hyperparams`` (the jax231 optimizers and
  ``optax.inject_hyperparams`` both keep them there) and are overwritten per
  member;
* model hyperparameters (``drop_rate``, ``drop_connect_rate``) are passed as
  traced keyword arguments to a model *factory*, so the model must use them
  arithmetically (``jnp.where``, multiplication), not in Python ``if``;
* an L2 penalty strength (CS231n's ``reg``) is a per-member scalar.

One ``vmap``-ed step then advances all ``K`` runs; the result equals ``K``
separate runs up to float reassociation (XLA may batch the matrix products).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jax231.types import ArrayLike, PyTree

ModelOrFactory = Any  # a Model(init, apply), or a callable ``**model_hyperparams -> Model``


def stack_trees(trees: Sequence[PyTree]) -> PyTree:
    """Stacks matching pytrees leaf by leaf along a new leading axis of size ``len(trees)``."""
    if not trees:
        raise ValueError("trees must be a non-empty sequence; got an empty one.")
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def tree_index(tree: PyTree, k: int) -> PyTree:
    """Member ``k`` of a stacked tree (every leaf indexed at ``[k]``)."""
    return jax.tree_util.tree_map(lambda x: x[k], tree)


def set_hyperparams(opt_state: PyTree, **values: ArrayLike) -> PyTree:
    """Returns ``opt_state`` with ``hyperparams[name] = value`` wherever ``name`` occurs.

    Walks tuples and NamedTuples (so chains work) and replaces entries of every
    ``hyperparams`` dict found, keeping each entry's dtype and shape. Traceable,
    so it can run under ``vmap`` with one value per sweep member.

    Raises:
      ValueError: if a name is in no ``hyperparams`` dict (lists the known names).
    """
    found: set[str] = set()

    def walk(node):
        if hasattr(node, "hyperparams") and isinstance(node.hyperparams, Mapping) and hasattr(node, "_replace"):
            new = dict(node.hyperparams)
            for name, value in values.items():
                if name in new:
                    old = jnp.asarray(new[name])
                    new[name] = jnp.broadcast_to(jnp.asarray(value, dtype=old.dtype), old.shape)
                    found.add(name)
            node = node._replace(hyperparams=new)
        if isinstance(node, tuple):
            children = [walk(child) for child in node]
            return node._make(children) if hasattr(node, "_make") else type(node)(children)
        return node

    new_state = walk(opt_state)
    missing = sorted(set(values) - found)
    if missing:
        raise ValueError(
            f"hyperparams {missing} are not in the optimizer state; it holds {sorted(_hyperparam_names(opt_state))} "
            "(build the optimizer with jax231.optimizers or optax.inject_hyperparams)."
        )
    return new_state


def _hyperparam_names(opt_state: PyTree) -> set[str]:
    names: set[str] = set()
    if hasattr(opt_state, "hyperparams") and isinstance(opt_state.hyperparams, Mapping):
        names |= set(opt_state.hyperparams)
    if isinstance(opt_state, tuple):
        for child in opt_state:
            names |= _hyperparam_names(child)
    return names


def _is_model(model: Any) -> bool:
    return hasattr(model, "init") and hasattr(model, "apply")


def _check_sweep_values(values: Mapping[str, ArrayLike] | None, k: int, name: str) -> dict[str, jax.Array]:
    out = {}
    for key, value in (values or {}).items():
        arr = jnp.asarray(value)
        if arr.shape != (k,):
            raise ValueError(f"{name}[{key!r}] must have shape ({k},) (one value per seed); got {arr.shape}.")
        out[key] = arr
    return out


def _member_parts(model: ModelOrFactory, penalty, model_hp, l2):
    """The model and penalty of one member, built from its (traced) hyperparameters."""
    if _is_model(model):
        member_model = model
    else:
        try:
            member_model = model(**model_hp)
        except (jax.errors.ConcretizationTypeError, jax.errors.TracerBoolConversionError) as err:
            raise ValueError(
                f"model factory must accept traced values for {sorted(model_hp)} (use them arithmetically, "
                f"not in Python control flow) to sweep them under vmap: {err}"
            ) from err
    if l2 is None:
        return member_model, penalty

    from jax231 import losses  # deferred: only sweeps over L2 strength need it

    def member_penalty(params):
        extra = losses.l2_penalty(params, strength=l2)
        return extra if penalty is None else penalty(params) + extra

    return member_model, member_penalty


def init_sweep(
    model: ModelOrFactory,
    optimizer: Any,
    *,
    seeds: ArrayLike,
    input_shape: Sequence[int],
    hyperparams: Mapping[str, ArrayLike] | None = None,
    model_hyperparams: Mapping[str, ArrayLike] | None = None,
):
    """``K`` train states stacked along a leading axis, one per seed.

    Member ``k`` is ``create_train_state(model_k, optimizer, rng=jax.random.key(seeds[k]),
    input_shape=input_shape)`` with ``hyperparams[name][k]`` written into its
    optimizer state.

    Args:
      model: a ``Model``, or a factory called with ``model_hyperparams`` as
        keyword arguments (one traced scalar each).
      optimizer: a ``GradientTransformation`` whose state holds ``hyperparams``.
      seeds: ``(K,)`` integer seeds.
      input_shape: one example's shape (no batch axis).
      hyperparams: optimizer hyperparameters, each of shape ``(K,)``.
      model_hyperparams: model factory arguments, each of shape ``(K,)``.

    Returns:
      A ``TrainState`` whose every leaf has a leading axis of size ``K``.
    """
    from jax231 import training

    seeds = jnp.asarray(seeds)
    if seeds.ndim != 1 or not jnp.issubdtype(seeds.dtype, jnp.integer):
        raise ValueError(f"seeds must be a 1-D integer array; got dtype {seeds.dtype} and shape {seeds.shape}.")
    k = seeds.shape[0]
    opt_hp = _check_sweep_values(hyperparams, k, "hyperparams")
    model_hp = _check_sweep_values(model_hyperparams, k, "model_hyperparams")

    def one(seed, opt_values, model_values):
        member_model, _ = _member_parts(model, None, model_values, None)
        state = training.create_train_state(
            member_model, optimizer, rng=jax.random.key(seed), input_shape=tuple(input_shape)
        )
        return state._replace(opt_state=set_hyperparams(state.opt_state, **opt_values))

    return jax.vmap(one)(seeds, opt_hp, model_hp)


def make_sweep_step(
    model: ModelOrFactory,
    optimizer: Any,
    *,
    loss: Any = "softmax",
    penalty: Callable[[PyTree], jax.Array] | None = None,
    shared_batch: bool = True,
) -> Callable:
    """``jax.vmap`` of :func:`jax231.training.make_train_step` over the ``K`` members.

    Returns:
      ``sweep_step(states, batch, model_hyperparams=None, l2=None) -> (states, metrics)``,
      pure and un-jitted. ``states`` come from :func:`init_sweep`; ``batch`` is
      one batch shared by all members (``shared_batch=True``) or a stack of
      ``K`` batches; ``model_hyperparams`` (dict of ``(K,)`` arrays) are passed to
      the model factory; ``l2`` (``(K,)``) adds
      ``jax231.losses.l2_penalty(params, strength=l2[k])``. Every metric has a
      leading axis of size ``K``.
    """
    from jax231 import training

    def member_step(state, batch, model_values, l2):
        member_model, member_penalty = _member_parts(model, penalty, model_values, l2)
        step = training.make_train_step(member_model, optimizer, loss=loss, penalty=member_penalty)
        return step(state, batch)

    batch_axis = None if shared_batch else 0

    def sweep_step(states, batch, model_hyperparams=None, l2=None):
        model_values = dict(model_hyperparams or {})
        return jax.vmap(member_step, in_axes=(0, batch_axis, 0, None if l2 is None else 0))(
            states, batch, model_values, l2
        )

    return sweep_step


class SweepResult(NamedTuple):
    """The outcome of :func:`run_sweep`.

    Attributes:
      state: the final ``TrainState`` of every member (leading axis ``K``).
      history: ``'step'`` and ``'time'`` (seconds since the start) of shape
        ``(E,)`` for the ``E`` evaluations; ``'train_loss'`` and
        ``'train_accuracy'`` (mean over the training batches since the previous
        evaluation) and, with validation data, ``'val_loss'`` and
        ``'val_accuracy'``, all of shape ``(K, E)``.
      diverged: ``(K,)`` booleans, ``True`` where a member's loss became
        non-finite (its later values are meaningless; vmap cannot stop one member).
      hyperparams: what member ``k`` used: ``'seed'`` and every swept value, ``(K,)`` each.
    """

    state: Any
    history: dict[str, np.ndarray]
    diverged: np.ndarray
    hyperparams: dict[str, np.ndarray]
