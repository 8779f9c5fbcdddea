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

from typing import Callable, Mapping, NamedTuple, Sequence, Union, cast

import jax
import jax.numpy as jnp
import numpy as np

from jax231 import losses, optimizers, training
from jax231.training import TrainState
from jax231.types import Array, ArrayLike, GradientTransformation, Model, Params, PyTree

ModelOrFactory = Union[Model, Callable[..., Model]]
"""A ``Model(init, apply)``, or a factory ``**model_hyperparams -> Model``."""

LossName = Union[str, Callable[..., Array]]
"""A loss of :func:`jax231.training.make_loss_fn`: ``'softmax'``, ``'svm'`` or a per-example callable."""

Batch = Mapping[str, Array]
"""``{'image': (K, B, ...), 'label': (K, B)}``: one minibatch per member."""

Metrics = dict[str, Array]
"""Step metrics, ``(K,)`` each."""

SweepStep = Callable[..., tuple[TrainState, Metrics]]
"""``sweep_step(states, batches, l2=None) -> (states, metrics)``."""


def stack_trees(trees: Sequence[PyTree]) -> PyTree:
    """Stacks matching pytrees leaf by leaf along a new leading axis of size ``len(trees)``."""
    if not trees:
        raise ValueError("trees must be a non-empty sequence; got an empty one.")
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def tree_index(tree: PyTree, k: int) -> PyTree:
    """Member ``k`` of a stacked tree (every leaf indexed at ``[k]``)."""
    return jax.tree_util.tree_map(lambda x: x[k], tree)


def _is_model(model: object) -> bool:
    return hasattr(model, "init") and hasattr(model, "apply")


def check_sweep_values(values: Mapping[str, ArrayLike] | None, k: int, name: str) -> dict[str, ArrayLike]:
    """Checks that every swept value is a ``(K,)`` array (one entry per member).

    Concrete values come back as NumPy arrays, traced ones unchanged.
    """
    out: dict[str, ArrayLike] = {}
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

    model: Model
    index: np.ndarray | None  # type: ignore[assignment]  # (shadows tuple.index, the public name since v1)


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
        return [MemberGroup(cast(Model, model), None)]
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


def _contiguous(index: np.ndarray) -> bool:
    return len(index) > 0 and bool(np.all(np.diff(index) == 1))


def grouped_vmap(groups: Sequence[MemberGroup], build: Callable[[Model], Callable], *stacked: PyTree) -> PyTree:
    """``vmap(build(group.model))`` over each group's members, reassembled in member order.

    Every argument in ``stacked`` has a leading member axis ``K``. Groups whose
    members are contiguous and in order (the layout of
    :func:`jax231.parallel._members.plan_members`) are sliced and concatenated,
    without a gather of the states.
    """
    if len(groups) == 1 and groups[0].index is None:
        return jax.vmap(build(groups[0].model))(*stacked)
    index = [np.asarray(g.index) for g in groups]
    order = np.concatenate(index)
    in_order = bool(np.array_equal(order, np.arange(len(order)))) and all(_contiguous(i) for i in index)
    outs = []
    for group, i in zip(groups, index):
        if in_order:
            part = [jax.tree_util.tree_map(lambda x, a=int(i[0]), b=int(i[-1]) + 1: x[a:b], arg) for arg in stacked]
        else:
            part = [jax.tree_util.tree_map(lambda x, i=i: x[i], arg) for arg in stacked]
        outs.append(jax.vmap(build(group.model))(*part))
    if in_order:
        return jax.tree_util.tree_map(lambda *parts: jnp.concatenate(parts), *outs)
    inverse = np.argsort(order)
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
    optimizer: GradientTransformation,
    *,
    seeds: ArrayLike,
    input_shape: Sequence[int],
    hyperparams: Mapping[str, ArrayLike] | None = None,
    model_hyperparams: Mapping[str, ArrayLike] | None = None,
) -> TrainState:
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
    return init_groups(groups, optimizer, init_keys=init_keys, input_shape=input_shape, hyperparams=opt_hp)


def init_groups(
    groups: Sequence[MemberGroup],
    optimizer: GradientTransformation,
    *,
    init_keys: Array,
    input_shape: Sequence[int],
    hyperparams: Mapping[str, Array],
) -> TrainState:
    """:func:`init_sweep` for members already grouped (``init_keys`` and ``hyperparams`` ``(K,)``)."""
    models = init_models(groups, init_keys=init_keys, input_shape=input_shape)
    return init_optimizers(groups, optimizer, models, hyperparams=hyperparams)


