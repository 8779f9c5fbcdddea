"""What a run leaves on disk and on the network: the user's umask, nothing world-writable, the
coordinator bound only to the address given."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from jax231.parallel import _distributed
from tests import test_utils


@pytest.mark.parametrize("umask", [0o022, 0o077], ids=["022", "077"])
def test_every_file_of_a_run_follows_the_umask(tmp_path, umask):
    workdir = tmp_path / "run"
    code = (
        "import os, sys; os.umask(int(sys.argv[1], 8)); "
        "sys.argv = ['main.py', '--config=experiments/train/config.py:tiny', '--config.dataset=digits', "
        "'--config.num_steps=10', '--config.eval_every=5', '--workdir=' + sys.argv[2]]; "
        "from experiments.train import main; from experiments import _common; _common.run(main.main)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, oct(umask)[2:], str(workdir)],
        cwd=test_utils.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    paths = [workdir, *workdir.rglob("*")]
    assert len(paths) > 20  # checkpoints, metrics, results, plots, the lock
    for path in paths:
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        assert not mode & stat.S_IWOTH, f"{path} is world-writable ({oct(mode)})"
        assert not mode & umask, f"{path} has {oct(mode)}, beyond umask {oct(umask)}"


@pytest.mark.parametrize(
    "address, given, bound",
    [
        ("localhost:12345", None, "localhost:12345"),
        ("10.0.0.7:8476", None, "10.0.0.7:8476"),
        ("host0:9000", "0.0.0.0:9000", "0.0.0.0:9000"),  # only when asked for explicitly
    ],
)
def test_the_coordinator_binds_only_the_address_given(monkeypatch, address, given, bound):
    seen = {}
    monkeypatch.setattr(_distributed.jax.distributed, "initialize", lambda **kw: seen.update(kw))
    monkeypatch.setattr(_distributed.jax, "process_count", lambda: 2)
    monkeypatch.setattr(_distributed.jax, "process_index", lambda: 0)
    _distributed.initialize_distributed(
        coordinator_address=address, num_processes=2, process_id=0, coordinator_bind_address=given, env={}
    )
    assert seen["coordinator_bind_address"] == bound  # JAX's default would be [::]:<port>, every interface


_LISTEN = """
import socket, sys
from jax231 import parallel
port = int(sys.argv[1])
parallel.initialize_distributed(coordinator_address=f"localhost:{port}", num_processes=1, process_id=0, env={})
listening = set()
for name in ("/proc/net/tcp", "/proc/net/tcp6"):
    for line in open(name).read().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
            listening.add(local.rsplit(":", 1)[0])
print(" ".join(sorted(listening)))
"""

# 127.0.0.1, ::1 and ::ffff:127.0.0.1 as /proc/net shows them (JAX's default [::] is all zeros).
_LOOPBACK = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


def test_a_local_coordinator_listens_on_loopback_only():
    if not os.path.exists("/proc/net/tcp"):
        pytest.skip("no /proc/net/tcp on this system to read the listening sockets from")
    port = _distributed.free_port()
    proc = subprocess.run(
        [sys.executable, "-c", _LISTEN, str(port)],
        cwd=test_utils.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    listening = set(proc.stdout.split())
    assert listening and listening <= _LOOPBACK, f"coordinator listens on {listening}"
