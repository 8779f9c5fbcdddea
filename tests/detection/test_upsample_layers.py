"""Upsampling and RoI layers against flax.linen, the adjoint identity, autodiff and NumPy transcriptions."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jax231 import gradcheck
from jax231.models import layers
from tests import test_utils


@pytest.mark.parametrize(
    "size,window,stride,padding,extra",
    [(5, 3, 2, 1, 0), (5, 3, 2, 1, 1), (4, 2, 2, 0, 0), (3, 4, 3, 0, 2), (6, 3, 1, 1, 0)],
)
def test_conv_transpose_output_size_rule_and_shape(size, window, stride, padding, extra):
    expected = (size - 1) * stride - 2 * padding + window + extra
    assert layers.conv_transpose_output_size(size, window, stride, padding, extra) == expected
    x = jnp.ones((1, size, size, 2))
    w = jnp.ones((window, window, 2, 3))
    y = layers.conv_transpose2d(x, w, stride=stride, padding=padding, output_size=(expected, expected))
    assert y.shape == (1, expected, expected, 3)
    # The convolution with the same hyperparameters maps the output size back to the input size.
    assert layers.conv_output_size(expected - extra, window, stride, padding) == size


@pytest.mark.parametrize("stride,padding,extra", [(1, 0, 0), (2, 0, 0), (2, 1, 1), (3, 1, 2)])
def test_conv_transpose_is_the_adjoint_of_conv2d_in_float64(stride, padding, extra):
    """<conv2d(z, w^T), x> = <z, conv_transpose2d(x, w)> for every z, x (up to float64 rounding)."""
    with test_utils.x64():
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.normal(size=(2, 4, 5, 3)))
        w = jnp.asarray(rng.normal(size=(3, 3, 3, 2)))
        out_h, out_w = (layers.conv_transpose_output_size(s, 3, stride, padding, extra) for s in (4, 5))
        y = layers.conv_transpose2d(x, w, stride=stride, padding=padding, output_size=(out_h, out_w))
        z = jnp.asarray(rng.normal(size=y.shape))
        # With output_padding the convolution's size rule floors, which layers.conv2d refuses by
        # design: the forward map is then lax's (flooring) convolution with the same stride and padding.
        conv = lax.conv_general_dilated(
            z, w.swapaxes(2, 3), (stride, stride), [(padding, padding)] * 2, dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        if extra == 0:
            np.testing.assert_allclose(conv, layers.conv2d(z, w.swapaxes(2, 3), stride=stride, padding=padding))
        assert conv.shape == x.shape[:3] + (3,)
        lhs = jnp.vdot(conv, x)
        rhs = jnp.vdot(z, y)
        assert abs(float(lhs - rhs)) <= 1e-12 * float(jnp.sum(jnp.abs(z)) * jnp.sum(jnp.abs(y)) + 1)


def test_conv_transpose_equals_the_vjp_of_conv2d():
    """The adjoint, checked directly: conv_transpose2d(g) is the gradient of conv2d's input."""
    rng = np.random.default_rng(1)
    z = jnp.asarray(rng.normal(size=(1, 7, 7, 2)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3, 4, 2)), jnp.float32)  # conv_transpose weight (C_in=4 -> C_out=2)
    y, vjp = jax.vjp(lambda v: layers.conv2d(v, w.swapaxes(2, 3), stride=2, padding=1), z)
    g = jnp.asarray(rng.normal(size=y.shape), jnp.float32)
    np.testing.assert_allclose(
        vjp(g)[0], layers.conv_transpose2d(g, w, stride=2, padding=1, output_size=(7, 7)), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("stride,window", [(1, 3), (2, 2), (2, 3), (3, 3)])
def test_conv_transpose_equals_flax_conv_transpose(stride, window):
    """flax.linen.ConvTranspose with padding 'VALID' correlates the dilated input with its kernel
    unflipped (transpose_kernel=False): ours with the flipped kernel is the same map."""
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(2, 5, 4, 3)), jnp.float32)
    layer = nn.ConvTranspose(features=6, kernel_size=(window, window), strides=(stride, stride), padding="VALID")
    variables = layer.init(jax.random.key(0), x)
    kernel, bias = variables["params"]["kernel"], variables["params"]["bias"]
    ours = layers.conv_transpose2d(x, kernel[::-1, ::-1], bias, stride=stride)
    theirs = layer.apply(variables, x)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_conv_transpose_gradients():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1, 3, 3, 2))
    w = rng.normal(size=(3, 3, 2, 2))
    b = rng.normal(size=(2,))
    gradcheck.check_grads(
        lambda x, w, b: layers.conv_transpose2d(x, w, b, stride=2, padding=1), x, w, b, argnums=(0, 1, 2), tol=1e-7
    )


@pytest.mark.parametrize("window,stride,size", [(2, 2, 8), (3, 2, 7), (3, 1, 6)])
def test_max_unpool_is_the_gradient_of_max_pool(window, stride, size):
    x = jnp.asarray(np.random.default_rng(4).normal(size=(2, size, size, 3)), jnp.float32)
    y, switches = layers.max_pool_with_switches(x, window=window, stride=stride)
    ref, vjp = jax.vjp(lambda v: layers.max_pool(v, window=window, stride=stride), x)
    np.testing.assert_array_equal(y, ref)
    g = jnp.asarray(np.random.default_rng(5).normal(size=y.shape), jnp.float32)
    np.testing.assert_allclose(layers.max_unpool(g, switches), vjp(g)[0], rtol=1e-6, atol=1e-6)


