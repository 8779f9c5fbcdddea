"""Grouped convolutions, receptive fields, and the lecture-9 architectures (AlexNet, Inception, ResNeXt).

References: flax.linen (Conv with feature_group_count, BatchNorm, max_pool) and
parameter counts written as formulas of the architecture.
"""

from __future__ import annotations

import math

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import models
from jax231.models import _inception, _resnext, layers

# ----------------------------------------------------------------------------- grouped convolution


@pytest.mark.parametrize("groups, stride", [(2, 1), (4, 2), (8, 1)])
def test_grouped_conv2d_matches_flax_conv_feature_group_count(groups, stride):
    x = jax.random.normal(jax.random.key(0), (2, 9, 9, 8))
    w = jax.random.normal(jax.random.key(1), (3, 3, 8 // groups, 16))
    b = jax.random.normal(jax.random.key(2), (16,))
    ours = layers.conv2d(x, w, b, stride=stride, padding="SAME", groups=groups)
    conv = nn.Conv(16, (3, 3), strides=stride, padding="SAME", feature_group_count=groups)
    ref = conv.apply({"params": {"kernel": w, "bias": b}}, x)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
    # The definition: output group g is a dense convolution of input group g.
    cin, cout = 8 // groups, 16 // groups
    per_group = [
        layers.conv2d(x[..., g * cin : (g + 1) * cin], w[..., g * cout : (g + 1) * cout], stride=stride, padding="SAME")
        for g in range(groups)
    ]
    np.testing.assert_allclose(ours, jnp.concatenate(per_group, -1) + b, rtol=1e-5, atol=1e-5)


def test_grouped_conv2d_rejects_channels_not_divisible_by_groups():
    with pytest.raises(ValueError, match=r"^w: expected shape \(F, F, C_in / groups, C_out\) with groups=3"):
        layers.conv2d(jnp.ones((1, 4, 4, 8)), jnp.ones((3, 3, 2, 6)), groups=3)
    with pytest.raises(ValueError, match="groups"):
        layers.conv2d(jnp.ones((1, 4, 4, 8)), jnp.ones((3, 3, 8, 6)), groups=0)


# ----------------------------------------------------------------------------- receptive field


@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_stacked_3x3_convolutions_see_a_2n_plus_1_window(num_layers):
    ws = [jax.random.normal(jax.random.key(i), (3, 3, 2, 2)) for i in range(num_layers)]

    def centre_output(x):
        h = x
        for w in ws:
            h = layers.conv2d(h, w, padding="SAME")  # linear: no kink can hide a connection
        return h[0, 7, 7, 0]

    grad = np.asarray(jax.grad(centre_output)(jnp.ones((1, 15, 15, 2))))
    support = np.any(grad[0] != 0, axis=-1)
    # n stacked 3x3 layers see a (2n + 1) x (2n + 1) window: 5x5 for two, 7x7 for three (the VGG argument).
    expected = np.zeros((15, 15), bool)
    expected[7 - num_layers : 8 + num_layers, 7 - num_layers : 8 + num_layers] = True
    np.testing.assert_array_equal(support, expected)


# ----------------------------------------------------------------------------- Inception block


class FlaxInception(nn.Module):
    spec: _inception.InceptionSpec

    @nn.compact
    def __call__(self, x):
        def conv(features, window, name, h):
            return nn.relu(nn.Conv(features, (window, window), padding="SAME", name=name)(h))

        s = self.spec
        pooled = nn.max_pool(x, (3, 3), strides=(1, 1), padding="SAME")
        return jnp.concatenate(
            [
                conv(s.c1, 1, "b1", x),
                conv(s.c3, 3, "b3", conv(s.r3, 1, "b3_reduce", x)),
                conv(s.c5, 5, "b5", conv(s.r5, 1, "b5_reduce", x)),
                conv(s.cp, 1, "pool_proj", pooled),
            ],
            axis=-1,
        )


def _to_flax_conv(params):
    return {name: {"kernel": p["w"], "bias": p["b"]} for name, p in params.items()}


def test_inception_block_matches_a_flax_reference_and_counts_its_parameters():
    spec = models.InceptionSpec(4, 3, 6, 2, 5, 3)
    params = _inception.init_inception_block(jax.random.key(0), 7, spec)
    x = jax.random.normal(jax.random.key(1), (2, 8, 8, 7))
    ours = _inception.inception_block(params, x)
    chex.assert_shape(ours, (2, 8, 8, spec.out_channels))
    ref = FlaxInception(spec).apply({"params": _to_flax_conv(params)}, x)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
    c = 7
    expected = c * (spec.c1 + spec.r3 + spec.r5 + spec.cp) + 9 * spec.r3 * spec.c3 + 25 * spec.r5 * spec.c5 + sum(spec)
    assert models.count_params(params) == expected


# ----------------------------------------------------------------------------- ResNeXt block


class FlaxResNeXtBlock(nn.Module):
    inner: int
    out: int
    cardinality: int
    stride: int

    @nn.compact
    def __call__(self, x):
        def bn(name, h):
            return nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5, name=name)(h)

        h = nn.relu(bn("bn_0", nn.Conv(self.inner, (1, 1), use_bias=False, name="conv_0")(x)))
        h = nn.Conv(
            self.inner,
            (3, 3),
            strides=self.stride,
            padding="SAME",
            feature_group_count=self.cardinality,
            use_bias=False,
            name="conv_1",
        )(h)
        h = bn("bn_2", nn.Conv(self.out, (1, 1), use_bias=False, name="conv_2")(nn.relu(bn("bn_1", h))))
        shortcut = nn.Conv(self.out, (1, 1), strides=self.stride, use_bias=False, name="shortcut_conv")(x)
        return nn.relu(bn("shortcut_bn", shortcut) + h)


def test_resnext_block_matches_a_flax_reference_in_train_mode():
    params, state = _resnext.init_resnext_block(jax.random.key(0), 6, 8, 12, cardinality=4, stride=2)
    # Non-trivial batch-norm parameters, so that a swapped gamma/beta would show.
    params = jax.tree_util.tree_map_with_path(
        lambda path, v: (
            v + 0.1 * jax.random.normal(jax.random.key(len(str(path))), v.shape) if "bn" in str(path[0]) else v
        ),
        params,
    )
    x = jax.random.normal(jax.random.key(1), (4, 8, 8, 6))
    ours, new_state = _resnext.resnext_block(params, state, x, cardinality=4, stride=2, train=True)
    flax_params = {
        name: ({"kernel": p["w"]} if "conv" in name else {"scale": p["gamma"], "bias": p["beta"]})
        for name, p in params.items()
    }
    flax_stats = {name: dict(s) for name, s in state.items()}
    ref, updates = FlaxResNeXtBlock(8, 12, 4, 2).apply(
        {"params": flax_params, "batch_stats": flax_stats}, x, mutable=["batch_stats"]
    )
    chex.assert_shape(ours, (4, 4, 4, 12))
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)
    for name in new_state:
        np.testing.assert_allclose(new_state[name]["mean"], updates["batch_stats"][name]["mean"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(new_state[name]["var"], updates["batch_stats"][name]["var"], rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- the networks


def _conv_count(window, c_in, c_out, groups=1, bias=True):
    return window * window * (c_in // groups) * c_out + (c_out if bias else 0)


def _alexnet_count(widths, hidden, groups, shape, k):
    filters, grouped = (5, 5, 3, 3, 3), (1, groups, 1, groups, groups)
    c_in, total = shape[-1], 0
    for f, c, g in zip(filters, widths, grouped):
        total += _conv_count(f, c_in, c, g)
        c_in = c
    sizes = (shape[0] // 8 * shape[1] // 8 * widths[-1], *hidden, k)
    return total + sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def _resnext_count(blocks, card, d, widths, stem, shape, k):
    total = _conv_count(3, shape[-1], stem, bias=False) + 2 * stem
    c_in = stem
    for s, n in enumerate(blocks):
        inner = card * d * 2**s
        for b in range(n):
            total += c_in * inner + 2 * inner + _conv_count(3, inner, inner, card, bias=False) + 2 * inner
            total += inner * widths[s] + 2 * widths[s]
            if (s > 0 and b == 0) or c_in != widths[s]:
                total += c_in * widths[s] + 2 * widths[s]
            c_in = widths[s]
    return total + c_in * k + k


SPEC_A, SPEC_B = models.InceptionSpec(4, 4, 8, 2, 4, 4), models.InceptionSpec(8, 4, 8, 2, 4, 4)
CASES = {
    "alexnet": (
        lambda: models.alexnet(widths=(8, 16, 16, 8, 8), hidden_dims=(32, 16), groups=2, drop_rate=0.5),
        _alexnet_count((8, 16, 16, 8, 8), (32, 16), 2, (16, 16, 3), 10),
    ),
    "inception_net": (
        lambda: models.inception_net(stages=((SPEC_A,), (SPEC_B,)), stem_width=8, drop_rate=0.4),
        _conv_count(3, 3, 8)
        + models.count_params(_inception.init_inception_block(jax.random.key(0), 8, SPEC_A))
        + models.count_params(_inception.init_inception_block(jax.random.key(0), SPEC_A.out_channels, SPEC_B))
        + SPEC_B.out_channels * 10
        + 10,
    ),
    "resnext": (
        lambda: models.resnext(blocks_per_stage=(1, 2), cardinality=4, group_width=2, widths=(16, 32), stem_width=8),
        _resnext_count((1, 2), 4, 2, (16, 32), 8, (16, 16, 3), 10),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_architecture_parameter_count_shapes_and_a_finite_gradient(name):
    factory, expected_count = CASES[name]
    model = factory()
    # 16x16 inputs keep the test fast; the count formulas take the input shape.
    params, state = model.init(jax.random.key(0), (16, 16, 3))
    assert models.count_params(params) == expected_count
    x = jax.random.normal(jax.random.key(1), (2, 16, 16, 3))
    labels = jnp.array([1, 7])

    @jax.jit
    def loss_and_grad(params, state, key):
        def loss(p):
            logits, new_state = model.apply(p, state, x, train=True, rng=key)
            return jnp.mean(jax.nn.logsumexp(logits, -1) - logits[jnp.arange(2), labels]), (logits, new_state)

        return jax.value_and_grad(loss, has_aux=True)(params)

    (value, (logits, new_state)), grads = loss_and_grad(params, state, jax.random.key(2))
    chex.assert_shape(logits, (2, 10))
    chex.assert_tree_all_finite((value, grads))
    assert jax.tree_util.tree_structure(new_state) == jax.tree_util.tree_structure(state)
    eval_logits, _ = model.apply(params, state, x, train=False)
    chex.assert_shape(eval_logits, (2, 10))
    assert math.isfinite(float(value))


def test_architectures_reject_bad_configs():
    with pytest.raises(ValueError, match="^groups: expected a divisor"):
        models.alexnet(widths=(8, 15, 16, 8, 8), groups=2)
    with pytest.raises(ValueError, match="^cardinality: expected a divisor"):
        _resnext.init_resnext_block(jax.random.key(0), 4, 8, 8, cardinality=3, stride=1)
    with pytest.raises(ValueError, match="divisible by 8"):
        models.alexnet().init(jax.random.key(0), (28, 30, 3))
