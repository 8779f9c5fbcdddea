"""``run_sweep``: ``K`` runs trained at once by the vmapped training core.

Between evaluations the members advance in one compiled call of
:func:`jax231.training.run_chunk` with ``members=True`` (the loop ``fit`` runs,
over the vmapped step): the same on-device batch order, ``batch_fn`` hook and
explosion guard as ``fit``, a member whose update is bad frozen at its last
good state while the others go on (recomputed, as ``fit``'s, by replaying the
chunk for that member). An evaluation is one vmapped forward pass over the
validation set.

With ``mesh=`` the members are laid out over the mesh's ``'members'`` axis
(:mod:`jax231.parallel._members`) and every program is a ``shard_map`` manual
over that axis: each device runs the loop over its own members, without
communication (under ``jax.distributed`` each host feeds its own devices);
a ``'batch'`` axis splits every member's minibatch, XLA all-reducing the
gradients.
"""

from __future__ import annotations

import functools
import time
from typing import Callable, Mapping, NamedTuple, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from jax231 import optimizers, training
from jax231.parallel._data_parallel import DEFAULT_AXIS
from jax231.parallel._members import (
    MEMBER_AXIS,
    MemberLayout,
    check_sweep_mesh,
    host_array,
    permute,
    place,
    plan_members,
)
from jax231.parallel._sweep import (
    Batch,
    LossName,
    MemberGroup,
    Metrics,
    ModelOrFactory,
    SweepResult,
    SweepStep,
    check_sweep_values,
    grouped_vmap,
    groups_step,
    init_groups,
    init_models,
    init_optimizers,
    member_groups,
    sweep_keys,
)
from jax231.training import TrainState
from jax231.training import _cache as training_cache
from jax231.training._core import ChunkOut
from jax231.training._options import check_positive
from jax231.types import Array, ArrayLike, GradientTransformation, Model, Params, PRNGKey

TRAIN_METRICS = training.TRAIN_METRICS

OptimizerSpec = Union[str, Callable[..., GradientTransformation], GradientTransformation]
"""A ``jax231.optimizers`` name, a factory of keyword arguments, or a ready transformation."""

BatchFn = Callable[[PRNGKey, Batch], Batch]
EvalFn = Callable[[int, TrainState], Union[Mapping[str, ArrayLike], None]]


def _is_transformation(optimizer: object) -> bool:
    return hasattr(optimizer, "init") and hasattr(optimizer, "update")


def _resolve_optimizer(
    optimizer: OptimizerSpec, hyperparams: Mapping[str, np.ndarray], kwargs: Mapping[str, object]
) -> GradientTransformation:
    """A GradientTransformation from a name, a factory or a ready transformation."""
    if not isinstance(optimizer, str) and _is_transformation(optimizer):
        return optimizer  # type: ignore[return-value]
    # Built with member 0's values; every member's own values are then written
    # into its state by init_groups.
    build_kwargs: dict[str, object] = {name: float(values[0]) for name, values in hyperparams.items()}
    build_kwargs.update(kwargs)
    if isinstance(optimizer, str):
        return optimizers.get(optimizer, **build_kwargs)
    if callable(optimizer):
        return optimizer(**build_kwargs)
    raise ValueError(
        "optimizer: expected a name for jax231.optimizers.get, a factory or a GradientTransformation, "
        f"got {type(optimizer).__name__}"
    )


def _check_not_scheduled(states: TrainState, requested: Mapping[str, np.ndarray]) -> None:
    """Raises if a swept optimizer hyperparameter was replaced by the optimizer's schedule.

    Optimizers re-evaluate a hyperparameter given as a schedule at every step
    (jax231 and ``optax.inject_hyperparams`` alike) and store the result, so a
    value written by :func:`init_groups` survives the first updates only when the
    hyperparameter is a constant.
    """
    held = optimizers.get_hyperparams(states.opt_state)
    for name, values in requested.items():
        value = host_array(held[name])
        if not np.array_equal(value, np.asarray(values, value.dtype)):
            raise ValueError(
                f"hyperparams[{name!r}] cannot be swept: the optimizer computes it from a schedule at every "
                "step, which replaced the swept values; build the optimizer with a constant "
                f"{name} (or sweep seeds only)."
            )


class _Programs(NamedTuple):
    """The jitted programs of one sweep configuration (see :func:`_get_programs`)."""

    init: Callable[..., TrainState]  # (seeds, hyperparams, *, input_shape) -> states
    chunk: Callable[..., ChunkOut]  # training.run_chunk over the member slots
    evaluate: Callable[..., Metrics]  # (states, xv, yv) -> metrics


