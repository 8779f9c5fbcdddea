"""Every layer under jit (no retrace), vmap (equals a loop) and grad, and dtype preservation.

One table of layers with tiny arguments drives all checks, as optax's tests do
for optimizers.
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from jax231.models import layers as L


def _randn(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _rnn_params(gates: int, gru: bool = False):
    params = {"wx": _randn(1, 3, 4 * gates) * 0.5, "wh": _randn(2, 4, 4 * gates) * 0.5}
    if gru:
        params.update(bx=_randn(3, 4 * gates), bh=_randn(4, 4 * gates))
    else:
        params["b"] = _randn(3, 4 * gates)
    return params


# name, function (options bound), seed -> positional arguments (all floating).
LAYERS = [
    ("affine", L.affine, lambda s: (_randn(s, 2, 5), _randn(s + 1, 5, 3), _randn(s + 2, 3))),
    (
        "conv2d",
        functools.partial(L.conv2d, stride=1, padding=1),
        lambda s: (_randn(s, 2, 4, 4, 2), _randn(s + 1, 3, 3, 2, 3), _randn(s + 2, 3)),
    ),
    ("conv1d", functools.partial(L.conv1d, stride=2), lambda s: (_randn(s, 2, 7, 2), _randn(s + 1, 3, 2, 3))),
    (
        "depthwise_conv2d",
        functools.partial(L.depthwise_conv2d, padding="SAME"),
        lambda s: (_randn(s, 2, 4, 4, 2), _randn(s + 1, 3, 3, 1, 2)),
    ),
    ("max_pool", L.max_pool, lambda s: (_randn(s, 2, 4, 4, 2),)),
    ("avg_pool", L.avg_pool, lambda s: (_randn(s, 2, 4, 4, 2),)),
    ("global_avg_pool", L.global_avg_pool, lambda s: (_randn(s, 2, 4, 4, 2),)),
    ("flatten", L.flatten, lambda s: (_randn(s, 2, 3, 4),)),
    (
        "batch_norm_train",
        functools.partial(L.batch_norm, train=True),
        lambda s: (_randn(s, 4, 3), _randn(s + 1, 3), _randn(s + 2, 3), _randn(s + 3, 3), 1 + np.abs(_randn(s + 4, 3))),
    ),
    (
        "batch_norm_eval",
        functools.partial(L.batch_norm, train=False),
        lambda s: (_randn(s, 4, 3), _randn(s + 1, 3), _randn(s + 2, 3), _randn(s + 3, 3), 1 + np.abs(_randn(s + 4, 3))),
    ),
    ("layer_norm", L.layer_norm, lambda s: (_randn(s, 2, 4), _randn(s + 1, 4), _randn(s + 2, 4))),
    (
        "group_norm",
        functools.partial(L.group_norm, num_groups=2),
        lambda s: (_randn(s, 2, 3, 4), _randn(s + 1, 4), _randn(s + 2, 4)),
    ),
    ("dropout", lambda x: L.dropout(x, drop_rate=0.3, rng=jax.random.key(0), train=True), lambda s: (_randn(s, 3, 4),)),
    ("prelu", L.prelu, lambda s: (_randn(s, 3, 4), np.abs(_randn(s + 1, 4)) * 0.1)),
    ("maxout", functools.partial(L.maxout, num_pieces=2), lambda s: (_randn(s, 3, 4),)),
    ("selu", L.selu, lambda s: (_randn(s, 3, 4),)),
    ("log_softmax", L.log_softmax, lambda s: (_randn(s, 3, 4),)),
    ("rnn", L.rnn, lambda s: (_rnn_params(1), _randn(s, 2, 3, 3), _randn(s + 1, 2, 4))),
    ("lstm", L.lstm, lambda s: (_rnn_params(4), _randn(s, 2, 3, 3), _randn(s + 1, 2, 4), _randn(s + 2, 2, 4))),
    ("gru", L.gru, lambda s: (_rnn_params(3, gru=True), _randn(s, 2, 3, 3), _randn(s + 1, 2, 4))),
]


def _sum_outputs(fn):
    return lambda *args: sum(jnp.sum(y) for y in jax.tree_util.tree_leaves(fn(*args)))


class LayerTransformsTest(parameterized.TestCase):
    @parameterized.named_parameters(*LAYERS)
    def test_jit_traces_once_for_new_values(self, fn, make_args):
        chex.clear_trace_counter()  # the footprint below is the same source line for every case

        def traced(*args):
            return fn(*args)

        jitted = jax.jit(chex.assert_max_traces(traced, n=1))
        first = jitted(*make_args(0))
        second = jitted(*make_args(10))  # same shapes, new values: no retrace
        chex.assert_trees_all_equal_shapes(first, second)
        chex.assert_trees_all_close(first, fn(*make_args(0)), rtol=1e-5, atol=1e-5)  # float32 jit vs eager

    @parameterized.named_parameters(*LAYERS)
    def test_vmap_over_stacked_arguments_equals_a_loop(self, fn, make_args):
        members = [make_args(seed) for seed in (0, 10, 20)]
        stacked = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *members)
        batched = jax.vmap(fn)(*stacked)
        for k, args in enumerate(members):
            # float32: vmapped and unbatched kernels may sum in another order.
            chex.assert_trees_all_close(
                jax.tree_util.tree_map(lambda y: y[k], batched), fn(*args), rtol=1e-5, atol=1e-5
            )

    @parameterized.named_parameters(*LAYERS)
    def test_grad_under_jit_is_finite_and_keeps_structure(self, fn, make_args):
        args = make_args(0)
        grad_fn = jax.grad(_sum_outputs(fn), argnums=tuple(range(len(args))))
        grads = jax.jit(grad_fn)(*args)
        chex.assert_trees_all_equal_shapes(grads, args)
        chex.assert_tree_all_finite(grads)
        chex.assert_trees_all_close(grads, grad_fn(*args), rtol=1e-5, atol=1e-5)  # float32 jit vs eager

    @parameterized.named_parameters(*LAYERS)
    def test_dtype_is_preserved(self, fn, make_args):
        for dtype in (jnp.float32, jnp.float64):
            with jax.enable_x64(dtype == jnp.float64):
                args = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), make_args(0))
                for y in jax.tree_util.tree_leaves(fn(*args)):
                    self.assertEqual(y.dtype, dtype)


if __name__ == "__main__":
    absltest.main()
