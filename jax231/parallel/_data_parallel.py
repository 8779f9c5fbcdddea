"""Data parallelism over the local devices: ``jit`` with shardings, and ``pmap``.

Two ways to run one train step on ``D`` devices, each seeing ``B / D`` examples
of a global batch of ``B``:

* :func:`make_sharded_train_step` -- the current JAX way. The step keeps its
  single-device meaning (a mean over the *global* batch); ``jax.jit`` is told
  that the state is replicated and the batch is split along a ``'batch'`` mesh
  axis, and XLA inserts the all-reduces. BatchNorm statistics are therefore
  global (synchronised) without any change to the model.
* :func:`make_pmap_train_step` -- the SPMD design with explicit collectives:
  every device computes the gradient of its per-device mean loss and
  ``lax.pmean`` over ``axis_name`` averages them,

  .. math:: g = \\frac{1}{D} \\sum_{d=1}^{D} \\nabla_w \\frac{1}{B/D} \\sum_{i \\in d} L_i
            = \\nabla_w \\frac{1}{B} \\sum_{i=1}^{B} L_i ,

  which equals the single-device gradient because the shards have equal sizes.
  BatchNorm statistics are per device unless the model was built with
  ``bn_axis_name=axis_name``.

Both refuse a global batch whose size is not a multiple of the device count.
"""

from __future__ import annotations

from typing import Callable, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jax231 import pipelines, training
from jax231.training import TrainState
from jax231.types import Array, GradientTransformation, Model, PyTree

StepFn = Callable[[TrainState, PyTree], tuple[TrainState, PyTree]]
"""A pure train step ``(state, batch) -> (state, metrics)``."""

LossName = Union[str, Callable[..., Array]]

DEFAULT_AXIS = "batch"