def _constrain_batch(step: SweepStep, mesh: Mesh) -> SweepStep:
    """``step`` with every member's minibatch split over the mesh's ``'batch'`` axis.

    Inside the member-manual ``shard_map`` the ``'batch'`` axis is left to XLA
    (``jit`` semantics, as :func:`jax231.parallel.make_sharded_train_step`): the
    step keeps its single-device meaning and XLA all-reduces the gradients.
    """
    sharding = jax.sharding.NamedSharding(mesh, PartitionSpec(None, DEFAULT_AXIS))

    def constrained(states: TrainState, batch: Batch, *args: Array | None) -> tuple[TrainState, Metrics]:
        return step(states, jax.lax.with_sharding_constraint(batch, sharding), *args)

    return constrained


def _build_programs(
    groups: tuple[MemberGroup, ...],
    tx: GradientTransformation,
    *,
    loss: LossName,
    penalty: Callable[[Params], Array] | None,
    batch_size: int,
    batch_fn: BatchFn | None,
    mesh: Mesh | None,
    evaluate: Callable[..., Metrics],
    model_init: Callable[..., object] | None = None,
) -> _Programs:
    """Jits the programs of run_sweep; every array (seeds, data, keys, L2 strengths) is an argument.

    Without a mesh ``init`` is two programs: ``model_init`` (jitted
    :func:`init_models` of the seeds, shared by every optimizer of the model,
    see :func:`_get_programs`) then this optimizer's :func:`init_optimizers`.

    Without a mesh they run on the default device over all ``K`` members. With
    one, each is a ``shard_map`` manual over the ``'members'`` axis: a device
    runs the same loop over its own slots (no communication between member
    shards, each stops when its own members are done or frozen), the
    ``'batch'`` axis, if any, left to XLA.
    """
    sweep_step = groups_step(groups, tx, loss=loss, penalty=penalty)
    if mesh is not None and mesh.shape.get(DEFAULT_AXIS, 1) > 1:
        sweep_step = _constrain_batch(sweep_step, mesh)

    def init(seeds: Array, hp: Mapping[str, Array], *, input_shape: tuple[int, ...]) -> TrainState:
        keys = jax.vmap(training.run_keys)(seeds)
        return init_groups(groups, tx, init_keys=keys.init, input_shape=input_shape, hyperparams=hp)

    # The one training loop of jax231 (training.run_chunk), over K members: a
    # member whose update is bad freezes at its last good state, the others go on.
    chunk = functools.partial(training.run_chunk, sweep_step, batch_size=batch_size, batch_fn=batch_fn, members=True)

    if mesh is None:
        assert model_init is not None  # built by _get_programs for the mesh-free programs
        opt_init = jax.jit(functools.partial(init_optimizers, groups, tx))
        return _Programs(init=_TwoStageInit(model_init, opt_init), chunk=jax.jit(chunk), evaluate=evaluate)
    members, replicated = PartitionSpec(MEMBER_AXIS), PartitionSpec()
    data_specs = training.LoopData._make([replicated, replicated, members, members, replicated, members])

    def sharded_init(seeds: Array, hp: Mapping[str, Array], *, input_shape: tuple[int, ...]) -> TrainState:
        return _on_member_shards(functools.partial(init, input_shape=input_shape), mesh, members, members)(seeds, hp)

    return _Programs(
        init=jax.jit(sharded_init, static_argnames="input_shape"),
        chunk=jax.jit(
            _on_member_shards(chunk, mesh, members, members, members, data_specs, replicated, replicated, members)
        ),
        evaluate=evaluate,
    )


class _TwoStageInit:
    """``init(seeds, hp, *, input_shape)`` as the model's program, then the optimizer's."""

    def __init__(self, model_init: Callable[..., object], opt_init: Callable[..., TrainState]) -> None:
        self.model_init = model_init  # jitted init_models of the seeds (shared by the model's optimizers)
        self.opt_init = opt_init  # jitted init_optimizers of this optimizer

    def __call__(self, seeds: Array, hp: Mapping[str, Array], *, input_shape: tuple[int, ...]) -> TrainState:
        return self.opt_init(self.model_init(seeds, input_shape=input_shape), hyperparams=hp)

    def _cache_size(self) -> int:  # jax.jit's, for the tests counting compilations
        return sum(f._cache_size() for f in (self.model_init, self.opt_init))  # type: ignore[attr-defined]


