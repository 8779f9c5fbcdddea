"""Multi-host set-up: validated ``jax.distributed.initialize``, per-host data, one writer.

A multi-host run is ``P`` copies of the same program, one per host (process),
that agree on a coordinator ``host:port``, the process count ``P`` and each
one's id ``p``. After :func:`initialize_distributed`, ``jax.devices()`` lists the
devices of all hosts and a mesh over them (:func:`jax231.parallel.make_mesh`)
spans hosts; each host reads only its own ``1 / P`` of every global batch
(:func:`process_slice`) and :func:`global_batch_from_local` assembles the
global, sharded ``jax.Array`` that the sharded train step consumes.

The configuration is validated *before* any network call: an id outside
``[0, P)`` or a malformed address would otherwise leave the other processes
blocked in the coordinator barrier until its timeout.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from typing import Mapping, NamedTuple, Sequence, Union

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from jax231 import pipelines
from jax231.parallel._data_parallel import batch_sharding, check_batch_divisible
from jax231.types import PyTree

ENV_COORDINATOR = "JAX231_COORDINATOR"
ENV_NUM_PROCESSES = "JAX231_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX231_PROCESS_ID"
# JAX's own variable names, read when ours are absent.
_JAX_ENV = {
    "coordinator_address": "JAX_COORDINATOR_ADDRESS",
    "num_processes": "JAX_NUM_PROCESSES",
    "process_id": "JAX_PROCESS_ID",
}
_OUR_ENV = {
    "coordinator_address": ENV_COORDINATOR,
    "num_processes": ENV_NUM_PROCESSES,
    "process_id": ENV_PROCESS_ID,
}


class DistributedConfig(NamedTuple):
    """Where the coordinator is and who this process is.

    Attributes:
      coordinator_address: ``host:port`` of process 0's coordinator service.
      num_processes: the number of processes ``P`` (>= 1).
      process_id: this process's id ``p`` in ``[0, P)``.
    """

    coordinator_address: str
    num_processes: int
    process_id: int


def _parse_int(value: Union[str, int], name: str, source: str) -> int:
    try:
        out = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer; got {value!r} from {source}.") from None
    return out


def resolve_distributed_config(
    *,
    coordinator_address: str | None = None,
    num_processes: int | str | None = None,
    process_id: int | str | None = None,
    env: Mapping[str, str] | None = None,
) -> DistributedConfig | None:
    """Combines explicit values (flags) with the environment and validates them.

    Each field comes from the argument when given, else from ``JAX231_*``
    (``JAX231_COORDINATOR``, ``JAX231_NUM_PROCESSES``, ``JAX231_PROCESS_ID``),
    else from JAX's own ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` /
    ``JAX_PROCESS_ID``.

    Returns:
      The validated :class:`DistributedConfig`, or ``None`` when nothing at all
      is configured (a single-process run).

    Raises:
      ValueError: when the configuration is partial (some fields missing), the
        address is not ``host:port`` with a port in ``[1, 65535]``,
        ``num_processes < 1`` or ``process_id`` is outside ``[0, num_processes)``.
    """
    env = os.environ if env is None else env
    given = {"coordinator_address": coordinator_address, "num_processes": num_processes, "process_id": process_id}
    values: dict[str, Union[str, int]] = {}
    sources: dict[str, str] = {}
    for field, value in given.items():
        if value is not None:
            values[field], sources[field] = value, "the argument"
        elif env.get(_OUR_ENV[field]):
            values[field], sources[field] = env[_OUR_ENV[field]], f"${_OUR_ENV[field]}"
        elif env.get(_JAX_ENV[field]):
            values[field], sources[field] = env[_JAX_ENV[field]], f"${_JAX_ENV[field]}"
    if not values:
        return None
    missing = [f for f in given if f not in values]
    if missing:
        raise ValueError(
            f"a distributed run needs coordinator_address, num_processes and process_id; missing {missing} "
            f"(pass them or set {', '.join(_OUR_ENV[f] for f in missing)})."
        )
    address = str(values["coordinator_address"]).strip()
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(
            f"coordinator_address must be 'host:port' with a port in [1, 65535]; got {address!r} "
            f"from {sources['coordinator_address']}."
        )
    count = _parse_int(values["num_processes"], "num_processes", sources["num_processes"])
    if count < 1:
        raise ValueError(f"num_processes must be >= 1; got {count} from {sources['num_processes']}.")
    pid = _parse_int(values["process_id"], "process_id", sources["process_id"])
    if not 0 <= pid < count:
        raise ValueError(
            f"process_id must be in [0, num_processes) = [0, {count}); got {pid} from {sources['process_id']}."
        )
    return DistributedConfig(address, count, pid)


def bind_address(config: DistributedConfig, given: str | None = None) -> str:
    """The ``host:port`` process 0's coordinator binds to: ``given``, else the coordinator address.

    JAX would bind ``[::]:<port>``, every interface of the machine; binding the
    address the processes were told to connect to exposes nothing more.
    """
    return config.coordinator_address if given is None else str(given).strip()


def initialize_distributed(
    *,
    coordinator_address: str | None = None,
    num_processes: int | str | None = None,
    process_id: int | str | None = None,
    initialization_timeout: int = 60,
    coordinator_bind_address: str | None = None,
    env: Mapping[str, str] | None = None,
) -> DistributedConfig | None:
    """Validates the configuration, then calls :func:`jax.distributed.initialize`.

    Process 0's coordinator service binds only to the address given
    (``coordinator_bind_address``, by default the coordinator address itself:
    ``localhost:<port>`` for a local launch), never to every interface, which is
    JAX's default (``[::]:<port>``): a training run must not open a port to the network.

    Must run before any other JAX call that touches devices. On the CPU backend
    cross-process collectives use gloo (the default since JAX 0.4.3x; set here
    explicitly so that an older default does not silently leave each process
    alone). After initialisation the process count and id reported by JAX are
    checked against the configuration.

    Args:
      coordinator_address: ``host:port`` of process 0 (flags override the environment).
      num_processes: the number of processes.
      process_id: this process's id.
      initialization_timeout: seconds to wait for all processes to connect
        before failing (instead of hanging).
      coordinator_bind_address: ``host:port`` process 0's coordinator listens
        on (default: ``coordinator_address``; see :func:`coordinator_bind_address`).
      env: the environment to read (default ``os.environ``).

    Returns:
      The configuration used, or ``None`` when nothing is configured (then JAX
      is left single-process and nothing is called).

    Raises:
      ValueError: on an invalid or partial configuration (see
        :func:`resolve_distributed_config`), before any connection is attempted.
      RuntimeError: if JAX's view after initialisation disagrees with it.
    """
    config = resolve_distributed_config(
        coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id, env=env
    )
    if config is None:
        return None
    if "cpu" in os.environ.get("JAX_PLATFORMS", "cpu").lower():
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=config.coordinator_address,
        num_processes=config.num_processes,
        process_id=config.process_id,
        initialization_timeout=initialization_timeout,
        coordinator_bind_address=bind_address(config, coordinator_bind_address),
    )
    if (jax.process_count(), jax.process_index()) != (config.num_processes, config.process_id):
        raise RuntimeError(
            f"after jax.distributed.initialize JAX reports process {jax.process_index()} of "
            f"{jax.process_count()}, but the configuration says {config.process_id} of {config.num_processes}."
        )
    return config


def process_slice(num_examples: int, *, process_index: int | None = None, process_count: int | None = None) -> slice:
    """The contiguous block of ``num_examples`` that this process reads.

    Process ``p`` of ``P`` reads ``[p * n / P, (p + 1) * n / P)``, the block of
    the global batch that lands on its devices under the ``'batch'`` sharding
    of a mesh built from ``jax.devices()`` (devices are ordered by process).

    Raises:
      ValueError: if ``num_examples`` is not divisible by the process count.
    """
    index = jax.process_index() if process_index is None else process_index
    count = jax.process_count() if process_count is None else process_count
    if num_examples % count:
        raise ValueError(
            f"num_examples ({num_examples}) must be divisible by the process count ({count}) "
            "so that every host reads the same number of examples."
        )
    per = num_examples // count
    return slice(index * per, (index + 1) * per)


def global_batch_from_local(local_batch: PyTree, mesh: Mesh, *, axis_name: str = "batch") -> PyTree:
    """Assembles this process's examples into global arrays sharded over ``axis_name``.

    Every process passes its own ``(B / P, ...)`` block (see
    :func:`process_slice`); the result is a ``(B, ...)`` ``jax.Array`` per leaf,
    split along the batch axis, ready for :func:`make_sharded_train_step`.
    In a single-process run this is just a sharded ``device_put``
    (:func:`jax231.pipelines.global_batch` after a divisibility check).

    Raises:
      ValueError: if the local batch does not split evenly over this process's devices.
    """
    check_batch_divisible(local_batch, mesh.devices.size // jax.process_count(), name="local_batch")
    return pipelines.global_batch(local_batch, batch_sharding(mesh, axis_name=axis_name))


def is_primary() -> bool:
    """``True`` on process 0, the one process that writes files."""
    return jax.process_index() == 0


def save_once(path: str | os.PathLike, tree: PyTree) -> bool:
    """Writes the (replicated) ``tree`` to ``path`` (``.npz``) from process 0 only.

    Every process must call it (it gathers values and ends with a barrier, so
    nobody reads the file before it exists); only process 0 writes, atomically
    (a temporary file renamed into place). Leaves are stored under their
    ``jax.tree_util.keystr`` paths; read them back with :func:`load_npz_tree`.

    Returns:
      ``True`` in the process that wrote the file, ``False`` in the others.
    """
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    values = {
        jax.tree_util.keystr(key): np.asarray(
            multihost_utils.process_allgather(leaf, tiled=True) if jax.process_count() > 1 else leaf
        )
        for key, leaf in flat
    }
    if is_primary():
        path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}.npz"
        np.savez(tmp, **values)  # type: ignore[arg-type]  # numpy's stub lets **kwds collide with allow_pickle
        os.replace(tmp, path)
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(f"jax231.save_once:{os.fspath(path)}")
    return is_primary()


def load_npz_tree(path: str | os.PathLike, like: PyTree) -> PyTree:
    """Reads a file written by :func:`save_once` into the structure of ``like``."""
    with np.load(os.fspath(path)) as data:
        flat, treedef = jax.tree_util.tree_flatten_with_path(like)
        return jax.tree_util.tree_unflatten(treedef, [data[jax.tree_util.keystr(k)] for k, _ in flat])


def free_port() -> int:
    """A TCP port on localhost that was free a moment ago (for local launches)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("localhost", 0))
        return int(sock.getsockname()[1])


