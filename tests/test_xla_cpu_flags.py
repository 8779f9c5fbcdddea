"""``import jax231`` takes XLA:CPU's convolutions away from YNNPACK (jax231/_xla_cpu.py), safely.

Each case runs in a fresh interpreter: the flag matters only before a JAX backend starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from jax231 import _xla_cpu

PROBE = """
import json, os, sys
pre = sys.argv[1]
if pre == "jax_first":
    import jax.numpy as jnp
    jnp.ones(1)  # starts the CPU backend before jax231 is imported
import jax231
import jax, jax.numpy as jnp
from jax import lax
from jax231 import _xla_cpu
x, w = jnp.ones((2, 8, 8, 32)), jnp.ones((3, 3, 32, 32))
conv = jax.jit(lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))
hlo = conv.lower(x, w).compile().as_text()
print(json.dumps({"applied": _xla_cpu.APPLIED, "flags": os.environ.get("XLA_FLAGS", ""),
                  "ynn_conv": "__ynn_fusion" in hlo, "eigen": _xla_cpu.convolutions_in_eigen()}))
"""


def _probe(env_update: dict, pre: str = "") -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", _xla_cpu.DISABLE_VARIABLE)}
    env.update(env_update)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, pre], env=env, capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _tested_jaxlib() -> bool:
    return _xla_cpu._jaxlib_version().startswith(_xla_cpu.TESTED_JAXLIB)


def test_import_sets_the_flag_and_convolutions_leave_ynnpack():
    if not _tested_jaxlib():
        pytest.skip(f"jaxlib {_xla_cpu._jaxlib_version()} is not the measured {_xla_cpu.TESTED_JAXLIB}x")
    got = _probe({"XLA_FLAGS": "--xla_cpu_enable_fast_math=false"})
    assert got["applied"] and got["eigen"]
    assert got["flags"] == f"--xla_cpu_enable_fast_math=false {_xla_cpu.FLAG}"  # appended, others kept
    assert not got["ynn_conv"]


def test_escape_hatch_and_late_import_leave_xla_flags_alone():
    if not _tested_jaxlib():
        pytest.skip(f"jaxlib {_xla_cpu._jaxlib_version()} is not the measured {_xla_cpu.TESTED_JAXLIB}x")
    off = _probe({_xla_cpu.DISABLE_VARIABLE: "0"})
    assert not off["applied"] and off["flags"] == "" and off["ynn_conv"] and not off["eigen"]
    late = _probe({}, pre="jax_first")
    assert not late["applied"] and late["flags"] == ""


def test_a_users_own_ynn_setting_wins():
    if not _tested_jaxlib():
        pytest.skip(f"jaxlib {_xla_cpu._jaxlib_version()} is not the measured {_xla_cpu.TESTED_JAXLIB}x")
    own = "--xla_cpu_experimental_ynn_fusion_type=individual_convolution"
    got = _probe({"XLA_FLAGS": own})
    assert not got["applied"] and got["flags"] == own and got["ynn_conv"] and not got["eigen"]
