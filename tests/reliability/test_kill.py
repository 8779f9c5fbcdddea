"""kill -9 at several moments of a run, then resume: the final parameters equal an uninterrupted run's, bitwise.

Each run is a real process that sends itself ``SIGKILL`` (no ``finally``, no
``atexit``, no flush: what ``kill -9`` does) at one moment, including inside a
checkpoint write (:mod:`tests.reliability.kill_worker`). One more process then
resumes every killed workdir and runs the uninterrupted reference. The runs
augment on the device (``batch_fn``), so the augmentation stream resumes too.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import numpy as np
import pytest

from tests import test_utils

# One xdist worker runs this whole module (`--dist loadgroup`, pyproject.toml), so that
# the `resumed` fixture (six training processes) runs once, not once per worker.
pytestmark = pytest.mark.xdist_group("reliability_kill")

MOMENTS = (
    "before_first_checkpoint",
    "between_checkpoints",
    "inside_write_items",
    "inside_write_finalize",
    "after_last_checkpoint",
)


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    procs = {
        m: subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.kill_worker", "run", str(root / m), m],
            cwd=test_utils.REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for m in MOMENTS
    }
    codes = {}
    for moment, proc in procs.items():
        _, err = proc.communicate(timeout=600)
        codes[moment] = (proc.returncode, err[-2000:])
    on_disk = {
        m: sorted(p.name for p in (root / m / "checkpoints").iterdir()) if (root / m / "checkpoints").exists() else []
        for m in MOMENTS
    }
    out = root / "params.npz"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.reliability.kill_worker",
            "resume",
            str(out),
            str(root / "uninterrupted"),
            *[str(root / m) for m in MOMENTS],
        ],
        cwd=test_utils.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out) as f:
        arrays = dict(f)
    return codes, on_disk, arrays


@pytest.mark.parametrize("moment", MOMENTS)
def test_killed_run_resumes_bitwise(resumed, moment):
    codes, on_disk, arrays = resumed
    code, err = codes[moment]
    assert code == -signal.SIGKILL, f"{moment}: expected death by SIGKILL, got exit {code}: {err}"
    if moment == "before_first_checkpoint":
        assert on_disk[moment] == []
    if moment.startswith("inside_write"):  # the interrupted write is not a checkpoint; the previous one is
        assert not (set(on_disk[moment]) & {"10", "20"}), on_disk[moment]
    assert str(arrays[f"{moment}/status"]) == "completed" and int(arrays[f"{moment}/step"]) == 20
    reference = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("uninterrupted/")}
    for key, value in reference.items():
        np.testing.assert_array_equal(arrays[f"{moment}/{key}"], value, err_msg=f"{moment}: {key}")
