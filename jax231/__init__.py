"""jax231: the methods of Stanford CS231n as pure JAX functions.

Subpackages:
  * :mod:`jax231.models` -- layers (``jax231.models.layers``) and models as ``init``/``apply`` pairs.
  * :mod:`jax231.losses` -- SVM hinge, softmax cross-entropy, penalties, accuracy.
  * :mod:`jax231.gradcheck` -- centred-difference gradient checking.
  * :mod:`jax231.optimizers` -- hand-written update rules speaking optax's protocol.
  * :mod:`jax231.pipelines` -- TFDS input pipelines, offline datasets, preprocessing, augmentation.
  * :mod:`jax231.training` -- train/eval steps, guards, checkpoints, logging.
  * :mod:`jax231.parallel` -- vmapped sweeps, data parallelism and multi-host set-up.
  * :mod:`jax231.cluster` -- k-means (Lloyd's algorithm as a jitted while loop, k-means++ seeding).

Subpackages are imported lazily so that ``import jax231`` stays cheap.
"""

from jax231 import _host_malloc, _lapack_threads, _xla_cpu

__version__ = "0.1.0"

# Before any JAX backend starts: XLA:CPU's convolutions in Eigen, not YNNPACK (measured in _xla_cpu).
_xla_cpu.apply()
# Before XLA's worker threads start: its per-call temporaries reuse glibc's heap, not fresh mmaps (_host_malloc).
_host_malloc.apply()
# jaxlib's CPU LAPACK (eigh, svd, ...) on one OpenBLAS thread: its own pool fights XLA's (_lapack_threads.py).
_lapack_threads.pin_lapack_threads()