def _on_member_shards(fn: Callable, mesh: Mesh, *in_specs: PartitionSpec | training.LoopData) -> Callable:
    """``fn`` as a ``shard_map`` manual over the ``'members'`` axis, every output split over it."""
    # check_vma=False: the core's loop starts its counters from constants (not
    # member-varying values); nothing here is differentiated across shards.
    return jax.shard_map(
        fn,
        mesh=mesh,
        in_specs=in_specs,
        out_specs=PartitionSpec(MEMBER_AXIS),
        axis_names={MEMBER_AXIS},
        check_vma=False,
    )


def _build_evaluate(
    groups: tuple[MemberGroup, ...], tx: GradientTransformation, *, loss: LossName, mesh: Mesh | None
) -> Callable[..., Metrics]:
    """The jitted vmapped evaluation ``(states, xv, yv) -> metrics`` (at ``tx.eval_params`` when set)."""

    def evaluate(states: TrainState, xv: Array, yv: Array) -> Metrics:
        def build(member_model: Model) -> Callable[[TrainState], Metrics]:
            eval_step = training.make_eval_step(member_model, loss=loss)
            return lambda state: eval_step(training.eval_view(tx, state), {"image": xv, "label": yv})

        return grouped_vmap(groups, build, states)

    if mesh is None:
        return jax.jit(evaluate)
    members, replicated = PartitionSpec(MEMBER_AXIS), PartitionSpec()
    return jax.jit(_on_member_shards(evaluate, mesh, members, replicated, replicated))


def _get_programs(
    model: ModelOrFactory,
    optimizer: OptimizerSpec,
    opt_hp: Mapping[str, np.ndarray],
    optimizer_kwargs: Mapping[str, object],
    model_hp: Mapping[str, np.ndarray],
    layout: MemberLayout,
    *,
    loss: LossName,
    penalty: Callable[[Params], Array] | None,
    batch_size: int,
    batch_fn: BatchFn | None,
    mesh: Mesh | None,
) -> _Programs:
    """The programs of this configuration, from training's one compile cache.

    The key holds the model and optimizer *objects* (by identity, as ``fit``'s)
    with the static configuration: ``loss``, ``penalty``, ``batch_size``,
    ``batch_fn``, the mesh, the concrete model hyperparameters (they pick the
    groups' models) with the layout's per-device group sizes, and for an
    optimizer given by name or factory its ``optimizer_kwargs`` and the names
    of the swept hyperparameters. The swept values themselves are data
    (written into the optimizer state, or the L2 strengths argument), so a
    call with other seeds or hyperparameters reuses the programs; array shapes
    (``K``, ``N``, the input shape) are handled by ``jax.jit`` itself.
    """
    models_key = (
        tuple((name, tuple(np.asarray(values).tolist())) for name, values in sorted(model_hp.items())),
        layout.local_sizes() if len(layout.groups) > 1 else None,
    )
    key: tuple[object, ...]
    try:
        key = (
            "sweep",
            model,
            optimizer,
            None if _is_transformation(optimizer) else (tuple(sorted(optimizer_kwargs.items())), tuple(sorted(opt_hp))),
            models_key,
            loss,
            penalty,
            batch_size,
            batch_fn,
            mesh,
        )
    except TypeError:
        key = (object(),)  # an unhashable part: build anew

    def build() -> _Programs:
        tx = _resolve_optimizer(optimizer, opt_hp, optimizer_kwargs)
        # The evaluation depends on the optimizer only through eval_params: without
        # one, every optimizer of this model shares it (as fit's eval step).
        if getattr(tx, "eval_params", None) is None:
            evaluate = training_cache.cached(
                ("sweep_eval", model, models_key, loss, mesh),
                lambda: _build_evaluate(layout.groups, tx, loss=loss, mesh=mesh),
            )
        else:
            evaluate = _build_evaluate(layout.groups, tx, loss=loss, mesh=mesh)
        # The model half of the init does not depend on the optimizer either.
        model_init = None
        if mesh is None:
            model_init = training_cache.cached(
                ("sweep_model_init", model, models_key),
                lambda: jax.jit(_model_init_fn(layout.groups), static_argnames="input_shape"),
            )
        return _build_programs(
            layout.groups,
            tx,
            loss=loss,
            penalty=penalty,
            batch_size=batch_size,
            batch_fn=batch_fn,
            mesh=mesh,
            evaluate=evaluate,
            model_init=model_init,
        )

    return training_cache.cached(key, build)


