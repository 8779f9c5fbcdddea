"""Sweep members on a device mesh: the ``'members'`` axis, its padding and its host I/O.

A sweep of ``K`` members runs on a mesh with a ``'members'`` axis of ``D``
devices (optionally times a data-parallel ``'batch'`` axis, see
:mod:`jax231.parallel._data_parallel`): device ``d`` of the member axis holds
the members of its *slots*. Members are laid out once, on the host:

1. members are grouped by model configuration (:func:`member_groups`);
2. each group of ``n_g`` members is padded to ``D * ceil(n_g / D)`` slots
   with copies of its last member (trained like the others, then dropped), so
   every device holds ``c_g = ceil(n_g / D)`` slots of every group;
3. device ``d`` holds, group after group, slots ``[d c_g, (d + 1) c_g)`` of
   each group: one contiguous block per group, the same on every device, so a
   device's step is one static ``vmap`` per group (no gather of states).

With ``D = 1`` and one group the layout is the identity (no padding, no
reordering): the single-device sweep is the plain ``vmap`` over ``K``.
Padding rather than refusing a ``K`` that is not a multiple of ``D`` keeps
every trial count usable on every mesh; a padded slot costs what a member costs
(the device would otherwise idle in the step).
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jax231.parallel._data_parallel import DEFAULT_AXIS
from jax231.parallel._sweep import MemberGroup
from jax231.types import Array, ArrayLike, PyTree

MEMBER_AXIS = "members"
"""The mesh axis sweep members are split over."""


class MemberLayout(NamedTuple):
    """Where every sweep member sits on the member axis.

    Attributes:
      slots: ``(S,)`` the member each slot trains (``S >= K``, a multiple of the
        member-axis size; padding repeats a member of the same group).
      first: ``(K,)`` the slot whose result is member ``k``'s.
      groups: the groups of one device's ``S / D`` local slots, each with a
        contiguous ``index`` (``None``: one group, every local slot).
      num_shards: the member-axis size ``D``.
    """

    slots: np.ndarray
    first: np.ndarray
    groups: tuple[MemberGroup, ...]
    num_shards: int

    @property
    def is_identity(self) -> bool:
        """``True`` when slot ``k`` is member ``k`` and nothing is padded."""
        return len(self.slots) == len(self.first) and bool(np.all(self.slots == np.arange(len(self.slots))))

    def local_sizes(self) -> tuple[int, ...]:
        """Slots per device of every group (static: part of the program's shape)."""
        if self.groups[0].index is None:
            return (len(self.slots) // self.num_shards,)
        return tuple(len(g.index) for g in self.groups if g.index is not None)


def plan_members(groups: Sequence[MemberGroup], num_members: int, num_shards: int) -> MemberLayout:
    """Lays ``num_members`` members grouped as ``groups`` over ``num_shards`` devices (module docstring)."""
    indices = [np.arange(num_members) if g.index is None else np.asarray(g.index) for g in groups]
    counts = [-(-len(index) // num_shards) for index in indices]
    padded = [
        np.concatenate([index, np.full(c * num_shards - len(index), index[-1])]) for index, c in zip(indices, counts)
    ]
    slots = np.concatenate([p[d * c : (d + 1) * c] for d in range(num_shards) for p, c in zip(padded, counts)])
    first = np.asarray([int(np.flatnonzero(slots == k)[0]) for k in range(num_members)])
    if len(groups) == 1:
        local: tuple[MemberGroup, ...] = (MemberGroup(groups[0].model, None),)
    else:
        starts = np.cumsum([0] + counts[:-1])
        local = tuple(MemberGroup(g.model, np.arange(s, s + c)) for g, s, c in zip(groups, starts, counts))
    return MemberLayout(slots, first, local, num_shards)


def check_sweep_mesh(mesh: Mesh, batch_size: int) -> int:
    """The member-axis size of ``mesh``, after checking its axes and the batch split.

    Raises:
      ValueError: if ``mesh`` lacks a ``'members'`` axis, has an axis other than
        ``'members'`` and ``'batch'``, or its ``'batch'`` axis does not divide
        ``batch_size``.
    """
    if not isinstance(mesh, Mesh):
        raise ValueError(f"mesh: expected a jax.sharding.Mesh or None, got {type(mesh).__name__}")
    names = tuple(mesh.axis_names)
    if MEMBER_AXIS not in names or not set(names) <= {MEMBER_AXIS, DEFAULT_AXIS}:
        raise ValueError(f"mesh: expected axes ('{MEMBER_AXIS}',) or ('{MEMBER_AXIS}', '{DEFAULT_AXIS}'), got {names}")
    split = int(mesh.shape.get(DEFAULT_AXIS, 1))
    if batch_size % split:
        raise ValueError(
            f"batch_size: expected a multiple of the mesh's '{DEFAULT_AXIS}' axis ({split}), got {batch_size}"
        )
    return int(mesh.shape[MEMBER_AXIS])


def make_sweep_mesh(
    members: int | None = None,
    *,
    batch: int = 1,
    devices: Sequence[jax.Device] | None = None,
) -> Mesh:
    """A ``('members', 'batch')`` mesh for :func:`jax231.parallel.run_sweep`.

    Args:
      members: devices along the member axis; ``None`` uses
        ``len(devices) // batch``.
      batch: devices along the data-parallel ``'batch'`` axis (every member's
        minibatch is split over them, gradients all-reduced by XLA).
      devices: the devices; defaults to ``jax.devices()`` (every host's, so the
        mesh spans hosts after :func:`jax231.parallel.initialize_distributed`).

    Returns:
      A :class:`jax.sharding.Mesh` of shape ``(members, batch)``; the devices
      of one member group are neighbours (same host where possible).

    Raises:
      ValueError: if ``members * batch`` is not in ``[1, len(devices)]``.
    """
    devices = list(jax.devices() if devices is None else devices)
    if batch < 1 or batch > len(devices):
        raise ValueError(f"batch: expected an int in [1, {len(devices)}] (the devices), got {batch}")
    members = len(devices) // batch if members is None else members
    if members < 1 or members * batch > len(devices):
        raise ValueError(
            f"members: expected an int in [1, {len(devices) // batch}] ({len(devices)} devices "
            f"/ batch {batch}), got {members}"
        )
    grid = np.asarray(devices[: members * batch], dtype=object).reshape(members, batch)
    return Mesh(grid, (MEMBER_AXIS, DEFAULT_AXIS))


def place(tree: PyTree, mesh: Mesh | None, spec: PartitionSpec) -> PyTree:
    """Host values as global arrays laid out by ``spec`` over ``mesh`` (``jnp.asarray`` without a mesh).

    Every process passes the same host values; each fills only its own
    devices' shards (``jax.make_array_from_callback``), so under
    ``jax.distributed`` every host feeds its own devices.
    """
    if mesh is None:
        return jax.tree_util.tree_map(jax.numpy.asarray, tree)
    sharding = NamedSharding(mesh, spec)

    def put(x: ArrayLike) -> Array:
        host = np.asarray(x)
        host = host.astype(jax.dtypes.canonicalize_dtype(host.dtype), copy=False)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree_util.tree_map(put, tree)


def host_array(x: ArrayLike) -> np.ndarray:
    """A (possibly multi-host) array as one NumPy array, the same on every process."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def permute(values: Mapping[str, np.ndarray], slots: np.ndarray) -> dict[str, np.ndarray]:
    """Every ``(K,)`` host value reordered into the layout's ``(S,)`` slots."""
    return {name: np.asarray(v)[slots] for name, v in values.items()}


__all__ = [
    "MEMBER_AXIS",
    "MemberLayout",
    "check_sweep_mesh",
    "make_sweep_mesh",
    "place",
    "plan_members",
    "permute",
    "host_array",
]
