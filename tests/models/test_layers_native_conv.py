"""``conv2d(impl='native')``: jax231's own XLA:CPU kernels equal XLA's convolution, value and gradients.

Each of the three maps (forward, input gradient, filter gradient) is checked against
``lax.conv_general_dilated`` and its autodiff in float32 (forward and VJP), against centred
differences in float64 (``gradcheck``), through a gradient of a gradient, under ``vmap`` and
inside a compiled training loop; the filter gradient's bits do not depend on the number of
threads. The kernels are compiled on first use with the machine's C++ compiler: without one
these tests are skipped, and say so.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import gradcheck, training
from jax231.models import layers as L
from jax231.models.layers import _conv, _native, _native_build
from tests.test_utils import x64

LIBRARY = _native_build.load()
pytestmark = pytest.mark.skipif(not LIBRARY.available, reason=f"native kernels unavailable: {LIBRARY.reason}")

# float32: the kernels sum the same F*F*C (forward) or N*H*W (filter gradient) products as XLA's
# kernel in another order. Sums of up to ~10^4 terms with cancellation: the difference is a few ulps
# of the largest partial sum, so it is bounded relative to the largest output (eps 6e-8 x sqrt(10^4)
# ~ 6e-6), not elementwise.
NORMALIZED_TOL32 = 1e-5
GRADCHECK_TOL = 1e-7  # float64 centred differences, as every other layer's gradient check

CASES = [  # (x shape, w shape, stride, padding): which kernels apply is asserted per case
    ((2, 9, 9, 16), (3, 3, 16, 16), 1, 1),  # all three native
    ((3, 8, 8, 16), (3, 3, 16, 32), 2, "SAME"),  # stride 2: input gradient by XLA
    ((2, 7, 7, 3), (3, 3, 3, 64), 2, 1),  # RGB input
    ((5, 9, 9, 16), (1, 1, 16, 32), 2, 0),  # 1x1 shortcut
    ((2, 10, 10, 8), (2, 2, 8, 16), 1, 0),  # 2x2 (the speedrun's whitening layer)
    ((2, 26, 26, 32), (3, 3, 32, 16), 1, 0),  # VALID, wider than one register tile
    ((2, 12, 12, 3), (5, 5, 3, 16), 1, 2),  # 5x5: filter gradient by XLA
    ((2, 11, 11, 16), (3, 3, 16, 24), 1, 1),  # C_out not a multiple of 16: only the input gradient
    ((3, 30, 30, 16), (3, 3, 16, 128), 1, 1),  # 8 channel vectors per tile
]
EXPECTED_PLANS = [
    ("native", "native", "native"),
    ("native", "xla", "native"),
    ("native", "xla", "native"),
    ("native", "xla", "native"),
    ("native", "xla", "native"),
    ("native", "native", "native"),
    ("native", "xla", "xla"),
    ("xla", "native", "xla"),
    ("native", "native", "native"),
]


def _randn(seed: int, *shape: int, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _assert_close_normalized(got, want, tol=NORMALIZED_TOL32):
    """``max|got - want| <= tol * max|want|`` leaf by leaf."""
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        assert g.shape == w.shape
        assert np.max(np.abs(g - w)) <= tol * np.max(np.abs(w)), (np.max(np.abs(g - w)), np.max(np.abs(w)))


def _pads(x_shape, w_shape, stride, padding):
    pads = padding if isinstance(padding, str) else [(padding, padding)] * 2
    return _conv._pads_2d(pads, x_shape, w_shape, stride)


@pytest.mark.parametrize("case,expected", list(zip(CASES, EXPECTED_PLANS)), ids=[str(c[1]) for c in CASES])
def test_plan_takes_every_kernel_that_applies(case, expected):
    x_shape, w_shape, stride, padding = case
    p = _native.plan(x_shape, w_shape, "float32", stride=stride, pads=_pads(*case), everywhere=True)
    assert (p.forward, p.input_grad, p.filter_grad) == expected


@pytest.mark.parametrize("x_shape,w_shape,stride,padding", CASES, ids=[str(c[1]) for c in CASES])
def test_native_conv_equals_xla_conv_and_its_vjp(x_shape, w_shape, stride, padding):
    x, w, b = _randn(0, *x_shape), _randn(1, *w_shape), _randn(2, w_shape[-1])
    outs = {}
    for impl in ("xla", "native"):
        f = jax.jit(lambda x, w, b, impl=impl: L.conv2d(x, w, b, stride=stride, padding=padding, impl=impl))
        out, pullback = jax.vjp(f, x, w, b)
        outs[impl] = (out, pullback(jnp.asarray(_randn(7, *out.shape))))
    _assert_close_normalized(outs["native"], outs["xla"])


def test_native_kernels_are_in_the_compiled_program():
    x, w = _randn(0, 2, 9, 9, 16), _randn(1, 3, 3, 16, 16)
    loss = lambda x, w: jnp.sum(L.conv2d(x, w, padding=1, impl="native") ** 2)  # noqa: E731
    text = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(x, w).as_text()
    assert text.count(_native_build.target_name("forward", "float32")) == 2  # forward and input gradient
    assert text.count(_native_build.target_name("filter_grad", "float32")) == 1


def test_native_conv_gradient_check_float64():
    with x64():
        for x_shape, w_shape, stride, padding in [
            ((2, 7, 7, 8), (3, 3, 8, 8), 1, 1),
            ((2, 7, 7, 3), (3, 3, 3, 8), 2, 1),
        ]:
            x, w = _randn(0, *x_shape, dtype=np.float64), _randn(1, *w_shape, dtype=np.float64)
            f = lambda x, w: L.conv2d(x, w, stride=stride, padding=padding, impl="native")  # noqa: E731
            assert gradcheck.check_grads(f, x, w, argnums=(0, 1)) < GRADCHECK_TOL


def test_gradient_of_gradient_is_as_accurate_as_xla():
    """The gradient of a gradient's squared norm, against a float64 reference: native no worse than XLA."""
    x, w = _randn(0, 2, 9, 9, 16), _randn(1, 3, 3, 16, 16)

    def penalty(impl, x, w):
        def grad_norm(x, w):
            g = jax.grad(lambda x, w: jnp.sum(jnp.tanh(L.conv2d(x, w, padding=1, impl=impl))), argnums=(0, 1))(x, w)
            return sum(jnp.sum(t**2) for t in g)

        return jax.jit(jax.grad(grad_norm, argnums=(0, 1)))(x, w)

    with x64():
        reference = [np.asarray(r) for r in penalty("xla", x.astype(np.float64), w.astype(np.float64))]
    for impl_got, impl_xla, ref in zip(penalty("native", x, w), penalty("xla", x, w), reference):
        err = lambda a: float(np.max(np.abs(np.asarray(a, np.float64) - ref)) / np.max(np.abs(ref)))  # noqa: E731
        assert err(impl_got) <= 2 * err(impl_xla) + 1e-6, (err(impl_got), err(impl_xla))


