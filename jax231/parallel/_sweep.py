"""Sweeps in one program: ``K`` models trained at once under ``jax.vmap``.

Every leaf of a :class:`jax231.training.TrainState` gets a leading axis of size
``K``: member ``k`` has its own parameters (initialised from ``seeds[k]``), its
own dropout key, and its own hyperparameters, which are *values* in the state
rather than constants of the program:

* optimizer hyperparameters (learning rate, momentum, weight decay, ...) live
  in ``opt_state.hyperparams`` (the jax231 optimizers and
  ``optax.inject_hyperparams`` both keep them there) and are overwritten per
  member;
* model hyperparameters (``drop_rate``, ``drop_connect_rate``) are arguments
  of a model *factory*; models branch on them in Python, so members are
  grouped by value and each group is vmapped separately inside the same
  compiled step (one group per distinct value);
* an L2 penalty strength (CS231n's ``reg``) is a per-member scalar.

One ``vmap``-ed step then advances all ``K`` runs; the result equals ``K``
separate runs up to float reassociation (XLA may batch the matrix products).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jax231 import losses, optimizers, training
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


def _is_model(model: Any) -> bool:
    return hasattr(model, "init") and hasattr(model, "apply")


def check_sweep_values(values: Mapping[str, ArrayLike] | None, k: int, name: str) -> dict[str, Any]:
    """Checks that every swept value is a ``(K,)`` array (one entry per member).

    Concrete values come back as NumPy arrays, traced ones unchanged.
    """
    out = {}
    for key, value in (values or {}).items():
        shape = tuple(np.shape(value))
        if shape != (k,):
            raise ValueError(f"{name}[{key!r}] must have shape ({k},) (one value per seed); got {shape}.")
        out[key] = value if isinstance(value, jax.core.Tracer) else np.asarray(value)
    return out


class MemberGroup(NamedTuple):
    """Members that share one model configuration.

    Attributes:
      model: the ``Model`` of these members.
      index: their positions in the sweep, or ``None`` for "all members, in order".
    """

    model: Any
    index: np.ndarray | None


def member_groups(model: ModelOrFactory, model_hyperparams: Mapping[str, ArrayLike] | None) -> list[MemberGroup]:
    """Groups the sweep members by their (concrete) model hyperparameters.

    Model factories check and branch on their configuration in Python (a
    ``drop_rate`` of 0 leaves the random mask out of the program), so the
    values are not traced: every distinct combination builds one ``Model``, and
    each group is vmapped separately inside the same compiled step.
    """
    if not model_hyperparams:
        if not _is_model(model):
            raise ValueError("model must be a Model(init, apply) unless model_hyperparams are swept; got a factory.")
        return [MemberGroup(model, None)]
    if _is_model(model) or not callable(model):
        raise ValueError(
            "model must be a factory (e.g. functools.partial(jax231.models.get, 'mlp', ...)) to sweep "
            f"model_hyperparams {sorted(model_hyperparams)}; got {type(model).__name__}."
        )
    names = sorted(model_hyperparams)
    columns = [np.asarray(model_hyperparams[n]).tolist() for n in names]
    configs: dict[tuple, list[int]] = {}
    for member, combo in enumerate(zip(*columns)):
        configs.setdefault(tuple(combo), []).append(member)
    if len(configs) == 1:
        return [MemberGroup(model(**dict(zip(names, next(iter(configs))))), None)]
    return [MemberGroup(model(**dict(zip(names, combo))), np.asarray(index)) for combo, index in configs.items()]


def grouped_vmap(groups: Sequence[MemberGroup], build: Callable[[Any], Callable], *stacked: PyTree) -> PyTree:
    """``vmap(build(group.model))`` over each group's members, reassembled in member order.

    Every argument in ``stacked`` has a leading member axis ``K``.
    """
    if len(groups) == 1 and groups[0].index is None:
        return jax.vmap(build(groups[0].model))(*stacked)
    outs, order = [], []
    for group in groups:
        part = [jax.tree_util.tree_map(lambda x, i=group.index: x[i], arg) for arg in stacked]
        outs.append(jax.vmap(build(group.model))(*part))
        order.append(group.index)
    inverse = np.argsort(np.concatenate(order))
    return jax.tree_util.tree_map(lambda *parts: jnp.concatenate(parts)[inverse], *outs)


def sweep_keys(seeds: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """``(init_keys, data_keys)``: ``jax.random.split(jax.random.PRNGKey(seed))`` per member.

    The convention of :func:`jax231.training.fit`, so member ``k`` of a sweep is
    the run ``fit(..., seed=seeds[k])``.
    """
    seeds = jnp.asarray(seeds)
    if seeds.ndim != 1 or seeds.shape[0] < 1 or not jnp.issubdtype(seeds.dtype, jnp.integer):
        raise ValueError(f"seeds must be a non-empty 1-D integer array; got dtype {seeds.dtype}, shape {seeds.shape}.")
    keys = jax.vmap(training.run_keys)(seeds)
    return keys.init, keys.data


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

    Member ``k`` is the state :func:`jax231.training.fit` starts from with
    ``seed=seeds[k]`` (``create_train_state`` with the first half of
    ``split(PRNGKey(seeds[k]))``), with ``hyperparams[name][k]`` written into its
    optimizer state by :func:`jax231.optimizers.set_hyperparams`.

    Args:
      model: a ``Model``, or a factory called with each member's
        ``model_hyperparams`` as keyword arguments.
      optimizer: a ``GradientTransformation`` whose state holds ``hyperparams``.
      seeds: ``(K,)`` integer seeds.
      input_shape: one example's shape (no batch axis).
      hyperparams: optimizer hyperparameters, each of shape ``(K,)``.
      model_hyperparams: model factory arguments, each of shape ``(K,)``.

    Returns:
      A ``TrainState`` whose every leaf has a leading axis of size ``K``.
    """
    init_keys, _ = sweep_keys(seeds)
    k = init_keys.shape[0]
    opt_hp = {n: jnp.asarray(v) for n, v in check_sweep_values(hyperparams, k, "hyperparams").items()}
    groups = member_groups(model, check_sweep_values(model_hyperparams, k, "model_hyperparams"))

    def build(member_model):
        def one(key, opt_values):
            state = training.create_train_state(member_model, optimizer, rng=key, input_shape=tuple(input_shape))
            return state._replace(opt_state=optimizers.set_hyperparams(state.opt_state, **opt_values))

        return one

    return grouped_vmap(groups, build, init_keys, opt_hp)


def make_sweep_step(
    model: ModelOrFactory,
    optimizer: Any,
    *,
    loss: Any = "softmax",
    penalty: Callable[[PyTree], jax.Array] | None = None,
    model_hyperparams: Mapping[str, ArrayLike] | None = None,
) -> Callable:
    """:func:`jax231.training.make_train_step` for ``K`` members at once.

    Returns:
      ``sweep_step(states, batches, l2=None) -> (states, metrics)``, pure and
      un-jitted. ``states`` come from :func:`init_sweep`; ``batches`` has a
      leading member axis (``{'image': (K, B, ...), 'label': (K, B)}``); ``l2``
      (``(K,)``, optional) adds ``jax231.losses.l2_penalty(params,
      strength=l2[k])`` to member ``k``'s loss. Every metric has shape ``(K,)``.
      Members are grouped by ``model_hyperparams`` (see :func:`member_groups`).
    """
    groups = member_groups(model, model_hyperparams)

    def sweep_step(states, batches, l2=None):
        def build(member_model):
            def one(state, batch, strength):
                member_penalty = penalty
                if strength is not None:
                    def member_penalty(params):
                        extra = losses.l2_penalty(params, strength=strength)
                        return extra if penalty is None else penalty(params) + extra

                step = training.make_train_step(member_model, optimizer, loss=loss, penalty=member_penalty)
                return step(state, batch)

            return one

        return grouped_vmap(groups, build, states, batches, l2)

    return sweep_step


class SweepResult(NamedTuple):
    """The outcome of :func:`run_sweep`.

    Attributes:
      state: the final ``TrainState`` of every member (leading axis ``K``).
      history: ``'step'`` and ``'time'`` (seconds since the start) of shape
        ``(E,)`` for the ``E`` evaluations; ``'train_loss'``,
        ``'train_accuracy'``, ``'grad_norm'`` and ``'update_ratio'`` (means over
        the updates since the previous evaluation, as in ``fit``) and, with
        validation data, ``'val_loss'`` and ``'val_accuracy'``, of shape ``(K, E)``.
        A frozen member's entries after its divergence are NaN.
      diverged: ``(K,)`` booleans, ``True`` where the guard fired for a member
        (as ``fit``'s: a non-finite loss, gradient, parameter or update norm, or
        a loss above ``explosion_factor`` times its update-0 loss); that member
        is frozen at its last good state while the others go on.
      hyperparams: what member ``k`` used: ``'seed'`` and every swept value, ``(K,)`` each.
      status: ``(K,)`` ``'completed'`` or ``'diverged'`` (``fit``'s statuses).
      initial_loss: ``(K,)`` every member's training loss at update 0 (penalty included).
      first_bad_step: ``(K,)`` the step of the member's bad update, -1 if none.
      messages: one line per member naming it by its values and, when it
        diverged, the step and the loss (``'member 2 (seed=0, learning_rate=0.2):
        diverged at step 57: ...'``).
    """

    state: Any
    history: dict[str, np.ndarray]
    diverged: np.ndarray
    hyperparams: dict[str, np.ndarray]
    status: np.ndarray | None = None
    initial_loss: np.ndarray | None = None
    first_bad_step: np.ndarray | None = None
    messages: list[str] | None = None