def _model_init_fn(groups: tuple[MemberGroup, ...]) -> Callable[..., object]:
    """``(seeds, *, input_shape) -> ModelInit``: :func:`init_models` from each seed's ``run_keys(seed).init``."""

    def model_init(seeds: Array, *, input_shape: tuple[int, ...]) -> object:
        return init_models(groups, init_keys=jax.vmap(training.run_keys)(seeds).init, input_shape=input_shape)

    return model_init


def _member_name(used: Mapping[str, np.ndarray], k: int) -> str:
    """``member 2 (seed=0, learning_rate=0.2)``: a sweep member by its values."""
    values = ", ".join(
        f"{name}={np.asarray(v)[k].item():.4g}" if name != "seed" else f"seed={int(v[k])}" for name, v in used.items()
    )
    return f"member {k} ({values})"


def _member_messages(
    used: Mapping[str, np.ndarray],
    status: np.ndarray,
    bad_step: np.ndarray,
    bad_loss: np.ndarray,
    initial: np.ndarray,
    factor: float | None,
) -> list[str]:
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
        messages.append(
            f"{_member_name(used, k)}: diverged at step {int(bad_step[k])}: training loss "
            f"{loss:.4g} {what}; frozen at its last good state"
        )
    return messages


def run_sweep(
    model: ModelOrFactory,
    optimizer: OptimizerSpec,
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
    loss: LossName = "softmax",
    penalty: Callable[[Params], Array] | None = None,
    optimizer_kwargs: Mapping[str, object] | None = None,
    explosion_factor: float | None = 3.0,
    batch_fn: BatchFn | None = None,
    eval_fn: EvalFn | None = None,
    mesh: Mesh | None = None,
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
      mesh: ``None`` (the default device, all members in one ``vmap``) or a
        :class:`jax.sharding.Mesh` with a ``'members'`` axis and optionally a
        ``'batch'`` axis (:func:`jax231.parallel.make_sweep_mesh`): the members
        are split over the ``'members'`` devices (a ``K`` that is not a multiple
        is padded with copies of members, trained and dropped; see
        :mod:`jax231.parallel._members`) and every member's minibatch over the
        ``'batch'`` devices. A mesh over ``jax.devices()`` after
        :func:`jax231.parallel.initialize_distributed` spans hosts: every
        process calls ``run_sweep`` with the same arguments and feeds its own
        devices; the host-side results (history, status, ...) are the same on
        every process and ``state`` holds global arrays sharded over the
        members (``multihost_utils.process_allgather`` reads them). Members
        equal the single-device sweep's (bitwise on the CPU without a
        ``'batch'`` axis; with one, up to the reassociation of the split
        gradient sums).

    Returns:
      A :class:`SweepResult`.

    Raises:
      ValueError: on swept values whose shape is not ``(K,)``, unknown
        hyperparameter names, a swept hyperparameter driven by a schedule, a
        ``batch_size`` outside ``[1, N]`` (or not a multiple of the mesh's
        ``'batch'`` axis), a mesh without a ``'members'`` axis, or a
        non-positive ``num_steps`` / ``eval_every``.

    Examples:
      >>> result = run_sweep(model, 'momentum', train=data, seeds=jnp.arange(4),
      ...                    hyperparams={'learning_rate': jnp.array([1e-3, 1e-2, 1e-1, 1.0])},
      ...                    num_steps=1000, batch_size=128)  # doctest: +SKIP
      >>> result.history['val_accuracy'].shape  # (K, evaluations)  # doctest: +SKIP
    """
    keys = _check_seeds(seeds)
    k = keys.data.shape[0]
    opt_hp = {n: np.asarray(v) for n, v in check_sweep_values(hyperparams, k, "hyperparams").items()}
    model_hp = {n: np.asarray(v) for n, v in check_sweep_values(model_hyperparams, k, "model_hyperparams").items()}
    l2_values = None if l2 is None else np.asarray(check_sweep_values({"l2": l2}, k, "l2")["l2"], np.float32)
    check_positive("num_steps", num_steps)
    eval_every = num_steps if eval_every is None else eval_every
    check_positive("eval_every", eval_every)
    if explosion_factor is not None and not explosion_factor > 1:
        raise ValueError(f"explosion_factor: expected a float > 1 or None, got {explosion_factor!r}")
    x, y = np.asarray(train["image"]), np.asarray(train["label"], np.int32)
    n = x.shape[0]
    if y.shape != (n,):
        raise ValueError(f"train['label']: expected shape ({n},) to match train['image'], got {y.shape}")
    batch_size = n if batch_size is None else batch_size
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size: expected an int in [1, {n}] (the training set size) or None, got {batch_size}")
    training.check_batch_fn(batch_fn, {"image": x[:batch_size], "label": y[:batch_size]})
    training.check_eval_fn(eval_fn)
    layout = plan_members(member_groups(model, model_hp), k, 1 if mesh is None else check_sweep_mesh(mesh, batch_size))
    programs = _get_programs(
        model,
        optimizer,
        opt_hp,
        optimizer_kwargs or {},
        model_hp,
        layout,
        loss=loss,
        penalty=penalty,
        batch_size=batch_size,
        batch_fn=batch_fn,
        mesh=mesh,
    )
    slot_hp = permute(opt_hp, layout.slots)
    on_members = functools.partial(place, mesh=mesh, spec=PartitionSpec(MEMBER_AXIS))
    replicated = functools.partial(place, mesh=mesh, spec=PartitionSpec())
    # Model hyperparameters stay concrete (they pick the group's model); the
    # optimizer's are traced, so new values do not recompile.
    states = programs.init(
        on_members(np.asarray(seeds)[layout.slots]), on_members(slot_hp), input_shape=tuple(x.shape[1:])
    )
    factor = np.float32(np.inf if explosion_factor is None else explosion_factor)
    slot_keys = permute({"data": np.asarray(keys.data), "hook": np.asarray(keys.hook)}, layout.slots)
    data = training.LoopData(
        images=replicated(x),
        labels=replicated(y),
        data_key=on_members(slot_keys["data"]),
        hook_key=on_members(slot_keys["hook"]),
        factor=replicated(factor),
        step_args=(None if l2_values is None else on_members(l2_values[layout.slots]),),
    )
    val_arrays = None if val is None else replicated((np.asarray(val["image"]), np.asarray(val["label"], np.int32)))
    sweep = _Sweep(programs, layout, on_members, replicated)
    history, track = _train(
        sweep, states, data, val_arrays, slot_hp, num_steps=num_steps, eval_every=eval_every, eval_fn=eval_fn
    )
    used = {"seed": np.asarray(seeds), **opt_hp, **model_hp}
    if l2_values is not None:
        used["l2"] = l2_values
    first = layout.first
    status = np.where(track.alive[first], "completed", "diverged")
    messages = _member_messages(
        used, status, track.bad_step[first], track.bad_loss[first], track.initial[first], explosion_factor
    )
    return SweepResult(
        state=_member_states(track.states, layout),
        history=history,
        diverged=~track.alive[first],
        hyperparams=used,
        status=status,
        initial_loss=track.initial[first],
        first_bad_step=track.bad_step[first],
        messages=messages,
    )


def _member_states(states: TrainState, layout: MemberLayout) -> TrainState:
    """The slots' states as the ``K`` members' (padding dropped, order restored)."""
    if layout.is_identity:
        return states
    return jax.tree_util.tree_map(lambda leaf: leaf[layout.first], states)


@jax.jit
def _pick(mask: Array, a: TrainState, b: TrainState) -> TrainState:
    """Slot-wise ``where(mask, a, b)`` over whole stacked states."""
    return jax.tree_util.tree_map(lambda x, y: jnp.where(mask.reshape(mask.shape + (1,) * (x.ndim - 1)), x, y), a, b)


class _Sweep(NamedTuple):
    """What the chunk loop of :func:`_train` needs besides the states and data."""

    programs: _Programs
    layout: MemberLayout
    on_members: Callable  # host (S,) values -> arrays split over the member axis
    replicated: Callable  # host values -> arrays on every device


class _Track(NamedTuple):
    """Every slot's progress between chunks (host NumPy, but the states)."""

    states: TrainState
    alive: np.ndarray
    initial: np.ndarray
    bad_step: np.ndarray
    bad_loss: np.ndarray