def test_nearest_bed_of_nails_and_bilinear_upsampling():
    x = jnp.asarray(np.random.default_rng(6).normal(size=(2, 3, 4, 2)), jnp.float32)
    near = layers.nearest_upsample(x, factor=3)
    nails = layers.bed_of_nails_upsample(x, factor=3)
    assert near.shape == nails.shape == (2, 9, 12, 2)
    ref = np.asarray(x)[:, np.arange(9) // 3][:, :, np.arange(12) // 3]
    np.testing.assert_array_equal(near, ref)
    np.testing.assert_array_equal(nails[:, ::3, ::3], x)
    assert float(jnp.abs(nails).sum()) == pytest.approx(float(jnp.abs(x).sum()), rel=1e-6)
    # Bilinear (half-pixel centres) equals jax.image.resize when enlarging; sizes need not be multiples.
    for size in ((6, 8), (7, 11)):
        ours = layers.bilinear_upsample(x, size=size)
        theirs = jax.image.resize(x, (2, *size, 2), method="bilinear")
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    gradcheck.check_grads(lambda v: layers.bilinear_upsample(v, factor=2), np.asarray(x[:1], np.float64))


def _bilinear_ref(f, y, x):
    h, w = f.shape[:2]
    if y < -1 or y > h or x < -1 or x > w:
        return np.zeros(f.shape[2])
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = min(int(np.floor(y)), h - 1), min(int(np.floor(x)), w - 1)
    y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
    y = float(y0) if y0 >= h - 1 else y
    x = float(x0) if x0 >= w - 1 else x
    ly, lx = y - y0, x - x0
    return (1 - ly) * (1 - lx) * f[y0, x0] + (1 - ly) * lx * f[y0, x1] + ly * (1 - lx) * f[y1, x0] + ly * lx * f[y1, x1]


def test_roi_align_equals_a_numpy_transcription_of_torchvision():
    """torchvision is not installed here: the reference is its CPU kernel transcribed in float64 NumPy."""
    rng = np.random.default_rng(7)
    f = rng.normal(size=(9, 11, 2))
    boxes = np.array([[0.0, 0.0, 8.0, 6.0], [2.3, 1.7, 9.9, 8.4], [5.0, 5.0, 5.5, 5.2], [-2.0, -1.0, 3.0, 12.0]])
    ph, pw, r, scale = 3, 2, 2, 0.5
    got = np.asarray(
        layers.roi_align(
            jnp.asarray(f, jnp.float32),
            jnp.asarray(boxes, jnp.float32),
            output_size=(ph, pw),
            spatial_scale=scale,
            sampling_ratio=r,
        )
    )
    for k, (x1, y1, x2, y2) in enumerate(boxes * scale - 0.5):
        bh, bw = (y2 - y1) / ph, (x2 - x1) / pw
        for i in range(ph):
            for j in range(pw):
                samples = [
                    _bilinear_ref(f, y1 + i * bh + (a + 0.5) * bh / r, x1 + j * bw + (b + 0.5) * bw / r)
                    for a in range(r)
                    for b in range(r)
                ]
                np.testing.assert_allclose(got[k, i, j], np.mean(samples, axis=0), rtol=1e-5, atol=1e-5)


def test_roi_pool_equals_a_numpy_transcription_of_fast_rcnn():
    rng = np.random.default_rng(8)
    f = rng.normal(size=(8, 10, 3))
    boxes = np.array([[0.0, 0.0, 9.0, 7.0], [2.0, 1.0, 6.0, 4.0], [7.0, 6.0, 7.0, 6.0]])
    got = np.asarray(layers.roi_pool(jnp.asarray(f, jnp.float32), jnp.asarray(boxes, jnp.float32), output_size=(2, 3)))
    for k, box in enumerate(np.round(boxes).astype(int)):
        x1, y1, x2, y2 = box
        rh, rw = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        for i in range(2):
            for j in range(3):
                ys = slice(
                    min(max(y1 + int(np.floor(i * rh / 2)), 0), 8), min(max(y1 + int(np.ceil((i + 1) * rh / 2)), 0), 8)
                )
                xs = slice(
                    min(max(x1 + int(np.floor(j * rw / 3)), 0), 10),
                    min(max(x1 + int(np.ceil((j + 1) * rw / 3)), 0), 10),
                )
                region = f[ys, xs]
                ref = region.max(axis=(0, 1)) if region.size else np.zeros(3)
                np.testing.assert_allclose(got[k, i, j], ref, rtol=1e-6)


def test_roi_align_gradient():
    rng = np.random.default_rng(9)
    f = rng.normal(size=(6, 6, 1))
    boxes = np.array([[0.7, 1.3, 4.1, 5.2]])  # NumPy float64: cast inside the float64 check.
    gradcheck.check_grads(lambda v: layers.roi_align(v, boxes, output_size=(2, 2)), f, tol=1e-7)


def test_bad_upsampling_input_raises_one_line_value_error():
    x = jnp.ones((1, 5, 5, 2))
    w = jnp.ones((3, 3, 2, 1))
    with pytest.raises(ValueError, match=r"^output_size: expected sizes in \[11, 12\]"):
        layers.conv_transpose2d(x, w, stride=2, output_size=(14, 14))
    with pytest.raises(ValueError, match="^output_padding:"):
        layers.conv_transpose_output_size(5, 3, 2, 0, 2)
    with pytest.raises(ValueError, match="^w: expected 2 input channels"):
        layers.conv_transpose2d(x, jnp.ones((3, 3, 4, 1)))
    _, switches = layers.max_pool_with_switches(jnp.ones((1, 4, 4, 1)))
    with pytest.raises(ValueError, match=r"^y: expected shape \(1, 2, 2, 1\)"):
        layers.max_unpool(jnp.ones((1, 3, 3, 1)), switches)
    with pytest.raises(ValueError, match="^size, factor: expected exactly one"):
        layers.bilinear_upsample(x)
