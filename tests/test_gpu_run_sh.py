"""benchmarks/gpu/run.sh runs on an image without TensorFlow, TFDS or gymnax.

The GPU machine's image lacks them (and cannot download), so the script's steps must import
nothing of theirs. Here they are made unimportable by a ``sitecustomize`` meta-path blocker on
``PYTHONPATH`` (checked to work first), and run.sh's smoke mode (``JAX231_GPU_SMOKE=1``: every
step on tiny arguments, any backend) runs two of its steps for real: the tiny speedrun with
Muon and a one-round ``bench_cnn``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests import test_utils

BLOCKER = '''\
import sys

BLOCKED = ("tensorflow", "tensorflow_datasets", "gymnax")


class _Hide:
    """Wraps a meta-path finder: the blocked packages are not found (as if not installed), so
    ``import`` raises ModuleNotFoundError and ``importlib.util.find_spec`` returns None."""

    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return None
        find = getattr(self.finder, "find_spec", None)
        return None if find is None else find(name, path, target)

    def __getattr__(self, attr):
        return getattr(self.finder, attr)


sys.meta_path[:] = [_Hide(finder) for finder in sys.meta_path]
'''


@pytest.fixture
def blocked_env(tmp_path):
    """The environment of a process where tensorflow, tensorflow_datasets and gymnax cannot import."""
    site = tmp_path / "blocker"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {k: v for k, v in os.environ.items() if k not in ("JAX231_GPU_STEPS", "JAX231_GPU_SMOKE")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(test_utils.REPO_ROOT)])
    env["PYTHON"] = sys.executable
    return env


def test_the_blocker_blocks(blocked_env):
    code = (
        "import importlib.util\n"
        "assert all(importlib.util.find_spec(m) is None for m in ('tensorflow', 'tensorflow_datasets', 'gymnax'))\n"
        "import numpy, jax231\n"  # (the rest imports)
        "import tensorflow_datasets"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=blocked_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "ModuleNotFoundError: No module named 'tensorflow_datasets'" in proc.stderr, (
        proc.stderr
    )


@pytest.mark.slow
def test_run_sh_steps_run_without_tensorflow_tfds_or_gymnax(blocked_env, tmp_path):
    if shutil.which("bash") is None or shutil.which("timeout") is None:
        pytest.skip("run.sh needs bash and coreutils' timeout")
    out = tmp_path / "tables.md"
    env = {**blocked_env, "JAX231_GPU_SMOKE": "1", "JAX231_GPU_STEPS": "speedrun_muon,cnn", "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        ["bash", "benchmarks/gpu/run.sh", str(out)],
        env=env,
        cwd=test_utils.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    tables = out.read_text()
    assert "step failed" not in tables, tables
    assert "## Speedrun with Muon" in tables and "## CNN train step" in tables, tables
    assert "| seed | test_accuracy | tta_test_accuracy | training_seconds | with_compilation_seconds | tta" in tables
    assert "test accuracy: " in tables and "(no TTA), training" in tables  # the speedrun's last line
    assert "| jax231" in tables or "jax231 |" in tables, tables  # bench_cnn's table rows
