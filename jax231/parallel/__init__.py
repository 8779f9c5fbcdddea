"""Scale: vmapped sweeps, data parallelism over devices, multi-host set-up.

* Sweeps -- :func:`run_sweep` trains ``K`` models (seeds x hyperparameters) in
  one compiled program, the vmapped training core (``jax231.training.run_chunk``),
  member ``k`` equal to ``jax231.training.fit(..., seed=seeds[k])``, a diverged
  member frozen at its last good state; :func:`init_sweep`, :func:`make_sweep_step`,
  :func:`sweep_keys` and :func:`member_groups` are its building blocks. With
  ``mesh=`` (:func:`make_sweep_mesh`) the members are split over a
  ``'members'`` mesh axis (devices, and hosts under ``jax.distributed``),
  combinable with the data-parallel ``'batch'`` axis; :func:`host_array`
  reads a multi-host result.
* Data parallelism -- :func:`make_sharded_train_step` (``jit`` with a
  ``NamedSharding`` over a ``'batch'`` mesh axis) and
  :func:`make_pmap_train_step` (``pmap`` with ``lax.pmean`` of gradients), with
  :func:`make_mesh`, :func:`split_batch`, :func:`replicate`, :func:`unreplicate`
  and :func:`replicate_on_mesh`.
* Multi-host -- :func:`initialize_distributed` (validated
  ``jax.distributed.initialize``), :func:`process_slice`,
  :func:`global_batch_from_local`, :func:`save_once` and
  :func:`launch_local_processes` for localhost runs.
"""

from jax231.parallel._data_parallel import (
    batch_sharding,
    check_batch_divisible,
    make_mesh,
    make_pmap_train_step,
    make_sharded_train_step,
    pmap_step_fn,
    replicate,
    replicate_on_mesh,
    replicated_sharding,
    split_batch,
    unreplicate,
)
from jax231.parallel._distributed import (
    ENV_COORDINATOR,
    ENV_NUM_PROCESSES,
    ENV_PROCESS_ID,
    DistributedConfig,
    free_port,
    global_batch_from_local,
    initialize_distributed,
    is_primary,
    launch_local_processes,
    load_npz_tree,
    process_slice,
    resolve_distributed_config,
    save_once,
)
from jax231.parallel._members import MEMBER_AXIS, host_array, make_sweep_mesh
from jax231.parallel._run_sweep import run_sweep
from jax231.parallel._sweep import (
    MemberGroup,
    SweepResult,
    init_sweep,
    make_sweep_step,
    member_groups,
    stack_trees,
    sweep_keys,
    tree_index,
)

__all__ = [
    "DistributedConfig",
    "ENV_COORDINATOR",
    "ENV_NUM_PROCESSES",
    "ENV_PROCESS_ID",
    "MEMBER_AXIS",
    "MemberGroup",
    "SweepResult",
    "batch_sharding",
    "check_batch_divisible",
    "free_port",
    "global_batch_from_local",
    "host_array",
    "init_sweep",
    "initialize_distributed",
    "is_primary",
    "launch_local_processes",
    "load_npz_tree",
    "make_mesh",
    "make_pmap_train_step",
    "make_sweep_mesh",
    "make_sharded_train_step",
    "make_sweep_step",
    "member_groups",
    "pmap_step_fn",
    "process_slice",
    "replicate",
    "replicate_on_mesh",
    "replicated_sharding",
    "resolve_distributed_config",
    "run_sweep",
    "save_once",
    "split_batch",
    "stack_trees",
    "sweep_keys",
    "tree_index",
    "unreplicate",
]
