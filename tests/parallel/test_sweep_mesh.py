"""run_sweep(mesh=...): members split over devices and hosts equal the single-device sweep, member by member."""

from __future__ import annotations

import functools
import os
import textwrap

import chex
import numpy as np
import pytest
from jax.sharding import Mesh

import jax
from jax231 import models, parallel
from jax231.parallel import _members
from tests import test_utils
from tests.parallel import sweep_mesh_worker, tiny_models

# The sharded programs go through XLA's SPMD partitioner, which fuses the step
# differently from the plain jit (measured: 1-2 float32 ulp apart after 6
# steps, already on a 1-device mesh); with a 'batch' axis the gradient sums are
# also split over devices. 1e-5 relative leaves room for that and still
# catches any member mix-up (another seed, learning rate, dropout mask or
# model differs by 1e-2 or more; asserted below).
RTOL, ATOL = 1e-5, 1e-6
TIMEOUT = 300  # seconds; a hang fails the test instead of blocking CI


def _assert_summaries_equal(got, ref, what):
    assert sorted(got) == sorted(ref), what
    for name in ref:
        if np.asarray(ref[name]).dtype.kind in "fc":
            np.testing.assert_allclose(got[name], ref[name], rtol=RTOL, atol=ATOL, err_msg=f"{what}: {name}")
        else:
            np.testing.assert_array_equal(got[name], ref[name], err_msg=f"{what}: {name}")


def test_member_layout_pads_each_group_and_keeps_it_contiguous_per_device():
    factory = functools.partial(models.get, "mlp", hidden_sizes=(4,), num_classes=3)
    groups = parallel.member_groups(factory, {"drop_rate": sweep_mesh_worker.DROP_RATES})  # [0, 3] and [1, 2, 4]
    layout = _members.plan_members(groups, 5, 2)
    # Device 0: group 0's member 0, group 1's members 1 and 2; device 1: 3, then 4 and its copy.
    np.testing.assert_array_equal(layout.slots, [0, 1, 2, 3, 4, 4])
    np.testing.assert_array_equal(layout.first, [0, 1, 2, 3, 4])
    assert [g.index.tolist() for g in layout.groups] == [[0], [1, 2]] and not layout.is_identity
    single = _members.plan_members(parallel.member_groups(factory(), None), 5, 1)
    assert single.is_identity and single.groups[0].index is None  # one device: the plain vmap over K
    np.testing.assert_array_equal(
        _members.plan_members(parallel.member_groups(factory(), None), 5, 4).slots, [0, 1, 2, 3, 4, 4, 4, 4]
    )


def test_sweep_on_8_devices_equals_the_single_device_sweep():
    code = """
    import numpy as np
    from jax231 import models, parallel
    from tests.parallel import sweep_mesh_worker as w
    out = {}
    for name, mesh in [("none", None), ("members4_batch2", parallel.make_sweep_mesh(4, batch=2))]:
        out.update({f"{name}/{k}": v for k, v in w.summary(w.sweep(mesh)).items()})
    np.savez(PATH, **out)
    try:
        parallel.run_sweep(models.get("mlp", hidden_sizes=(8,), num_classes=3), "sgd",
                           train=w.tiny_models.blobs(64), seeds=np.arange(2), num_steps=1, batch_size=15,
                           mesh=parallel.make_sweep_mesh(4, batch=2))
    except ValueError as e:
        print("ERROR", e)
    """
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"sweep_mesh_{os.getpid()}.npz")
    out = test_utils.run_with_devices(
        tiny_models.prepend_slow_collective_flags(f"PATH = {path!r}\n" + textwrap.dedent(code)), 8, timeout=TIMEOUT
    )
    assert "ERROR batch_size: expected a multiple of the mesh's 'batch' axis (2), got 15" in out, out
    with np.load(path) as data:
        runs = {
            name: {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith(name + "/")}
            for name in ("none", "members4_batch2")
        }
    os.remove(path)
    ref = runs["none"]
    np.testing.assert_array_equal(ref["status"], ["completed"] * 3 + ["diverged", "completed"])
    # The members really differ: equality below tests the routing of every member.
    assert np.min(np.abs(np.diff(ref["history/train_loss"][[0, 1, 2, 4], -1]))) > 1e-3
    # Groups of 2 and 3 members padded to 4 slots each: 2 slots per member device.
    _assert_summaries_equal(runs["members4_batch2"], ref, "4 member devices x 2 batch devices")


def test_two_process_sweep_equals_the_single_device_sweep(tmp_path):
    path = tmp_path / "sweep.npz"
    env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {tiny_models.SLOW_COLLECTIVE_FLAGS}")
    env["PYTHONPATH"] = os.pathsep.join([str(test_utils.REPO_ROOT), env.get("PYTHONPATH", "")])
    procs = parallel.launch_local_processes(
        ["-m", "tests.parallel.sweep_mesh_worker", str(path)],
        num_processes=2,
        devices_per_process=2,
        timeout=TIMEOUT,
        env=env,
        cwd=test_utils.REPO_ROOT,
    )
    for proc in procs:
        assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    lines = [[line for line in p.stdout.splitlines() if line.startswith("RESULT ")] for p in procs]
    assert all(len(found) == 1 and '"process_count": 2, "device_count": 4' in found[0] for found in lines), lines
    ref = sweep_mesh_worker.summary(sweep_mesh_worker.sweep(None, grouped=False))  # this process: one device
    with np.load(path) as data:
        _assert_summaries_equal({k: data[k] for k in data.files}, ref, "2 processes x 2 devices")


def test_bad_meshes_are_one_line_errors():
    run = functools.partial(
        parallel.run_sweep,
        tiny_models.mlp(),
        "sgd",
        train=tiny_models.blobs(16),
        seeds=np.arange(2),
        num_steps=1,
        hyperparams={"learning_rate": np.array([0.1, 0.2])},
    )
    with pytest.raises(ValueError, match=r"mesh: expected axes \('members',\).*got \('batch',\)"):
        run(mesh=Mesh(np.asarray(jax.devices()[:1]), ("batch",)))
    with pytest.raises(ValueError, match="mesh: expected a jax.sharding.Mesh or None, got str"):
        run(mesh="members")
    with pytest.raises(ValueError, match=r"members: expected an int in \[1, 1\]"):
        parallel.make_sweep_mesh(2)
    chex.assert_equal(dict(parallel.make_sweep_mesh().shape), {"members": len(jax.devices()), "batch": 1})