def make_mesh(
    num_devices: int | None = None,
    *,
    axis_name: str = DEFAULT_AXIS,
    devices: Sequence[jax.Device] | None = None,
) -> Mesh:
    """A one-dimensional device mesh with a single data-parallel axis.

    Args:
      num_devices: how many devices to use (the first ``num_devices`` of
        ``devices``); ``None`` uses them all.
      axis_name: the mesh axis name batches are split along.
      devices: the devices to choose from; defaults to ``jax.devices()`` (all
        devices of all processes, so the mesh spans hosts in a multi-host run).

    Returns:
      A :class:`jax.sharding.Mesh` of shape ``(num_devices,)``.

    Raises:
      ValueError: if ``num_devices`` is not in ``[1, len(devices)]``.
    """
    devices = list(jax.devices() if devices is None else devices)
    if num_devices is None:
        num_devices = len(devices)
    if not 1 <= num_devices <= len(devices):
        raise ValueError(f"num_devices must be in [1, {len(devices)}] (the available devices); got {num_devices}.")
    return Mesh(np.asarray(devices[:num_devices]), (axis_name,))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
    """A sharding that keeps a full copy of an array on every device of ``mesh``."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh, *, axis_name: str = DEFAULT_AXIS) -> NamedSharding:
    """A sharding that splits the leading (example) axis over ``axis_name``."""
    return NamedSharding(mesh, PartitionSpec(axis_name))


def replicate_on_mesh(tree: PyTree, mesh: Mesh) -> PyTree:
    """Places a host-local tree on every device of ``mesh`` (all processes' devices).

    The multi-host way to hand a train state to :func:`make_sharded_train_step`:
    every process passes the same values (e.g. a state created from the same
    seed) and gets global, fully replicated ``jax.Array`` leaves; in one process
    it is a ``device_put``. Typed PRNG key leaves are kept as keys.
    """
    sharding = replicated_sharding(mesh)

    def put(x):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(put(jax.random.key_data(x)), impl=jax.random.key_impl(x))
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree_util.tree_map(put, tree)


def check_batch_divisible(batch: PyTree, num_shards: int, *, name: str = "batch") -> int:
    """Returns the common leading size of ``batch``'s leaves, checked divisible.

    Raises:
      ValueError: if the leaves disagree on their leading size or if it is not a
        multiple of ``num_shards`` (naming both numbers).
    """
    sizes = {int(np.shape(leaf)[0]) for leaf in jax.tree_util.tree_leaves(batch) if np.ndim(leaf) > 0}
    if len(sizes) != 1:
        raise ValueError(f"{name} leaves must share one leading (example) size; got sizes {sorted(sizes)}.")
    (size,) = sizes
    if size % num_shards:
        raise ValueError(
            f"{name} has a global size of {size} examples, which is not divisible by the "
            f"{num_shards} devices it is split over; use a batch size that is a multiple of {num_shards}."
        )
    return size


def split_batch(batch: PyTree, num_devices: int) -> PyTree:
    """Reshapes every leaf from ``(B, ...)`` to ``(num_devices, B // num_devices, ...)``.

    :func:`jax231.pipelines.shard_batch` after a check whose error names the
    batch size and the device count. The layout :func:`jax.pmap` expects: device ``d`` gets examples
    ``[d * B / D, (d + 1) * B / D)``, the same contiguous split as the ``'batch'``
    sharding of :func:`batch_sharding`.

    Raises:
      ValueError: if ``B`` is not a multiple of ``num_devices``.
    """
    check_batch_divisible(batch, num_devices)
    return pipelines.shard_batch(batch, num_devices)


def make_sharded_train_step(
    step: StepFn,
    mesh: Mesh,
    *,
    axis_name: str = DEFAULT_AXIS,
    donate: bool = True,
) -> StepFn:
    """Compiles a single-device train step to run data parallel over ``mesh``.

    ``step(state, batch) -> (state, metrics)`` is any pure step (typically
    :func:`jax231.training.make_train_step` without ``axis_name``). It is
    ``jax.jit``-ed with the state and metrics replicated and every batch leaf
    split along its leading axis over ``axis_name``; its result is the
    single-device result on the same global batch up to float summation order.

    Args:
      step: the pure, un-jitted train step.
      mesh: the device mesh, e.g. :func:`make_mesh`.
      axis_name: the mesh axis to split batches over.
      donate: donate the input state's buffers (the caller must not reuse it).

    Returns:
      ``sharded_step(state, batch) -> (state, metrics)``. In one process
      ``state`` may live anywhere (jit moves it to the replicated sharding); in
      a multi-host run pass it through :func:`replicate_on_mesh` first.
      ``batch`` is a host batch or a global ``jax.Array`` (see
      :func:`jax231.parallel.global_batch_from_local` for multi-host runs).

    Raises:
      ValueError: (when called) if the global batch is not divisible by the
        number of devices along ``axis_name``.
    """
    if axis_name not in mesh.shape:
        raise ValueError(f"axis_name must be an axis of mesh {dict(mesh.shape)}; got {axis_name!r}.")
    num_shards = mesh.shape[axis_name]
    replicated = replicated_sharding(mesh)
    sharded = batch_sharding(mesh, axis_name=axis_name)
    compiled = jax.jit(
        step,
        in_shardings=(replicated, sharded),
        out_shardings=(replicated, replicated),
        donate_argnums=(0,) if donate else (),
    )

    def sharded_step(state, batch):
        check_batch_divisible(batch, num_shards)
        return compiled(state, batch)

    return sharded_step


def make_pmap_train_step(
    model: Model,
    optimizer: GradientTransformation,
    *,
    loss: LossName = "softmax",
    penalty: Callable[[PyTree], jax.Array] | None = None,
    axis_name: str = DEFAULT_AXIS,
    devices: Sequence[jax.Device] | None = None,
    donate: bool = True,
) -> StepFn:
    """A ``jax.pmap`` train step: per-device gradients averaged with ``lax.pmean``.

    Builds :func:`jax231.training.make_train_step` with ``axis_name`` (so the
    gradients, loss and metrics are ``pmean``-ed) and maps it over the local
    devices. For synchronised BatchNorm build ``model`` with
    ``bn_axis_name=axis_name``; otherwise each device normalises with its own
    ``B / D`` examples (as multi-GPU PyTorch does without ``SyncBatchNorm``).

    Args:
      model: a ``Model(init, apply)``.
      optimizer: a ``GradientTransformation``.
      loss: as in :func:`jax231.training.make_loss_fn`.
      penalty: as in :func:`jax231.training.make_loss_fn`.
      axis_name: the name of the mapped axis (shared with ``bn_axis_name``).
      devices: the devices to map over (default: all local devices).
      donate: donate the input state's buffers.

    Returns:
      ``pmap_step(state, batch) -> (state, metrics)`` taking a state from
      :func:`replicate` and a batch from :func:`split_batch` (leading axis = the
      number of devices); every leaf of the returned state and metrics has that
      leading axis too (:func:`unreplicate` takes one copy).

    Raises:
      ValueError: (when called) if the batch's leading axis is not the number
        of devices.
    """
    step = training.make_train_step(model, optimizer, loss=loss, penalty=penalty, axis_name=axis_name)
    return pmap_step_fn(step, axis_name=axis_name, devices=devices, donate=donate)


def pmap_step_fn(
    step: StepFn,
    *,
    axis_name: str = DEFAULT_AXIS,
    devices: Sequence[jax.Device] | None = None,
    donate: bool = True,
) -> StepFn:
    """``jax.pmap`` of any step that already ``pmean``-s over ``axis_name``.

    The building block of :func:`make_pmap_train_step`, for custom steps.
    """
    devices = list(jax.local_devices() if devices is None else devices)
    num_devices = len(devices)
    mapped = jax.pmap(step, axis_name=axis_name, devices=devices, donate_argnums=(0,) if donate else ())

    def pmap_step(state, batch):
        leading = {int(np.shape(leaf)[0]) for leaf in jax.tree_util.tree_leaves(batch) if np.ndim(leaf) > 0}
        if leading != {num_devices}:
            raise ValueError(
                f"batch must have a leading device axis of size {num_devices} "
                f"(use jax231.parallel.split_batch(batch, {num_devices})); got leading sizes {sorted(leading)}."
            )
        return mapped(state, batch)

    return pmap_step


def replicate(tree: PyTree, devices: Sequence[jax.Device] | None = None) -> PyTree:
    """Stacks ``len(devices)`` copies of every leaf along a new leading axis.

    The state layout :func:`jax.pmap` expects (``flax.jax_utils.replicate``'s
    job); works for typed PRNG key leaves.
    """
    devices = list(jax.local_devices() if devices is None else devices)
    n = len(devices)

    def rep(x):
        x = jnp.asarray(x)
        return jnp.broadcast_to(x, (n,) + x.shape)

    return jax.tree_util.tree_map(rep, tree)


def unreplicate(tree: PyTree) -> PyTree:
    """The first copy of a replicated tree (drops the leading device axis)."""
    return jax.tree_util.tree_map(lambda x: x[0], tree)


__all__ = [
    "batch_sharding",
    "check_batch_divisible",
    "make_mesh",
    "make_pmap_train_step",
    "make_sharded_train_step",
    "pmap_step_fn",
    "replicate",
    "replicate_on_mesh",
    "replicated_sharding",
    "split_batch",
    "unreplicate",
]
