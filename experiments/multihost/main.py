r"""Multi-host data-parallel training of an MLP on MNIST-1D.

On this machine, 2 processes x 2 emulated CPU devices (about 80 s on a loaded 2-core CPU)::

    python -m experiments.multihost.main --launch_local=2 --devices_per_process=2 --workdir=/tmp/multihost

On a cluster, one copy per host (or set JAX231_COORDINATOR, JAX231_NUM_PROCESSES,
JAX231_PROCESS_ID; JAX's own JAX_COORDINATOR_ADDRESS, ... are read too)::

    python -m experiments.multihost.main --coordinator=host0:12345 --num_processes=4 --process_id=$RANK \
        --workdir=/shared/multihost

Each process reads only its shard of the training split (and shuffles it with
the common seed); process 0 writes ``params.npz`` and ``results.json``.
Measured with the command above: test accuracy 0.577, test loss 1.099, final
training loss 0.703 after the default 300 steps. That a 2-process run equals a
1-process run on the same global batches is checked by
``tests/parallel/test_distributed.py`` (on a tiny model).
"""

from __future__ import annotations

import sys

from absl import flags

from experiments import _common
from experiments.multihost import experiment
from jax231 import parallel

_WORKDIR = flags.DEFINE_string("workdir", None, "Where process 0 writes params.npz and results.json.", required=True)
_COORDINATOR = flags.DEFINE_string("coordinator", None, "host:port of process 0 (else $JAX231_COORDINATOR).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (else $JAX231_NUM_PROCESSES).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's id (else $JAX231_PROCESS_ID).")
_LAUNCH_LOCAL = flags.DEFINE_integer("launch_local", 0, "Start this many cooperating processes on this machine.")
_DEVICES = flags.DEFINE_integer("devices_per_process", 2, "Emulated CPU devices per process with --launch_local.")
_STEPS = flags.DEFINE_integer("num_steps", 300, "Updates.")
_BATCH = flags.DEFINE_integer("global_batch", 128, "Examples per update over all processes.")
_PARENT_LOCKED = flags.DEFINE_bool(
    "workdir_locked_by_parent", False, "Set by --launch_local for its children: the parent holds the workdir lock."
)


def validate() -> None:
    """Every numeric flag in range before anything starts (one line, exit status 2 otherwise)."""
    for flag, value, low in (
        ("num_steps", _STEPS.value, 1),
        ("global_batch", _BATCH.value, 1),
        ("launch_local", _LAUNCH_LOCAL.value, 0),
        ("devices_per_process", _DEVICES.value, 1),
    ):
        if value < low:
            raise _common.UsageError(f"--{flag}: expected an int >= {low}, got {value}")


def main(argv) -> None:
    del argv
    validate()
    workdir = _common.check_workdir(_WORKDIR.value)
    if _LAUNCH_LOCAL.value:
        _common.lock_workdir(workdir)  # one run per workdir; the children write under this lock
        argv = [
            "-m",
            "experiments.multihost.main",
            f"--workdir={_WORKDIR.value}",
            f"--num_steps={_STEPS.value}",
            f"--global_batch={_BATCH.value}",
            "--workdir_locked_by_parent",
        ]
        procs = parallel.launch_local_processes(
            argv, num_processes=_LAUNCH_LOCAL.value, devices_per_process=_DEVICES.value, timeout=1800
        )
        for pid, proc in enumerate(procs):
            print(f"--- process {pid} (exit {proc.returncode})\n{proc.stdout}")
            if proc.returncode:
                print(proc.stderr[-3000:], file=sys.stderr)
        sys.exit(max(abs(p.returncode) for p in procs))
    parallel.initialize_distributed(
        coordinator_address=_COORDINATOR.value, num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value
    )
    if parallel.is_primary() and not _PARENT_LOCKED.value:  # process 0 is the one writer
        _common.lock_workdir(workdir)
    # Importing experiment touches no device; initialisation above comes before any array.
    print(experiment.run(workdir=str(workdir), num_steps=_STEPS.value, global_batch=_BATCH.value))


if __name__ == "__main__":
    _common.run(main)
