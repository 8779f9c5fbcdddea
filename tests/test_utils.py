"""Helpers shared by the jax231 test suite.

Everything a test needs beyond chex lives here, so tests read as statements of
what is checked: float64 references, tolerance-explicit comparisons, the
optional ``../shared`` data, multi-device subprocesses and experiment mains run as subprocesses.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"
CIFAR10_ARCHIVE = SHARED_DATASETS / "cifar10-jpeg.tar.gz"

requires_shared_cifar10 = pytest.mark.skipif(
    not CIFAR10_ARCHIVE.exists(),
    reason=f"needs the CIFAR-10 copy at {CIFAR10_ARCHIVE} (../shared is absent in a user's fresh clone)",
)


def x64():
    """Context manager that turns on float64 for the enclosed JAX computations."""
    return jax.enable_x64(True)


def rel_error(a, b) -> float:
    """The course's relative error ``max|a - b| / max(1e-8, |a| + |b|)`` in float64."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def tree_rel_error(a, b) -> float:
    """Largest :func:`rel_error` over the matching leaves of two pytrees."""
    leaves_a = jax.tree_util.tree_leaves(a)
    leaves_b = jax.tree_util.tree_leaves(b)
    assert len(leaves_a) == len(leaves_b), (len(leaves_a), len(leaves_b))
    return max(rel_error(x, y) for x, y in zip(leaves_a, leaves_b))


def run_module(module: str, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess:
    """``python -m module *args`` in a fresh process from the repository root, on the CPU with
    TensorFlow's C++ logging quiet; stdout and stderr captured as text, the exit status not checked."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=timeout,
    )


def run_with_devices(code: str, num_devices: int = 8, timeout: float = 600.0) -> str:
    """Runs ``code`` in a fresh Python with ``num_devices`` emulated CPU devices.

    XLA reads ``--xla_force_host_platform_device_count`` once, when JAX starts, so
    multi-device tests cannot share the test process. Returns the child's stdout;
    fails the calling test with the child's stderr when it exits non-zero.
    """
    env = dict(os.environ)
    # Added to the XLA_FLAGS of the tests (tests/conftest.py), which the child keeps.
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={num_devices}"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=timeout,
    )
    if proc.returncode != 0:
        pytest.fail(f"subprocess with {num_devices} devices failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout
