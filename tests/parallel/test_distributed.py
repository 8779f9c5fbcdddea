"""Multi-host: 2 processes on localhost (CPU backend, gloo) equal 1 process; configuration checks."""

from __future__ import annotations

import json
import os
import textwrap

import jax
import numpy as np
import pytest

from jax231 import parallel
from tests import test_utils
from tests.parallel import tiny_models

# Both runs train on the same 4 devices' worth of shards; the 2-process run
# all-reduces through gloo instead of in-process, which may sum the 4 partial
# gradients in another order: agreement to ~1e-7 relative after 3 float32 steps.
RTOL, ATOL = 1e-5, 1e-6
LAUNCH_TIMEOUT = 240  # seconds; a hang fails the test instead of blocking CI


def _env():
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {tiny_models.SLOW_COLLECTIVE_FLAGS}"
    env["PYTHONPATH"] = os.pathsep.join([str(test_utils.REPO_ROOT), env.get("PYTHONPATH", "")])
    return env


def _launch(argv, num_processes, devices_per_process):
    return parallel.launch_local_processes(
        argv,
        num_processes=num_processes,
        devices_per_process=devices_per_process,
        timeout=LAUNCH_TIMEOUT,
        env=_env(),
        cwd=test_utils.REPO_ROOT,
    )


def _result(stdout):
    (line,) = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(line[len("RESULT ") :])


def _report(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return _result(proc.stdout)


def test_two_process_run_equals_one_process_run(tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    two.mkdir(), one.mkdir()
    reports = [_report(p) for p in _launch(["-m", "tests.parallel.multihost_worker", str(two)], 2, 2)]
    # The 1-process reference: a plain (non-distributed) run on 4 devices.
    code = f"import runpy, sys; sys.argv = ['w', {str(one)!r}]; runpy.run_module('tests.parallel.multihost_worker', run_name='__main__')"
    out = test_utils.run_with_devices(tiny_models.prepend_slow_collective_flags(code), 4, timeout=LAUNCH_TIMEOUT)
    single = _result(out)

    assert [r["process_index"] for r in reports] == [0, 1]
    assert all(r["process_count"] == 2 and r["device_count"] == 4 and r["distributed"] for r in reports)
    assert [r["local_examples"] for r in reports] == [8, 8]  # each host read half of every batch
    assert [r["wrote"] for r in reports] == [True, False]  # written once, by process 0
    assert single["process_count"] == 1 and single["local_examples"] == 16 and not single["distributed"]
    assert sorted(os.listdir(two)) == ["params.npz"]  # no temporary files left behind
    with np.load(two / "params.npz") as a, np.load(one / "params.npz") as b:
        assert sorted(a.files) == sorted(b.files) and len(a.files) == 6
        for name in a.files:
            np.testing.assert_allclose(a[name], b[name], rtol=RTOL, atol=ATOL, err_msg=name)
    assert reports[0]["loss"] == pytest.approx(single["loss"], rel=RTOL)


def test_inconsistent_process_count_fails_clearly(tmp_path):
    # Process 1 believes there are 3 processes: it must stop with an error that
    # says so, not wait in a collective for a third process that never comes.
    script = tmp_path / "bad.py"
    script.write_text(
        textwrap.dedent("""
        import os
        if os.environ["JAX231_PROCESS_ID"] == "1":
            os.environ["JAX231_NUM_PROCESSES"] = "3"
        from jax231 import parallel
        parallel.initialize_distributed(initialization_timeout=30)
        print("joined")
    """)
    )
    procs = _launch([str(script)], 2, 1)
    assert procs[1].returncode != 0
    assert "configuration says 1 of 3" in procs[1].stderr, procs[1].stderr[-2000:]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(coordinator_address="localhost:1234", num_processes=2, process_id=2), r"process_id.*\[0, 2\).*got 2"),
        (dict(coordinator_address="localhost:1234", num_processes=2, process_id=-1), r"process_id.*got -1"),
        (
            dict(coordinator_address="localhost:1234", num_processes=0, process_id=0),
            r"num_processes must be >= 1; got 0",
        ),
        (dict(coordinator_address="localhost", num_processes=2, process_id=0), r"'host:port'.*'localhost'"),
        (dict(coordinator_address="localhost:99999", num_processes=2, process_id=0), r"port in \[1, 65535\]"),
        (
            dict(coordinator_address="localhost:1234", num_processes="two", process_id=0),
            r"num_processes.*integer.*'two'",
        ),
        (dict(coordinator_address="localhost:1234", num_processes=2), r"missing \['process_id'\].*JAX231_PROCESS_ID"),
    ],
)
def test_bad_configuration_raises_before_initialize(monkeypatch, kwargs, match):
    def must_not_run(**_):
        raise AssertionError("jax.distributed.initialize was called with a bad configuration")

    monkeypatch.setattr(jax.distributed, "initialize", must_not_run)
    with pytest.raises(ValueError, match=match):
        parallel.initialize_distributed(**kwargs, env={})


def test_configuration_sources_and_precedence():
    env = {
        "JAX231_COORDINATOR": "10.0.0.1:5000",
        "JAX231_NUM_PROCESSES": "4",
        "JAX231_PROCESS_ID": "3",
        "JAX_COORDINATOR_ADDRESS": "10.0.0.9:6000",
        "JAX_NUM_PROCESSES": "8",
        "JAX_PROCESS_ID": "7",
    }
    assert parallel.resolve_distributed_config(env=env) == ("10.0.0.1:5000", 4, 3)
    jax_only = {k: v for k, v in env.items() if k.startswith("JAX_")}
    assert parallel.resolve_distributed_config(env=jax_only) == ("10.0.0.9:6000", 8, 7)
    # Flags override the environment, field by field.
    assert parallel.resolve_distributed_config(process_id=0, env=env) == ("10.0.0.1:5000", 4, 0)
    assert parallel.resolve_distributed_config(env={}) is None
    # With the environment's id the flag's count is inconsistent: caught, naming the source.
    with pytest.raises(ValueError, match=r"\[0, 2\); got 3 from \$JAX231_PROCESS_ID"):
        parallel.resolve_distributed_config(num_processes=2, env=env)


def test_process_slice_partitions_the_batch():
    blocks = [parallel.process_slice(12, process_index=p, process_count=3) for p in range(3)]
    assert np.concatenate([np.arange(12)[b] for b in blocks]).tolist() == list(range(12))
    assert parallel.process_slice(12) == slice(0, 12)  # this test process is alone
    with pytest.raises(ValueError, match=r"num_examples \(10\).*process count \(4\)"):
        parallel.process_slice(10, process_index=0, process_count=4)


def test_save_once_roundtrip_single_process(tmp_path):
    tree = {"dense": {"w": np.arange(6.0).reshape(2, 3), "b": np.zeros(3)}, "step": np.int32(4)}
    path = tmp_path / "sub" / "ckpt.npz"
    assert parallel.save_once(path, tree) is True
    back = parallel.load_npz_tree(path, tree)
    jax.tree_util.tree_map(np.testing.assert_array_equal, back, tree)
    assert os.listdir(path.parent) == ["ckpt.npz"]
