"""Dense, convolution and pooling layers against flax.linen and NumPy transcriptions."""

from __future__ import annotations

import functools

import chex
import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from jax231 import gradcheck
from jax231.models import layers as L

# float32 comparisons against flax run the same XLA primitives, possibly with
# another summation order: a few float32 ulps of values of order 1-10.
RTOL32, ATOL32 = 1e-5, 1e-5


def _randn(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _naive_conv2d(x, w, b, stride, pad):
    """The course's conv_forward_naive in float64 NumPy (NHWC / HWIO)."""
    x = np.pad(np.asarray(x, np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    w = np.asarray(w, np.float64)
    n, hp, wp, _ = x.shape
    f_h, f_w, _, k = w.shape
    h_out, w_out = (hp - f_h) // stride + 1, (wp - f_w) // stride + 1
    out = np.zeros((n, h_out, w_out, k))
    for i in range(h_out):
        for j in range(w_out):
            patch = x[:, i * stride : i * stride + f_h, j * stride : j * stride + f_w, :]
            out[:, i, j, :] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2])) + b
    return out


class AffineTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_flax_dense_over_leading_batch_shape(self):
        x, w, b = _randn(0, 2, 3, 5), _randn(1, 5, 4), _randn(2, 4)
        y = self.variant(L.affine)(x, w, b)
        chex.assert_shape(y, (2, 3, 4))
        ref = nn.Dense(4).apply({"params": {"kernel": w, "bias": b}}, x)
        chex.assert_trees_all_close(y, ref, rtol=RTOL32, atol=ATOL32)

    def test_gradient_check(self):
        err = gradcheck.check_grads(L.affine, _randn(0, 3, 5), _randn(1, 5, 4), _randn(2, 4), argnums=(0, 1, 2))
        self.assertLess(err, 1e-7)

    @parameterized.named_parameters(
        ("w_rank", (3, 5), (5,), (4,), "^w: "),
        ("inner_dim", (3, 6), (5, 4), (4,), "^x: "),
        ("bias", (3, 5), (5, 4), (5,), "^b: "),
    )
    def test_bad_shapes_raise(self, x_shape, w_shape, b_shape, name):
        with self.assertRaisesRegex(ValueError, name):
            L.affine(jnp.ones(x_shape), jnp.ones(w_shape), jnp.ones(b_shape))

    def test_flatten(self):
        x = _randn(0, 2, 3, 4, 5)
        y = L.flatten(x)
        chex.assert_shape(y, (2, 60))
        np.testing.assert_array_equal(y, x.reshape(2, -1))


class ConvOutputSizeTest(parameterized.TestCase):
    @parameterized.parameters(
        (7, 3, 1, 0, 5),
        (7, 3, 2, 0, 3),
        (32, 5, 1, 2, 32),
        (227, 11, 4, 0, 55),
        (7, 3, 2, "SAME", 4),
        (7, 3, 2, "VALID", 3),
    )
    def test_examples_of_the_notes(self, size, window, stride, padding, expected):
        self.assertEqual(L.conv_output_size(size, window, stride, padding), expected)

    def test_non_integer_output_size_raises(self):
        # The notes: 7x7 input, 3x3 filter, stride 3 does not fit.
        with self.assertRaisesRegex(ValueError, "whole number"):
            L.conv_output_size(7, 3, 3, 0)
        with self.assertRaisesRegex(ValueError, r"`x`.*stride=3"):
            L.conv2d(jnp.ones((1, 7, 7, 1)), jnp.ones((3, 3, 1, 1)), stride=3)


class ConvTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("pad1_stride1", 1, 1),
        ("pad0_stride2", 0, 2),
        ("pad2_stride1", 2, 1),
        ("same_stride2", "SAME", 2),
        ("valid_stride1", "VALID", 1),
    )
    def test_conv2d_matches_flax_conv(self, padding, stride):
        x, w, b = _randn(0, 2, 9, 9, 3), _randn(1, 3, 3, 3, 4), _randn(2, 4)
        y = self.variant(functools.partial(L.conv2d, stride=stride, padding=padding))(x, w, b)
        flax_padding = padding if isinstance(padding, str) else [(padding, padding)] * 2
        conv = nn.Conv(4, (3, 3), strides=stride, padding=flax_padding)
        ref = conv.apply({"params": {"kernel": w, "bias": b}}, x)
        chex.assert_equal_shape([y, ref])
        chex.assert_trees_all_close(y, ref, rtol=RTOL32, atol=ATOL32)

    def test_conv2d_matches_naive_numpy_transcription(self):
        x, w, b = _randn(0, 2, 7, 7, 2), _randn(1, 3, 3, 2, 3), _randn(2, 3)
        y = L.conv2d(x, w, b, stride=2, padding=1)
        chex.assert_shape(y, (2, 4, 4, 3))
        np.testing.assert_allclose(y, _naive_conv2d(x, w, b, 2, 1), rtol=RTOL32, atol=ATOL32)

    @chex.variants(with_jit=True, without_jit=True)
    def test_conv1d_matches_flax_conv(self):
        x, w, b = _randn(0, 2, 10, 3), _randn(1, 3, 3, 5), _randn(2, 5)
        y = self.variant(functools.partial(L.conv1d, stride=1, padding=1))(x, w, b)
        ref = nn.Conv(5, (3,), padding=[(1, 1)]).apply({"params": {"kernel": w, "bias": b}}, x)
        chex.assert_shape(y, (2, 10, 5))
        chex.assert_trees_all_close(y, ref, rtol=RTOL32, atol=ATOL32)

    def test_depthwise_matches_flax_grouped_conv(self):
        x, w, b = _randn(0, 2, 6, 6, 3), _randn(1, 3, 3, 1, 3), _randn(2, 3)
        y = L.depthwise_conv2d(x, w, b, padding=1)
        conv = nn.Conv(3, (3, 3), padding=[(1, 1)] * 2, feature_group_count=3)
        ref = conv.apply({"params": {"kernel": w, "bias": b}}, x)
        chex.assert_shape(y, (2, 6, 6, 3))
        chex.assert_trees_all_close(y, ref, rtol=RTOL32, atol=ATOL32)
        # Channel c of the output sees only channel c of the input.
        single = L.conv2d(x[..., 1:2], w[..., 1:2], b[1:2], padding=1)
        chex.assert_trees_all_close(y[..., 1:2], single, rtol=RTOL32, atol=ATOL32)

    @parameterized.named_parameters(
        ("conv2d", L.conv2d, (2, 5, 5, 2), (3, 3, 2, 3), (3,), {"stride": 2, "padding": 1}),
        ("conv1d", L.conv1d, (2, 5, 2), (3, 2, 3), (3,), {"stride": 2}),
        ("depthwise", L.depthwise_conv2d, (1, 5, 5, 2), (3, 3, 1, 2), (2,), {"padding": 1}),
    )
    def test_gradient_check(self, fn, x_shape, w_shape, b_shape, kwargs):
        err = gradcheck.check_grads(
            functools.partial(fn, **kwargs),
            _randn(0, *x_shape),
            _randn(1, *w_shape),
            _randn(2, *b_shape),
            argnums=(0, 1, 2),
        )
        self.assertLess(err, 1e-7)

    @parameterized.named_parameters(
        ("x_rank", (5, 5, 2), (3, 3, 2, 3), None, {}, "^x: "),
        ("channels", (1, 5, 5, 2), (3, 3, 4, 3), None, {}, "^w: "),
        ("bias", (1, 5, 5, 2), (3, 3, 2, 3), (2,), {}, "^b: "),
        ("padding", (1, 5, 5, 2), (3, 3, 2, 3), None, {"padding": "FULL"}, "^padding: "),
        ("stride", (1, 5, 5, 2), (3, 3, 2, 3), None, {"stride": 0}, "^stride: "),
    )
    def test_bad_input_raises(self, x_shape, w_shape, b_shape, kwargs, name):
        b = None if b_shape is None else jnp.ones(b_shape)
        with self.assertRaisesRegex(ValueError, name):
            L.conv2d(jnp.ones(x_shape), jnp.ones(w_shape), b, **kwargs)


class PoolTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("max_2d", L.max_pool, nn.max_pool, (2, 8, 8, 3), 2, 2),
        ("max_2d_overlap", L.max_pool, nn.max_pool, (2, 7, 7, 3), 3, 2),
        ("max_1d", L.max_pool, nn.max_pool, (2, 9, 3), 3, 3),
        ("avg_2d", L.avg_pool, nn.avg_pool, (2, 8, 8, 3), 2, 2),
        ("avg_1d", L.avg_pool, nn.avg_pool, (2, 8, 3), 2, 2),
    )
    def test_matches_flax_pooling(self, fn, ref_fn, shape, window, stride):
        x = _randn(0, *shape)
        y = self.variant(functools.partial(fn, window=window, stride=stride))(x)
        spatial = len(shape) - 2
        ref = ref_fn(x, (window,) * spatial, strides=(stride,) * spatial, padding="VALID")
        chex.assert_equal_shape([y, ref])
        chex.assert_trees_all_close(y, ref, rtol=RTOL32, atol=ATOL32)

    def test_global_avg_pool_and_output_shape(self):
        x = _randn(0, 2, 4, 5, 3)
        y = L.global_avg_pool(x)
        chex.assert_shape(y, (2, 3))
        np.testing.assert_allclose(y, x.astype(np.float64).mean(axis=(1, 2)), rtol=RTOL32, atol=ATOL32)

    @parameterized.named_parameters(("max", L.max_pool), ("avg", L.avg_pool))
    def test_gradient_check(self, fn):
        # Distinct random values: each window's max is isolated from a tie by far more than h.
        err = gradcheck.check_grads(functools.partial(fn, window=2, stride=2), _randn(3, 2, 4, 4, 2))
        self.assertLess(err, 1e-7)

    @parameterized.named_parameters(("global_avg_pool", L.global_avg_pool), ("flatten", L.flatten))
    def test_gradient_check_of_reshaping_layers(self, fn):
        self.assertLess(gradcheck.check_grads(fn, _randn(4, 2, 3, 3, 2)), 1e-7)

    def test_non_integer_output_size_raises(self):
        with self.assertRaisesRegex(ValueError, r"`x`.*window=2, stride=2"):
            L.max_pool(jnp.ones((1, 7, 7, 1)))
        with self.assertRaisesRegex(ValueError, "^x: "):
            L.avg_pool(jnp.ones((7, 7)))


if __name__ == "__main__":
    absltest.main()
