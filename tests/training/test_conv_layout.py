"""Convolutions rebound in XLA:CPU's canonical layout (jax231.training._conv_layout).

Reference: the same function without the rewrite (``lax.conv_general_dilated``
in the layouts JAX chose). The rewrite only moves axes in memory, so the sums
are the same; the two XLA:CPU kernels (library kernel vs loop nest) may add
them in another order, hence float32 tolerances of a few ulps of the sums
(|values| ~ 10, rtol 1e-5). Where both paths run the same kernel (a jitted
step vs the same step in a scan body, both canonical), equality is bitwise.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jax231 import optimizers, training
from jax231.models import layers
from jax231.training import _conv_layout
from tests.training import toy

RTOL, ATOL = 1e-5, 1e-5


def _conv(x, w, *, dn=("NHWC", "HWIO", "NHWC"), stride=1, dilation=1, groups=1, padding="SAME"):
    n = len(dn[0]) - 2
    return lax.conv_general_dilated(
        x,
        w,
        (stride,) * n,
        padding,
        rhs_dilation=(dilation,) * n,
        dimension_numbers=dn,
        feature_group_count=groups,
    )


CASES = {
    # name: (x shape, w shape, conv keywords)
    "nhwc_stride2_valid": ((2, 9, 9, 3), (3, 3, 3, 4), {"stride": 2, "padding": "VALID"}),
    "depthwise": ((2, 8, 8, 4), (3, 3, 1, 4), {"groups": 4}),
    "nchw_oihw": ((2, 3, 9, 9), (4, 3, 3, 3), {"dn": ("NCHW", "OIHW", "NCHW")}),
    "nwc_1d": ((2, 11, 3), (3, 3, 4), {"dn": ("NWC", "WIO", "NWC")}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rewrite_equals_lax_conv_in_value_and_both_gradients(name):
    x_shape, w_shape, kw = CASES[name]
    kx, kw_ = jax.random.split(jax.random.PRNGKey(0))
    x, w = jax.random.normal(kx, x_shape), jax.random.normal(kw_, w_shape)

    def loss(x, w):
        y = _conv(x, w, **kw)
        return jnp.sum(jnp.sin(y)), y

    fn = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)
    fixed = _conv_layout.canonical_convolutions(fn)
    assert _conv_layout.has_noncanonical_convolution(fn, x, w)  # the backward convolutions are not NHWC/HWIO
    assert not _conv_layout.has_noncanonical_convolution(fixed, x, w)
    ((want_v, want_y), want_g), ((got_v, got_y), got_g) = jax.jit(fn)(x, w), jax.jit(fixed)(x, w)
    np.testing.assert_allclose(got_y, want_y, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(got_v, want_v, rtol=RTOL, atol=ATOL)
    for got, want in zip(got_g, want_g):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_rewrite_reaches_convolutions_nested_in_scan_cond_and_jit():
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 6, 6, 3))
    w = jax.random.normal(jax.random.PRNGKey(2), (3, 3, 3, 3))
    grad = jax.grad(lambda w, x: jnp.sum(_conv(x, w) ** 2))

    def fn(w, x):
        def body(c, _):
            g = lax.cond(jnp.sum(c) > 0, jax.jit(grad), lambda w, x: grad(w, -x), c, x)
            return c - 1e-3 * g, jnp.sum(g)

        return lax.scan(body, w, None, length=3)

    fixed = _conv_layout.canonical_convolutions(fn)
    assert _conv_layout.has_noncanonical_convolution(fn, w, x)
    assert not _conv_layout.has_noncanonical_convolution(fixed, w, x)
    for got, want in zip(jax.tree_util.tree_leaves(jax.jit(fixed)(w, x)), jax.tree_util.tree_leaves(jax.jit(fn)(w, x))):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-4)


def test_function_without_noncanonical_convolution_is_called_as_is():
    def fn(w, x):  # a forward NHWC/HWIO convolution is canonical already
        return jnp.tanh(_conv(x, w)).sum(), {"w": w * 2.0}

    x, w = jnp.ones((1, 5, 5, 2)), jnp.ones((3, 3, 2, 2))
    fixed = _conv_layout.canonical_convolutions(fn)
    assert str(jax.make_jaxpr(fixed)(w, x)) == str(jax.make_jaxpr(fn)(w, x))


def _cnn():
    """conv3x3 (3->4, impl='xla') -> ReLU -> mean pool -> dense: a CNN whose backward convs are non-canonical."""

    def init(rng, input_shape):
        k1, k2 = jax.random.split(rng)
        c = input_shape[-1]
        return {
            "conv": {"w": 0.3 * jax.random.normal(k1, (3, 3, c, 4)), "b": jnp.zeros((4,))},
            "dense": {"w": 0.3 * jax.random.normal(k2, (4, 3)), "b": jnp.zeros((3,))},
        }, {}

    def apply(params, state, x, *, train, rng=None):
        h = layers.relu(layers.conv2d(x, params["conv"]["w"], params["conv"]["b"], padding=1, impl="xla"))
        return h.mean(axis=(1, 2)) @ params["dense"]["w"] + params["dense"]["b"], state

    return toy.Model(init, apply)


def test_fit_of_a_cnn_equals_the_jitted_step_in_a_python_loop():
    """fit's chunk (a while loop whose step is rewritten) trains as the plain jitted step does.

    Tolerance as in test_core's hand-loop test: a loop body and an entry
    computation are fused differently, so not bitwise (rtol 1e-5 over 6 updates).
    """
    rng = np.random.default_rng(0)
    images = rng.normal(size=(64, 6, 6, 3)).astype(np.float32)
    labels = rng.integers(0, 3, size=64).astype(np.int32)
    model, opt = _cnn(), optimizers.sgd(learning_rate=0.1)
    result = training.fit(
        model,
        opt,
        train={"image": images, "label": labels},
        num_steps=6,
        batch_size=16,
        eval_every=3,
        check_initial_loss=False,
        seed=0,
    )
    keys = training.run_keys(0)
    state = training.create_train_state(model, opt, rng=keys.init, input_shape=images.shape[1:])
    step = jax.jit(training.make_train_step(model, opt))
    for t in range(6):
        e, p = divmod(t, 4)
        idx = np.asarray(training.epoch_permutation(keys.data, e, 64))[p * 16 : (p + 1) * 16]
        state, _ = step(state, {"image": images[idx], "label": labels[idx]})
    for got, want in zip(jax.tree_util.tree_leaves(result.state.params), jax.tree_util.tree_leaves(state.params)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _conv_labels(fn, *args):
    hlo = jax.jit(fn).lower(*args).compile().as_text()
    return set(re.findall(r"convolution\(.*?dim_labels=(\S+?),", hlo))


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the XLA:CPU layout of convolutions in a loop body")
def test_loop_body_convolutions_reach_xla_cpu_in_the_canonical_layout():
    """The root cause, in the optimized HLO: without the rewrite a scan body keeps JAX's backward layouts."""
    x = jnp.ones((4, 6, 6, 3))
    grad = jax.grad(lambda w: jnp.sum(_conv(x, w) ** 2))

    def scan_of(step):
        return lambda w: lax.scan(lambda c, _: (c - 1e-3 * step(c), None), w, None, length=2)[0]

    w = jnp.ones((3, 3, 3, 4))
    assert _conv_labels(scan_of(grad), w) - {"b01f_01io->b01f"}  # e.g. f01b_i01o->01bf: the loop nest
    assert _conv_labels(scan_of(training.loop_body(grad)), w) == {"b01f_01io->b01f"}
