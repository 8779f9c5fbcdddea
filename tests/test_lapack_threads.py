"""``import jax231`` puts jaxlib's CPU LAPACK (SciPy's OpenBLAS) on ``JAX231_LAPACK_THREADS`` threads.

Each case runs in a fresh interpreter: the setting is process-wide and made at import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

_PROBE = """
import json, os, threadpoolctl
import jax231
from jax231 import _lapack_threads
scipy_libs = _lapack_threads.scipy_blas_controllers()
others = [lib for lib in threadpoolctl.ThreadpoolController().lib_controllers if lib not in scipy_libs]
print(json.dumps({"scipy": [lib.num_threads for lib in scipy_libs],
                  "numpy": [lib.num_threads for lib in others if "numpy" in lib.filepath]}))
"""


def _probe(value: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("JAX231_LAPACK_THREADS", None)
    if value is not None:
        env["JAX231_LAPACK_THREADS"] = value
    return subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, timeout=120)


def _threads(value: str | None) -> dict:
    result = _probe(value)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_default_is_one_scipy_thread_and_numpy_untouched():
    pinned, untouched = _threads(None), _threads("0")
    assert pinned["scipy"] and all(n == 1 for n in pinned["scipy"])
    # NumPy's own OpenBLAS keeps its default (what it has when jax231 changes nothing).
    assert pinned["numpy"] == untouched["numpy"]


_PLAIN = """
import json, os, threadpoolctl
import scipy.linalg.cython_lapack
print(json.dumps([lib.num_threads for lib in threadpoolctl.ThreadpoolController().lib_controllers
                  if "scipy" in os.path.basename(os.path.dirname(lib.filepath))]))
"""


def test_explicit_count_and_zero_leaves_default():
    assert all(n == 2 for n in _threads("2")["scipy"])
    plain = subprocess.run([sys.executable, "-c", _PLAIN], capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0, plain.stderr[-2000:]
    # '0': SciPy's OpenBLAS keeps the thread count it has in a process that never imported jax231.
    assert _threads("0")["scipy"] == json.loads(plain.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("bad", ["two", "-1"])
def test_bad_value_is_one_line_naming_the_variable(bad):
    result = _probe(bad)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"ValueError: JAX231_LAPACK_THREADS: expected a non-negative integer, got {bad!r}"