class _Start(NamedTuple):
    """A chunk's start: where a frozen member's last good state is replayed from."""

    states: TrainState
    step: int
    initial: np.ndarray


def _check_seeds(seeds: ArrayLike) -> training.RunKeys:
    sweep_keys(seeds)  # validates: a non-empty 1-D integer array
    return jax.vmap(training.run_keys)(jnp.asarray(seeds))


def _run(
    sweep: _Sweep, start: _Start, data: training.LoopData, alive: np.ndarray, until: np.ndarray, num_steps: int
) -> ChunkOut:
    """One call of the compiled chunk: ``num_steps`` updates from ``start``, slot ``s`` up to ``until[s]``."""
    return sweep.programs.chunk(
        start.states,
        sweep.on_members(start.initial),
        sweep.on_members(alive),
        data,
        *sweep.replicated((np.int32(start.step), np.int32(num_steps))),
        sweep.on_members(until.astype(np.int32)),
    )


def _last_good(
    sweep: _Sweep,
    data: training.LoopData,
    out: ChunkOut,
    frozen: np.ndarray,
    bad_step: np.ndarray,
    current: _Start,
    previous: _Start | None,
) -> TrainState:
    """``out.state`` with every slot frozen in this chunk put back at its last good state.

    The update of step ``s`` is judged on the parameters ``w_s`` that update
    ``s - 1`` made, so the last good state is ``w_{s-1}`` (``fit``'s, see
    :func:`jax231.training.last_good_state`): recomputed by the same compiled
    chunk, bitwise, from this chunk's start (``s`` after it), from the
    previous chunk's start (``s`` its first update), or the start itself
    (``s = 0``).
    """
    states = out.state
    later = frozen & (bad_step > current.step)
    at_start = frozen & (bad_step == current.step)
    replays = [(later, current)]
    if previous is not None:
        replays.append((at_start, previous))
    elif at_start.any():  # update 0 was bad: the initial state
        states = _pick(sweep.on_members(at_start), current.states, states)
    for mask, start in replays:
        if mask.any():
            until = np.where(mask, bad_step - 1, start.step)
            replayed = _run(sweep, start, data, mask, until, int(until.max()) - start.step).state
            states = _pick(sweep.on_members(mask), replayed, states)
    return states


def _train(
    sweep: _Sweep,
    states: TrainState,
    data: training.LoopData,
    val_arrays: tuple[Array, Array] | None,
    slot_hp: Mapping[str, np.ndarray],
    *,
    num_steps: int,
    eval_every: int,
    eval_fn: EvalFn | None = None,
) -> tuple[dict[str, np.ndarray], _Track]:
    """Chunks of the core loop between evaluations; the members' stacked history and the slots' track."""
    s = len(sweep.layout.slots)
    track = _Track(
        states,
        np.ones(s, bool),
        np.full(s, np.nan, np.float32),
        np.full(s, -1, np.int32),
        np.full(s, np.nan, np.float32),
    )
    rows: dict[str, list] = {"step": [], "time": [], **{_history_name(m): [] for m in TRAIN_METRICS}}
    if val_arrays is not None:
        rows.update(val_loss=[], val_accuracy=[])
    first, start_time, done = sweep.layout.first, time.perf_counter(), 0
    previous: _Start | None = None
    while done < num_steps:
        stop = min(done + eval_every, num_steps)
        current = _Start(track.states, done, track.initial)
        out = _run(sweep, current, data, track.alive, np.full(s, stop), stop - done)
        if done == 0:
            _check_not_scheduled(out.state, slot_hp)
        bad = host_array(out.bad)
        bad_step = np.where(bad, host_array(out.bad_step), track.bad_step)
        chunk_states = _last_good(sweep, data, out, bad, bad_step, current, previous) if bad.any() else out.state
        track = _Track(
            chunk_states,
            host_array(out.alive),
            host_array(out.initial_loss),
            bad_step,
            np.where(bad, host_array(out.bad_loss), track.bad_loss),
        )
        previous = current
        count = host_array(out.num_done).astype(np.float32)[first]
        with np.errstate(invalid="ignore", divide="ignore"):
            for name, value in out.sums.items():
                rows[_history_name(name)].append(np.where(count > 0, host_array(value)[first] / count, np.nan))
        if val_arrays is not None:
            metrics = sweep.programs.evaluate(track.states, *val_arrays)
            rows["val_loss"].append(host_array(metrics["loss"])[first])
            rows["val_accuracy"].append(host_array(metrics["accuracy"])[first])
        done = stop
        if eval_fn is not None:
            for name, extra in (eval_fn(done, _member_states(track.states, sweep.layout)) or {}).items():
                rows.setdefault(name, []).append(np.asarray(extra))
        rows["step"].append(done)
        rows["time"].append(time.perf_counter() - start_time)
    history = {name: np.stack(values, axis=-1) for name, values in rows.items()}
    return history, track


def _history_name(metric: str) -> str:
    return f"train_{metric}" if metric in ("loss", "accuracy") else metric


__all__ = ["run_sweep"]
