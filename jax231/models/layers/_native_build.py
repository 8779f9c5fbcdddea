"""Build, cache and load jax231's native XLA:CPU kernels (``_native_conv.cc``) on first use.

The kernels are C++ XLA FFI handlers (``jax.ffi``). There is no compiled
extension in the package: the first call that needs them compiles the source
with the machine's C++ compiler (``$CXX``, else ``c++`` or ``g++``) for the
machine's own CPU (``-march=native``), about 20 s once, and keeps the shared
library in a cache directory keyed by everything that changes the binary (the
source, the flags, the compiler's version, jaxlib's FFI headers and the CPU's
instruction-set flags):

* ``$JAX231_NATIVE_CACHE`` if set, else ``$XDG_CACHE_HOME/jax231/native``,
  else ``~/.cache/jax231/native``;
* the library is written to a temporary name and moved into place with
  ``os.replace``, so processes that build at once (pytest-xdist workers) never
  load a half-written file.

:func:`load` answers a :class:`NativeLibrary`: ``available`` and, when not,
``reason`` (no compiler, a compile error, ``JAX231_NATIVE_KERNELS=0``, a
non-x86/ARM host...), so callers can fall back to XLA's own kernels and say why.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple, Optional

import jax
import jaxlib

SOURCE = Path(__file__).with_name("_native_conv.cc")
"""The C++ source of the kernels."""

DISABLE_VARIABLE = "JAX231_NATIVE_KERNELS"
"""Set it to ``0`` to never build or use the native kernels (``impl='auto'`` then means XLA's)."""

CACHE_VARIABLE = "JAX231_NATIVE_CACHE"
"""Directory for the built library (default ``~/.cache/jax231/native``)."""

FLAGS = ("-O3", "-march=native", "-std=gnu++17", "-ffp-contract=fast", "-shared", "-fPIC", "-w")
"""Compiler flags. ``-ffp-contract=fast`` lets a multiply and an add become one FMA."""

TARGETS = {
    ("forward", "float32"): "Jax231ConvForwardF32",
    ("forward", "float64"): "Jax231ConvForwardF64",
    ("filter_grad", "float32"): "Jax231ConvFilterGradF32",
    ("filter_grad", "float64"): "Jax231ConvFilterGradF64",
}
"""(kernel, dtype) -> exported handler symbol; each is registered as FFI target ``jax231_<symbol>``."""

__all__ = ["CACHE_VARIABLE", "DISABLE_VARIABLE", "NativeLibrary", "load", "target_name"]


class NativeLibrary(NamedTuple):
    """Whether the native kernels can be used in this process, and why not."""

    available: bool
    reason: str = ""
    path: Optional[Path] = None


def target_name(kernel: str, dtype: str) -> str:
    """The FFI target of ``kernel`` (``'forward'`` / ``'filter_grad'``) for ``dtype``."""
    return "jax231_" + TARGETS[(kernel, dtype)]


def _compiler() -> Optional[str]:
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def cache_dir() -> Path:
    """Where built libraries live (see the module docstring)."""
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "jax231" / "native"


def _build(compiler: str) -> Path:
    include = jax.ffi.include_dir()
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60).stdout
    key = hashlib.sha256(
        "\0".join(
            [SOURCE.read_text(), " ".join(FLAGS), version, jaxlib.__version__, _cpu_flags(), platform.machine()]
        ).encode()
    ).hexdigest()[:16]
    path = cache_dir() / f"jax231_native_conv_{key}.so"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        result = subprocess.run(
            [compiler, *FLAGS, f"-I{include}", str(SOURCE), "-o", tmp], capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0:
            first = next((line for line in result.stderr.splitlines() if "error" in line), result.stderr.strip())
            raise RuntimeError(f"{Path(compiler).name} failed: {first[:300]}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


@functools.cache
def load() -> NativeLibrary:
    """Builds (once per machine) and loads the kernels, and registers them with XLA:CPU.

    Never raises: a failure is an unavailable :class:`NativeLibrary` with the reason.
    """
    if os.environ.get(DISABLE_VARIABLE, "1") == "0":
        return NativeLibrary(False, f"{DISABLE_VARIABLE}=0 is set")
    if sys.platform == "win32" or platform.machine().lower() not in ("x86_64", "amd64", "aarch64", "arm64"):
        return NativeLibrary(False, f"no native kernels for {sys.platform}/{platform.machine()}")
    compiler = _compiler()
    if compiler is None:
        return NativeLibrary(False, "no C++ compiler on PATH (set CXX, or install g++)")
    try:
        path = _build(compiler)
        library = ctypes.cdll.LoadLibrary(str(path))
        for symbol in TARGETS.values():
            jax.ffi.register_ffi_target("jax231_" + symbol, jax.ffi.pycapsule(getattr(library, symbol)), platform="cpu")
    except (OSError, RuntimeError, subprocess.SubprocessError, AttributeError) as error:
        return NativeLibrary(False, str(error).splitlines()[0] if str(error) else type(error).__name__)
    return NativeLibrary(True, "", path)