def test_vmap_equals_the_unbatched_convolutions():
    x, w = _randn(0, 3, 2, 9, 9, 16), _randn(1, 3, 3, 3, 16, 16)
    f = lambda x, w: L.conv2d(x, w, padding=1, impl="native")  # noqa: E731
    got = jax.jit(jax.vmap(jax.grad(lambda x, w: jnp.sum(f(x, w) ** 2), argnums=1)))(x, w)
    want = jnp.stack(
        [jax.grad(lambda w: jnp.sum(L.conv2d(x[i], w, padding=1, impl="xla") ** 2))(w[i]) for i in range(3)]
    )
    _assert_close_normalized(got, want)


def test_compiled_loop_equals_python_loop():
    """Four SGD steps on the filter inside ``training.run_steps`` (one ``lax.scan``) equal four eager ones."""
    x, w0 = jnp.asarray(_randn(0, 4, 9, 9, 16)), jnp.asarray(_randn(1, 3, 3, 16, 16) * 0.1)

    def step(w, _):
        loss, g = jax.value_and_grad(lambda w: jnp.mean(L.conv2d(x, w, padding=1, impl="native") ** 2))(w)
        return w - 0.1 * g, loss

    w_loop = jax.jit(lambda w: training.run_steps(step, w, 4).state)(w0)
    w_eager = w0
    for _ in range(4):
        w_eager = jax.jit(step)(w_eager, None)[0]
    _assert_close_normalized(w_loop, w_eager)


