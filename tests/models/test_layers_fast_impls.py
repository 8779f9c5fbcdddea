"""Every implementation of conv2d / max_pool / batch_norm equals the reference one, value and gradient.

The fast implementations (im2col convolution, reshape max pool, fused batch-norm backward) have
hand-written VJPs, so each is checked three ways: against the reference implementation in
float32 (forward and VJP), against centred differences in float64 (``gradcheck``), and — for
the pool, whose VJP picks the first maximum of a window as XLA's select-and-scatter does —
bit for bit, ties included.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import gradcheck
from jax231.models import layers as L
from tests.test_utils import x64

# float32: the im2col GEMM and XLA's convolution kernel sum the same products in another order:
# relative differences of a few ulps times sqrt(F*F*C) terms, well under 1e-5 for these sizes.
RTOL32, ATOL32 = 2e-5, 2e-5
GRADCHECK_TOL = 1e-7  # float64 centred differences, as every other layer's gradient check


def _randn(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _vjp(f, args, seed=7):
    out, pullback = jax.vjp(f, *args)
    cot = jnp.asarray(_randn(seed, *out.shape))
    return out, pullback(cot)


CONV_CASES = [  # (x shape, w shape, stride, padding)
    ((2, 8, 8, 3), (3, 3, 3, 4), 1, 1),
    ((2, 7, 7, 2), (3, 3, 2, 5), 2, 0),
    ((1, 9, 9, 3), (5, 5, 3, 2), 1, 2),
    ((2, 8, 8, 3), (3, 3, 3, 4), 2, "SAME"),
    ((2, 6, 6, 4), (1, 1, 4, 3), 1, "VALID"),
]


@pytest.mark.parametrize("x_shape,w_shape,stride,padding", CONV_CASES)
def test_im2col_conv_equals_xla_conv_and_its_vjp(x_shape, w_shape, stride, padding):
    x, w, b = _randn(0, *x_shape), _randn(1, *w_shape), _randn(2, w_shape[-1])
    outs = {}
    for impl in ("xla", "im2col"):
        f = jax.jit(lambda x, w, b, impl=impl: L.conv2d(x, w, b, stride=stride, padding=padding, impl=impl))
        outs[impl] = _vjp(f, (x, w, b))
    chex.assert_trees_all_close(outs["im2col"], outs["xla"], rtol=RTOL32, atol=ATOL32)


def test_im2col_conv_gradient_check_float64():
    with x64():
        x = np.random.default_rng(0).standard_normal((2, 6, 6, 3))
        w = np.random.default_rng(1).standard_normal((3, 3, 3, 2))
        err = gradcheck.check_grads(
            lambda x, w: L.conv2d(x, w, stride=1, padding=1, impl="im2col"), x, w, argnums=(0, 1)
        )
    assert err < GRADCHECK_TOL


@pytest.mark.parametrize(
    "xla_flags, narrow",
    [
        ("", "im2col"),  # YNNPACK convolutions: im2col for the RGB layer
        ("--xla_cpu_experimental_ynn_fusion_type=-individual_convolution", "xla"),  # Eigen's: XLA everywhere
        ("--xla_cpu_experimental_ynn_fusion_type=reduce", "xla"),  # a plain list without the convolutions
        ("--xla_cpu_experimental_ynn_fusion_type=reduce,individual_convolution", "im2col"),
    ],
)
def test_auto_follows_the_measured_table(monkeypatch, xla_flags, narrow):
    from jax231.models.layers import _conv

    monkeypatch.setenv("XLA_FLAGS", xla_flags)
    assert _conv._choose_impl("auto", (3, 3, 3, 32)) == narrow  # 27 <= 32
    assert _conv._choose_impl("auto", (3, 3, 32, 64)) == "xla"  # 288 > 32
    assert _conv._choose_impl("xla", (3, 3, 3, 32)) == "xla"  # explicit choice wins
    assert _conv._choose_impl("im2col", (3, 3, 32, 64)) == "im2col"


def test_unknown_conv_impl_is_one_line_value_error():
    with pytest.raises(ValueError, match=r"^impl: expected one of auto, xla, im2col, native, got 'fast'$"):
        L.conv2d(_randn(0, 1, 4, 4, 1), _randn(1, 3, 3, 1, 1), padding=1, impl="fast")


POOL_CASES = [((2, 8, 8, 3), 2), ((2, 9, 9, 2), 3), ((3, 8, 4), 2), ((1, 4, 6, 5), 2)]


@pytest.mark.parametrize("shape,k", POOL_CASES)
@pytest.mark.parametrize("relu", [False, True], ids=["distinct", "ties"])
def test_reshape_max_pool_equals_reduce_window_bitwise(shape, k, relu):
    x = jnp.asarray(_randn(0, *shape))
    if relu:  # many all-zero windows: ties, where the choice of sub-gradient shows
        x = jax.nn.relu(x - 0.5)
    outs = {}
    for impl in ("reduce_window", "reshape"):
        f = jax.jit(lambda x, impl=impl: L.max_pool(x, window=k, stride=k, impl=impl))
        outs[impl] = _vjp(f, (x,))
    jax.tree.map(np.testing.assert_array_equal, outs["reshape"], outs["reduce_window"])


def test_reshape_max_pool_gradient_check_float64():
    with x64():
        x = np.random.default_rng(0).standard_normal((2, 4, 4, 3))
        err = gradcheck.check_grads(lambda x: L.max_pool(x, impl="reshape"), x)
    assert err < GRADCHECK_TOL


def test_pool_impl_errors():
    x = _randn(0, 1, 4, 4, 1)
    with pytest.raises(ValueError, match=r"^impl: expected one of auto, reduce_window, reshape, got 'x'$"):
        L.max_pool(x, impl="x")
    with pytest.raises(ValueError, match=r"^impl: 'reshape' needs window == stride"):
        L.max_pool(x, window=3, stride=1, impl="reshape")
    # auto with overlapping windows falls back to reduce_window and equals it
    np.testing.assert_array_equal(
        L.max_pool(x, window=3, stride=1), L.max_pool(x, window=3, stride=1, impl="reduce_window")
    )


@pytest.mark.parametrize("shape", [(16, 5), (4, 6, 6, 3)])
def test_fused_batch_norm_equals_autodiff(shape):
    c = shape[-1]
    x = jnp.asarray(_randn(0, *shape) * 3 + 1)
    gamma, beta = jnp.asarray(_randn(1, c)), jnp.asarray(_randn(2, c))
    mean0, var0 = jnp.zeros(c), jnp.ones(c)
    outs = {}
    for impl in ("autodiff", "fused"):
        # All three outputs carry cotangents, so the exact mean/variance terms of the VJP are checked too.
        f = jax.jit(lambda x, g, b, impl=impl: L.batch_norm(x, g, b, mean0, var0, train=True, impl=impl))
        out, pullback = jax.vjp(f, x, gamma, beta)
        cots = tuple(jnp.asarray(_randn(10 + i, *o.shape)) for i, o in enumerate(out))
        outs[impl] = (out, pullback(cots))
    chex.assert_trees_all_close(outs["fused"], outs["autodiff"], rtol=1e-5, atol=1e-5)


def test_fused_batch_norm_one_read_variance_against_float64_numpy():
    """E[x^2] - mu^2 in float32 against the two-pass float64 formula, for an offset activation.

    mu/sigma = 10 loses ~(mu/sigma)^2 * 6e-8 = 6e-6 of the variance to rounding; 1e-4 bounds it
    with room for the sums over 8,192 values.
    """
    x = _randn(3, 32, 16, 16, 4) * 0.5 + 5.0
    g, b = np.ones(4), np.zeros(4)
    y, mean, var = L.batch_norm(x, g, b, np.zeros(4), np.zeros(4), train=True, momentum=0.0, impl="fused")
    x64_ = x.astype(np.float64)
    mu, v = x64_.mean(axis=(0, 1, 2)), x64_.var(axis=(0, 1, 2))
    np.testing.assert_allclose(mean, mu, rtol=1e-6)
    np.testing.assert_allclose(var, v, rtol=1e-4)
    np.testing.assert_allclose(y, (x64_ - mu) / np.sqrt(v + 1e-5), atol=1e-3)


def test_fused_batch_norm_gradient_check_float64():
    with x64():
        x = np.random.default_rng(0).standard_normal((6, 4)) * 2 + 1
        g, b = np.random.default_rng(1).standard_normal(4), np.random.default_rng(2).standard_normal(4)

        def f(x, g, b):
            y, m, v = L.batch_norm(x, g, b, np.zeros(4), np.ones(4), train=True, impl="fused")
            return y, m, v

        err = gradcheck.check_grads(f, x, g, b, argnums=(0, 1, 2))
    assert err < GRADCHECK_TOL


def test_batch_norm_impl_errors():
    x, c = _randn(0, 4, 3), np.ones(3, np.float32)
    with pytest.raises(ValueError, match=r"^impl: expected one of auto, autodiff, fused, got 'x'$"):
        L.batch_norm(x, c, c, c, c, train=True, impl="x")
    with pytest.raises(ValueError, match=r"^impl: 'fused' cannot synchronise statistics"):
        L.batch_norm(x, c, c, c, c, train=True, impl="fused", axis_name="batch")
