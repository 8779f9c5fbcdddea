"""``import jax231`` keeps XLA:CPU's per-call temporaries mapped (jax231/_host_malloc.py).

The setting is process-wide and made at import, so the probes run in fresh interpreters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from jax231 import _host_malloc

# A jitted program whose temporary (the sine of a 2**19 x 64 float32 array, 128 MiB, fed to a dot) is
# bigger than a glibc thread arena's 64 MiB heap, so without the tuning every call maps it afresh.
_PROBE = """
import json, resource
import jax, jax.numpy as jnp
import jax231
from jax231 import _host_malloc
x = jnp.ones((2**19, 64), jnp.float32)
w = jnp.full((64, 64), 1e-3, jnp.float32)
f = jax.jit(lambda x, w: (jnp.sin(x) @ w).sum())
faults = []
for _ in range(10):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    f(x, w).block_until_ready()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"applied": _host_malloc.APPLIED, "faults": faults}))
"""

_TEMPORARY_PAGES = 2**19 * 64 * 4 // 4096
"""4 KiB pages in the probe's 128 MiB temporary."""


def _probe(**env_overrides: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _host_malloc.ENVIRONMENT}
    env.update(env_overrides)
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


needs_glibc = pytest.mark.skipif(
    _host_malloc._glibc() is None, reason="the tuning is glibc's mallopt; this C library is not glibc"
)


@needs_glibc
def test_calls_after_warm_up_fault_no_temporary_pages_in():
    tuned, untuned = _probe(), _probe(**{_host_malloc.DISABLE_VARIABLE: "0"})
    assert tuned["applied"] and not untuned["applied"]
    # Untuned, every call faults at least half of the temporary in again: the effect being removed exists here.
    assert min(untuned["faults"][5:]) > _TEMPORARY_PAGES // 2, untuned["faults"]
    # Tuned, once the heap has grown to the program's peak (a few calls), a call faults in under
    # 1% of one temporary's pages (Python's own small allocations and XLA's bookkeeping).
    assert min(tuned["faults"][5:]) < _TEMPORARY_PAGES // 100, tuned["faults"]


@needs_glibc
def test_a_users_malloc_variable_wins():
    assert not _probe(MALLOC_ARENA_MAX="4")["applied"]


@pytest.fixture
def clean_environment(monkeypatch):
    """None of the variables skip_reason reads is set."""
    for name in _host_malloc.ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("JAX231_HOST_MALLOC", "0", "JAX231_HOST_MALLOC=0"),
        ("MALLOC_MMAP_MAX_", "8", "the user sets MALLOC_MMAP_MAX_"),
        ("GLIBC_TUNABLES", "glibc.malloc.arena_max=2", "the user sets glibc.malloc tunables"),
        ("LD_PRELOAD", "/usr/lib/libjemalloc.so.2", "another allocator is preloaded"),
    ],
)
def test_skip_reasons(clean_environment, monkeypatch, variable, value, reason):
    monkeypatch.setenv(variable, value)
    assert _host_malloc.skip_reason() == reason
    assert _host_malloc.apply() is False


def test_no_glibc_is_a_skip(clean_environment, monkeypatch):
    monkeypatch.setattr(_host_malloc, "_glibc", lambda: None)
    assert _host_malloc.skip_reason() == "the C library is not glibc"