_BITS_SCRIPT = textwrap.dedent(
    """
    import numpy as np, jax, jax.numpy as jnp
    from jax231.models import layers as L
    x = np.random.default_rng(0).standard_normal((64, 16, 16, 16)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((3, 3, 16, 32)).astype(np.float32)
    g = jax.jit(jax.grad(lambda w: jnp.sum(jnp.sin(L.conv2d(x, w, padding=1, impl="native")))))(w)
    print(np.asarray(g).tobytes().hex()[:4096], np.asarray(g).sum())
    """
)


def test_filter_gradient_bits_do_not_depend_on_the_thread_count():
    outputs = []
    for flags in ("--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1", ""):
        env = {**os.environ, "XLA_FLAGS": flags}
        result = subprocess.run(
            [sys.executable, "-c", _BITS_SCRIPT], capture_output=True, text=True, env=env, timeout=300
        )
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]


def test_auto_uses_native_kernels_on_one_cpu_device_only(monkeypatch):
    x, w = jnp.zeros((2, 32, 32, 16)), jnp.zeros((3, 3, 16, 16))
    pads = ((1, 1), (1, 1))
    p = _conv._native_plan("auto", x, w, 1, pads)
    assert p is not None and (p.forward, p.input_grad, p.filter_grad) == ("native",) * 3  # 32 wide
    p = _conv._native_plan("auto", jnp.zeros((2, 8, 8, 16)), w, 1, pads)
    assert p is not None and (p.forward, p.input_grad, p.filter_grad) == ("native",) * 3  # 8 wide
    p = _conv._native_plan("auto", jnp.zeros((2, 4, 4, 16)), w, 1, pads)
    assert p is not None and (p.forward, p.input_grad, p.filter_grad) == ("xla", "xla", "native")  # 4 wide
    assert _conv._native_plan("xla", x, w, 1, pads) is None
    assert _conv._native_plan("auto", x.astype(jnp.bfloat16), w.astype(jnp.bfloat16), 1, pads) is None
    monkeypatch.setattr(jax, "device_count", lambda *a: 2)
    assert _conv._native_plan("auto", x, w, 1, pads) is None  # sharded programs keep XLA's kernel


def test_native_unavailable_is_one_line_value_error(monkeypatch):
    monkeypatch.setattr(_native_build, "load", lambda: _native_build.NativeLibrary(False, "no C++ compiler on PATH"))
    x, w = _randn(0, 1, 8, 8, 16), _randn(1, 3, 3, 16, 16)
    with pytest.raises(
        ValueError,
        match=r"^impl: 'native' needs jax231's native kernels, which are unavailable "
        r"\(no C\+\+ compiler on PATH\); choose one of 'auto', 'xla', 'im2col'$",
    ):
        L.conv2d(x, w, padding=1, impl="native")
    np.testing.assert_array_equal(L.conv2d(x, w, padding=1, impl="auto"), L.conv2d(x, w, padding=1, impl="xla"))


def test_disable_variable_and_compile_errors_are_reported(monkeypatch, tmp_path):
    monkeypatch.setenv(_native_build.DISABLE_VARIABLE, "0")
    assert _native_build.load.__wrapped__() == _native_build.NativeLibrary(False, "JAX231_NATIVE_KERNELS=0 is set")
    monkeypatch.delenv(_native_build.DISABLE_VARIABLE)
    bad = tmp_path / "bad.cc"
    bad.write_text("int f() { return undeclared_name; }\n")
    monkeypatch.setattr(_native_build, "SOURCE", bad)
    monkeypatch.setenv(_native_build.CACHE_VARIABLE, str(tmp_path / "cache"))
    library = _native_build.load.__wrapped__()
    assert not library.available and "failed" in library.reason and "undeclared_name" in library.reason
    assert list((tmp_path / "cache").iterdir()) == []  # no half-written library left behind