class ModelInit(NamedTuple):
    """The optimizer-free half of ``K`` stacked :class:`TrainState` s (leading axis ``K``).

    Attributes:
      params: every member's parameters.
      model_state: every member's model state.
      rng: every member's ``TrainState.rng``.
    """

    params: Params
    model_state: PyTree
    rng: Array


def init_models(groups: Sequence[MemberGroup], *, init_keys: Array, input_shape: Sequence[int]) -> ModelInit:
    """The model half of :func:`init_groups`: ``create_train_state``'s key split and ``model.init``.

    It does not depend on the optimizer, so ``run_sweep`` compiles it once per
    model (a model's init is most of the compile time of a small sweep: the
    threefry hash of every weight's normal draw, ~1.9 of ~5 CPU-s for the
    MNIST-1D MLP on the shared 2-core CPU) and every optimizer of a comparison
    shares it. Measured: ``python -m experiments.compare_optimizers.main --notune
    --sweep`` 94.9 CPU-s (user + sys, 5 min 2 s wall at load 20-36) against 121.3
    CPU-s (7 min 16 s) for the same job's loop path (``--notune``: one ``fit`` per
    seed), same results; before, the sweep path cost ~19% more than the loop.
    """
    shape = tuple(input_shape)

    def build(member_model: Model) -> Callable[[Array], ModelInit]:
        def one(key: Array) -> ModelInit:
            init_key, train_key = jax.random.split(key)  # as training.create_train_state
            params, model_state = member_model.init(init_key, shape)
            return ModelInit(params, model_state, train_key)

        return one

    return grouped_vmap(groups, build, init_keys)


def init_optimizers(
    groups: Sequence[MemberGroup],
    optimizer: GradientTransformation,
    models: ModelInit,
    *,
    hyperparams: Mapping[str, Array],
) -> TrainState:
    """The optimizer half of :func:`init_groups`: ``optimizer.init`` with member ``k``'s ``hyperparams[name][k]``."""

    def build(member_model: Model) -> Callable[[ModelInit, Mapping[str, Array]], TrainState]:
        def one(model_init: ModelInit, opt_values: Mapping[str, Array]) -> TrainState:
            opt_state = optimizers.set_hyperparams(optimizer.init(model_init.params), **opt_values)
            return TrainState(
                params=model_init.params,
                model_state=model_init.model_state,
                opt_state=opt_state,
                step=jnp.zeros((), jnp.int32),
                rng=model_init.rng,
            )

        return one

    return grouped_vmap(groups, build, models, dict(hyperparams))


def make_sweep_step(
    model: ModelOrFactory,
    optimizer: GradientTransformation,
    *,
    loss: LossName = "softmax",
    penalty: Callable[[Params], Array] | None = None,
    model_hyperparams: Mapping[str, ArrayLike] | None = None,
) -> SweepStep:
    """:func:`jax231.training.make_train_step` for ``K`` members at once.

    Returns:
      ``sweep_step(states, batches, l2=None) -> (states, metrics)``, pure and
      un-jitted. ``states`` come from :func:`init_sweep`; ``batches`` has a
      leading member axis (``{'image': (K, B, ...), 'label': (K, B)}``); ``l2``
      (``(K,)``, optional) adds ``jax231.losses.l2_penalty(params,
      strength=l2[k])`` to member ``k``'s loss. Every metric has shape ``(K,)``.
      Members are grouped by ``model_hyperparams`` (see :func:`member_groups`).
    """
    return groups_step(member_groups(model, model_hyperparams), optimizer, loss=loss, penalty=penalty)


def groups_step(
    groups: Sequence[MemberGroup],
    optimizer: GradientTransformation,
    *,
    loss: LossName = "softmax",
    penalty: Callable[[Params], Array] | None = None,
) -> SweepStep:
    """:func:`make_sweep_step` for members already grouped."""

    def sweep_step(states: TrainState, batches: Batch, l2: Array | None = None) -> tuple[TrainState, Metrics]:
        def build(member_model: Model) -> Callable[..., tuple[TrainState, Metrics]]:
            def one(state: TrainState, batch: Batch, strength: Array | None) -> tuple[TrainState, Metrics]:
                member_penalty = penalty
                if strength is not None:

                    def member_penalty(params: Params) -> Array:
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

    state: TrainState
    history: dict[str, np.ndarray]
    diverged: np.ndarray
    hyperparams: dict[str, np.ndarray]
    status: np.ndarray | None = None
    initial_loss: np.ndarray | None = None
    first_bad_step: np.ndarray | None = None
    messages: list[str] | None = None
