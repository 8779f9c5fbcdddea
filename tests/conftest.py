"""Test-session set-up: TensorFlow quiet; one persistent JAX compilation cache for the session.

Many tests compile the same program in another process: the kill -9 runs and their
resumption, the disk-full and umask runs of the train main, both xdist workers. JAX's
persistent compilation cache (``jax_compilation_cache_dir``) lets every process after the
first load the compiled executable instead of compiling it again. The cache is a fresh
temporary folder made by the first process of the session (pytest itself, before it starts
the xdist workers), handed to the workers and to every subprocess through the environment
(``JAX_COMPILATION_CACHE_DIR``, read when JAX starts), and removed when that process ends.
An executable loaded from the cache is the one XLA compiled: results are bitwise the same
(``tests/reliability/test_kill.py`` compares a resumed run with a fresh one bitwise). A cache
folder the user set already is kept.

The tests' programs are tiny: compiling them, not running them, is most of the suite's time.
XLA:CPU is told to emit its fusions with its classic LLVM IR emitters instead of the newer
MLIR pipeline (``--xla_cpu_use_fusion_emitters=false``, added to ``XLA_FLAGS`` before JAX
starts, so the workers and every subprocess see it too), which compiles faster: the
train-experiment and kill tests (55 tests, ``-n 0``) take 83 CPU-s instead of 114. The HLO
passes (fusion decisions, layouts, simplification) are unchanged, and so were the numbers
where compared (the tiny speedrun reached the same test accuracy to the digit).
``--xla_backend_optimization_level=0`` would save another ~20% but is not used: LLVM without
its optimisations contracts fewer multiply-adds, and the L-BFGS / NAdam / Muon convergence
tests on ill-conditioned problems (``tests/optimizers``) then missed their iteration budgets.
An option the user set in ``XLA_FLAGS`` is kept, and the flag is left out where a GPU plugin
is installed.
"""

import importlib.util
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_FAST_COMPILE_FLAGS = ("--xla_cpu_use_fusion_emitters=false",)
_GPU_PLUGINS = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "jax_rocm7_plugin")
if not any(importlib.util.find_spec(name) for name in _GPU_PLUGINS):
    _user_flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = " ".join(
        [_user_flags] + [flag for flag in _FAST_COMPILE_FLAGS if flag.split("=")[0] not in _user_flags]
    ).strip()

_OWN_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ
if _OWN_CACHE:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="jax231-tests-xla-cache-")
# Every program, however fast it compiled (the default caches only those over 1 s).
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")

import jax  # noqa: E402  after the environment above, which JAX reads when it starts

# In case a plugin imported JAX before this file set the environment.
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update(
    "jax_persistent_cache_min_compile_time_secs", float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"])
)
jax.config.update(
    "jax_persistent_cache_min_entry_size_bytes", int(os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"])
)


def pytest_unconfigure(config):
    """The process that made the cache folder removes it (the workers only used it)."""
    if _OWN_CACHE and not hasattr(config, "workerinput"):
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


# Units that run long on one xdist worker (a module-wide fixture, or several processes in one
# test): collected first, so that the other worker fills the time with short tests instead of
# idling at the end of the run behind one of them (xdist hands work out in collection order).
LONG_FIRST = (
    "tests/reliability/test_kill.py",
    "tests/reliability/test_cli.py",
    "tests/parallel/test_data_parallel.py",
    "tests/parallel/test_distributed.py",
    "tests/rl/test_agents.py",
    "tests/reliability/test_checkpoints.py",
)


def pytest_collection_modifyitems(config, items):
    """Moves the modules of :data:`LONG_FIRST` to the front, each in its own order."""
    rank = {path: i for i, path in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(LONG_FIRST)))
