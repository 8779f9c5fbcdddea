"""Keep XLA:CPU's per-call temporaries mapped: glibc malloc tuned at ``import jax231``.

Each call of a compiled XLA:CPU program allocates its temporaries as one block (a ResNet-20 train
step at batch 128: ~230 MB) with ``posix_memalign`` from one of XLA's worker threads, and frees it
when the call ends. glibc serves a block that large with a fresh ``mmap`` (a worker thread's
arena grows in heaps of at most 64 MB, and any block over ``M_MMAP_THRESHOLD``, at most 32 MB,
is mapped anyway) and unmaps it on ``free``, so every call page-faults its whole temporary
buffer in again and the kernel zeroes each page. Measured on the 2-core reference CPU (AMD
Zen 5) with ``benchmarks.bench_cnn.jax231_step('resnet20')``: 6 calls after 3 of warm-up,
``resource.getrusage`` around them, a test run sharing the machine:

====================================  ===============  ===========  ==========
glibc malloc                          minor faults     CPU ms/step  of it sys
====================================  ===============  ===========  ==========
default                               49,486 / step    410          151
``M_ARENA_MAX=1`` only                49,474 / step    360          102
the settings below                    0                269          3
====================================  ===============  ===========  ==========

(Set as glibc's environment variables for that row; set by :func:`apply` at import, the heap
grows for the first ~5 calls and then no call faults.) ``fit``'s compiled loop (``run_steps`` of
5 steps per call) went from 10,033 faults and 317 CPU ms per step to 0 and 267. In
``benchmarks/bench_cnn.py`` the ResNet-20 jitted step went from 0.78x to 1.06-1.07x PyTorch's
images/s (PyTorch runs in the same process, under the same settings).

:func:`apply` makes the process's big blocks come from glibc's main heap and stay there:

* ``M_ARENA_MAX = 1``: threads created from now on (XLA's pool starts with the first backend)
  share the main arena, which grows with ``brk`` and has no 64 MB heap limit;
* ``M_MMAP_MAX = 0``: no block is served by ``mmap``;
* ``M_TRIM_THRESHOLD = 2**31 - 1``: freed memory at the top of the heap is kept, up to 2 GiB,
  instead of being handed back after every call.

The cost: the process's resident memory stays at its peak (the ResNet-20 probe's ``maxrss``:
905 MB instead of 771 MB), and every thread's ``malloc`` takes the one arena's lock. It changes no
number a program computes.

It is skipped, and :data:`APPLIED` stays False, when

* ``JAX231_HOST_MALLOC=0`` is set (the escape hatch),
* the user tunes glibc malloc already (``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_MAX_``,
  ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TOP_PAD_`` or
  ``glibc.malloc`` in ``GLIBC_TUNABLES``) or preloads another allocator (``LD_PRELOAD``
  naming a ``malloc`` library: jemalloc, tcmalloc, mimalloc), or
* the C library is not glibc (macOS, musl): there is no ``mallopt`` to call.

Calling it after a JAX backend has started still takes effect for new blocks, but XLA's worker
threads keep the arenas they already have, so most of the gain is lost; ``import jax231`` before
the first JAX computation.
"""

from __future__ import annotations

import ctypes
import functools
import os

DISABLE_VARIABLE = "JAX231_HOST_MALLOC"
"""Set it to ``0`` to leave glibc malloc's settings alone."""

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8
"""``mallopt`` parameter numbers, from glibc's ``<malloc.h>``."""

SETTINGS: tuple[tuple[int, int], ...] = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1))
"""``(mallopt parameter, value)`` pairs that :func:`apply` sets, in order."""

USER_VARIABLES = (
    "MALLOC_ARENA_MAX",
    "MALLOC_MMAP_MAX_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TOP_PAD_",
)
"""glibc's own environment variables for these settings: when one is set, the user's choice wins."""

ENVIRONMENT = (DISABLE_VARIABLE, *USER_VARIABLES, "GLIBC_TUNABLES", "LD_PRELOAD")
"""Every variable :func:`skip_reason` reads."""

APPLIED = False
"""Whether :func:`apply` changed glibc malloc's settings in this process."""

__all__ = ["APPLIED", "DISABLE_VARIABLE", "ENVIRONMENT", "SETTINGS", "apply", "skip_reason"]


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """This process's C library when it is glibc (it has ``mallopt``), else ``None``."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:  # pragma: no cover - every CPython can open its own process
        return None
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return None
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    libc.mallopt.restype = ctypes.c_int
    return libc


def skip_reason() -> str | None:
    """Why :func:`apply` would leave malloc alone in this process, or ``None`` when it would not."""
    if os.environ.get(DISABLE_VARIABLE, "1") == "0":
        return f"{DISABLE_VARIABLE}=0"
    user = [name for name in USER_VARIABLES if name in os.environ]
    if user:
        return f"the user sets {user[0]}"
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return "the user sets glibc.malloc tunables"
    if "malloc" in os.environ.get("LD_PRELOAD", ""):
        return "another allocator is preloaded"
    if _glibc() is None:
        return "the C library is not glibc"
    return None


def apply() -> bool:
    """Sets :data:`SETTINGS` with glibc's ``mallopt`` unless :func:`skip_reason` says not to.

    Returns:
      Whether the settings were made now (also stored in :data:`APPLIED`).
    """
    global APPLIED
    if skip_reason() is not None:
        return False
    libc = _glibc()
    assert libc is not None  # skip_reason checked it
    # mallopt returns 1 on success; a value glibc refuses leaves that setting as it was.
    APPLIED = all(libc.mallopt(parameter, value) == 1 for parameter, value in SETTINGS)
    return APPLIED
