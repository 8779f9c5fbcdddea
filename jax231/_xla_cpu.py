"""XLA:CPU convolutions in Eigen's kernels instead of YNNPACK's, set before the CPU backend starts.

jaxlib 0.10 hands every 2-D float32 convolution of XLA:CPU to YNNPACK
(``ynn_fusion`` in the optimized HLO), and its filter gradient there -- a
convolution whose window is the whole feature map (``window={size=16x16}``,
batch as the feature axis) -- runs 2-3x slower than XLA's own Eigen kernel.
Measured on the 2-core reference CPU, batch 128, float32, one thread (``taskset -c 1``,
CPU ms per call, min of 5 interleaved rounds, load 8-10 from other jobs):

=====================  ==================  ===============  =========================
layer                  filter grad, YNN    Eigen (flag on)  PyTorch 2.13 (oneDNN)
=====================  ==================  ===============  =========================
32x32, 3->32           16.1                7.4              3.9
16x16, 32->64          39.7                14.5             8.4
8x8, 64->128           22.4                10.7             8.0
=====================  ==================  ===============  =========================

Turning YNNPACK off altogether (``--xla_cpu_experimental_ynn_fusion_type=``) loses
more than it gains: the batch-norm reductions then run as XLA's loop
reductions, 2-4x slower (the whole VGG train step went from 212 to 223 CPU ms). The
flag set here, ``-individual_convolution``, takes only the convolutions away from
YNNPACK and keeps its reductions and dots: the ``cifar10_cnn`` preset's train step
(batch 128, Adam) went from 232 to 176 CPU ms on one thread, 152 with the first
layer as XLA's convolution instead of im2col (jax231's own timing of the step, pinned
to one core). ResNet-20's step: 802 -> 628 CPU ms. The speedrun's ``cpu93`` update at
batch 1,024 (``python -m experiments.speedrun.measure cpu93 xla``, CPU-s per update inside
``fit``'s loop): ``'xla'`` 12.36 -> 4.78, ``'im2col'`` 6.09 -> 6.13.

:func:`apply` runs at ``import jax231``. It appends the flag to ``XLA_FLAGS`` unless
* the environment variable ``JAX231_XLA_CPU_FLAGS=0`` is set (the escape hatch),
* ``XLA_FLAGS`` already names ``xla_cpu_experimental_ynn_fusion_type`` (the user's choice wins),
* jaxlib is not a 0.10 release (other versions may not know the flag, and an
  unknown flag aborts the process), or
* a JAX backend has already started (the flag would not take effect; then
  nothing is changed and :data:`APPLIED` stays False).
It changes only how XLA:CPU runs convolutions (float32 rounding of their sums),
no other backend.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata

FLAG = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
"""The XLA flag :func:`apply` adds."""

DISABLE_VARIABLE = "JAX231_XLA_CPU_FLAGS"
"""Set it to ``0`` to leave ``XLA_FLAGS`` alone."""

TESTED_JAXLIB = "0.10."
"""jaxlib releases the flag was measured with (version prefix)."""

APPLIED = False
"""Whether :func:`apply` added :data:`FLAG` in this process."""

__all__ = ["APPLIED", "DISABLE_VARIABLE", "FLAG", "apply"]


def _backend_started() -> bool:
    bridge = sys.modules.get("jax._src.xla_bridge")
    started = getattr(bridge, "backends_are_initialized", None)
    return bool(started and started())


def _jaxlib_version() -> str:
    try:
        return metadata.version("jaxlib")
    except metadata.PackageNotFoundError:  # pragma: no cover - jax always brings jaxlib
        return ""


def apply() -> bool:
    """Adds :data:`FLAG` to ``XLA_FLAGS`` when it is safe and useful (module docstring).

    Returns:
      Whether the flag was added now (also stored in :data:`APPLIED`).
    """
    global APPLIED
    flags = os.environ.get("XLA_FLAGS", "")
    if (
        os.environ.get(DISABLE_VARIABLE, "1") == "0"
        or "xla_cpu_experimental_ynn_fusion_type" in flags
        or not _jaxlib_version().startswith(TESTED_JAXLIB)
        or _backend_started()
    ):
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {FLAG}".strip()
    APPLIED = True
    return True


def convolutions_in_eigen() -> bool:
    """Whether ``XLA_FLAGS`` takes XLA:CPU's convolutions away from YNNPACK (by :func:`apply` or the user).

    Reads the last ``--xla_cpu_experimental_ynn_fusion_type=`` value: a list of
    ``+name`` / ``-name`` edits the default set (which holds the convolutions),
    a plain list replaces it.
    """
    value = None
    for token in os.environ.get("XLA_FLAGS", "").split():
        if token.lstrip("-").startswith("xla_cpu_experimental_ynn_fusion_type="):
            value = token.split("=", 1)[1]
    if value is None:
        return False
    names = [n for n in value.split(",") if n]
    if names and all(n[0] in "+-" for n in names):
        return "-individual_convolution" in names
    return "individual_convolution" not in names