def launch_local_processes(
    argv: Sequence[str],
    *,
    num_processes: int,
    devices_per_process: int = 1,
    timeout: float = 120.0,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
) -> list[subprocess.CompletedProcess]:
    """Runs ``python *argv`` as ``num_processes`` cooperating CPU processes on this machine.

    Each child gets ``JAX231_COORDINATOR=localhost:<free port>``,
    ``JAX231_NUM_PROCESSES``, its ``JAX231_PROCESS_ID``, ``JAX_PLATFORMS=cpu`` and
    ``devices_per_process`` emulated devices (added to any ``XLA_FLAGS`` of
    ``env``), so that
    ``initialize_distributed()`` with no arguments joins them. If any child is
    still running after ``timeout`` seconds, or one fails while the others
    wait in a collective, the remaining children (and only they) are killed.

    Returns:
      One ``CompletedProcess`` per process id (``stdout`` and ``stderr`` as text).
    """
    if num_processes < 1:
        raise ValueError(f"num_processes must be >= 1; got {num_processes}.")
    base = dict(os.environ if env is None else env)
    base.update(
        {
            ENV_COORDINATOR: f"localhost:{free_port()}",
            ENV_NUM_PROCESSES: str(num_processes),
            "JAX_PLATFORMS": "cpu",
            "XLA_FLAGS": " ".join(
                [base.get("XLA_FLAGS", ""), f"--xla_force_host_platform_device_count={devices_per_process}"]
            ).strip(),
        }
    )
    procs, logs = [], []
    for pid in range(num_processes):
        child_env = dict(base, **{ENV_PROCESS_ID: str(pid)})
        # Files, not pipes: a child that fills a pipe nobody reads would block.
        out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
        logs.append((out, err))
        procs.append(
            subprocess.Popen([sys.executable, *argv], env=child_env, stdout=out, stderr=err, text=True, cwd=cwd)
        )
    deadline = time.monotonic() + timeout
    reason = ""
    try:
        while any(proc.poll() is None for proc in procs):
            if any(proc.returncode not in (None, 0) for proc in procs):
                reason = "killed: another process failed"
                break
            if time.monotonic() > deadline:
                reason = f"killed after the {timeout:g} s timeout"
                break
            time.sleep(0.05)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    results = []
    for proc, (out, err) in zip(procs, logs):
        out.seek(0)
        err.seek(0)
        stderr = err.read()
        if proc.returncode < 0 and reason:
            stderr += f"\n[{reason}]"
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), stderr))
        out.close()
        err.close()
    return results


__all__ = [
    "DistributedConfig",
    "bind_address",
    "ENV_COORDINATOR",
    "ENV_NUM_PROCESSES",
    "ENV_PROCESS_ID",
    "free_port",
    "global_batch_from_local",
    "initialize_distributed",
    "is_primary",
    "launch_local_processes",
    "load_npz_tree",
    "process_slice",
    "resolve_distributed_config",
    "save_once",
]
