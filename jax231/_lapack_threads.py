"""Run JAX's CPU LAPACK calls (``eigh``, ``svd``, ``qr``, ``cholesky``, ...) on one OpenBLAS thread.

On the CPU, jaxlib takes its LAPACK routines from SciPy (``scipy.linalg.cython_lapack``), so every
``jnp.linalg.eigh`` runs in SciPy's bundled OpenBLAS, whose own thread pool is separate from XLA's
intra-op pool. The two pools then compete for the same cores, and OpenBLAS's threads busy-wait for
each other. Measured on the 2-core reference machine (jaxlib 0.10.2, OpenBLAS 0.3.30, load average
about 13 from other jobs), jitted ``jnp.linalg.eigh`` of an ``n x n`` float32 SPD matrix, mean of 10:

    n      OpenBLAS default (2 threads)    one thread
    100    78 ms CPU, 240 ms wall          0.57 ms CPU, 1.3 ms wall
    125    101 ms CPU, 313 ms wall         0.88 ms CPU, 2.9 ms wall
    256    282 ms CPU, 910 ms wall         3.7 ms CPU, 12 ms wall

That was the whole cost of Shampoo in ``algoperf_mini`` (its exact ``eigh`` per factor per step:
978 s for one sweep on the MNIST-1D CNN, against 37-61 s for every first-order rule).

:func:`pin_lapack_threads` (called when ``jax231`` is imported) sets SciPy's OpenBLAS to
``JAX231_LAPACK_THREADS`` threads (default 1; ``0`` leaves OpenBLAS's own default). NumPy's
separate OpenBLAS (``numpy.linalg``, ``@`` on arrays) is left alone, so NumPy peers in
``benchmarks/`` keep every core.

Cost: it loads ``scipy.linalg`` at ``import jax231`` (0.17 s of the bare import on the quiet
machine, after ``import jax``'s 0.45 s). jaxlib loads that same library at its first LAPACK call,
and ``jax231.pipelines`` imports scikit-learn, which loads it too, so a real run pays it once
either way. Pinning later, at the first ``eigh``, is not possible: jaxlib gives no hook there.
"""

from __future__ import annotations

import os

import scipy.linalg.cython_lapack  # noqa: F401  (loads the library that jaxlib's LAPACK calls live in)
import threadpoolctl

ENV_VAR = "JAX231_LAPACK_THREADS"


def _requested_threads() -> int:
    raw = os.environ.get(ENV_VAR, "1")
    try:
        threads = int(raw)
    except ValueError:
        raise ValueError(f"{ENV_VAR}: expected a non-negative integer, got {raw!r}") from None
    if threads < 0:
        raise ValueError(f"{ENV_VAR}: expected a non-negative integer, got {raw!r}")
    return threads


def scipy_blas_controllers() -> list[threadpoolctl.LibController]:
    """threadpoolctl's controllers of the BLAS libraries bundled with SciPy (jaxlib's CPU LAPACK)."""
    controller = threadpoolctl.ThreadpoolController()
    return [lib for lib in controller.lib_controllers if "scipy" in os.path.basename(os.path.dirname(lib.filepath))]


def pin_lapack_threads() -> int | None:
    """Sets SciPy's BLAS (jaxlib's CPU LAPACK) to ``JAX231_LAPACK_THREADS`` threads; returns that number.

    Returns ``None`` (and changes nothing) when the variable is ``0`` or threadpoolctl finds no
    SciPy BLAS.
    """
    threads = _requested_threads()
    if threads == 0:
        return None
    libraries = scipy_blas_controllers()
    for library in libraries:
        library.set_num_threads(threads)
    return threads if libraries else None
