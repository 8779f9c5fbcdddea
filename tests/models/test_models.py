"""Table-driven checks of every registered model: API, shapes, jit, vmap, init loss, overfitting.

One table (:data:`CASES`) of tiny configurations drives every test, so a model
added to the registry without a row here fails :func:`test_every_name_has_a_case`.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import parameterized

from jax231 import losses, models

NUM_CLASSES = 10

# name -> (config, input_shape). Tiny widths keep each compile and step cheap.
CASES: dict[str, tuple[dict, tuple[int, ...]]] = {
    "linear": ({}, (4, 4, 3)),
    "mlp": ({"hidden_sizes": (32, 16), "norm": "batch"}, (4, 4, 3)),
    "two_layer_net": ({"hidden_size": 32}, (4, 4, 3)),
    "three_layer_convnet": ({"num_filters": 4, "filter_size": 3, "hidden_dim": 16}, (8, 8, 3)),
    "vgg": ({"stage_widths": (4, 8), "convs_per_stage": (1, 2), "hidden_dims": (16,), "norm": "batch"}, (8, 8, 3)),
    "resnet": ({"depth": 8, "width": 4}, (8, 8, 3)),
    "mobilenet": ({"blocks": ((8, 1), (16, 2)), "stem_width": 4}, (8, 8, 3)),
    "cnn1d": ({"channels": 8}, (40, 1)),
    "rnn": ({"hidden_dim": 16}, (10, 2)),
    "lstm": ({"hidden_dim": 16}, (10, 2)),
    "gru": ({"hidden_dim": 16}, (10, 2)),
    # Lecture 9's architectures (their own references and parameter counts: test_cnn_architectures.py).
    "alexnet": ({"widths": (8, 16, 16, 8, 8), "hidden_dims": (32, 16), "groups": 2, "drop_rate": 0.0}, (16, 16, 3)),
    "inception": ({"stages": (((4, 4, 8, 2, 4, 4),), ((8, 4, 8, 2, 4, 4),)), "stem_width": 8}, (16, 16, 3)),
    "resnext": (
        {"blocks_per_stage": (1, 1), "cardinality": 4, "group_width": 2, "widths": (16, 32), "stem_width": 8},
        (8, 8, 3),
    ),
    # Deterministic max pooling here: fractional pooling draws its regions from the dropout key
    # (tests/models/test_regularizer_layers.py checks it).
    "fmp_convnet": ({"num_layers": 2, "width": 8, "pool": "max"}, (16, 16, 3)),
}
# Extra rows exercising other configurations of the same factories.
EXTRA_CASES: dict[str, tuple[str, dict, tuple[int, ...]]] = {
    "mlp_layer_norm_tanh": ("mlp", {"hidden_sizes": (16,), "norm": "layer", "activation": "tanh"}, (6,)),
}
ALL_CASES = {name: (name, cfg, shape) for name, (cfg, shape) in CASES.items()} | EXTRA_CASES
BN_CASES = ("mlp", "vgg", "resnet", "mobilenet")
FLATTENING = ("linear", "mlp", "two_layer_net", "mlp_layer_norm_tanh")
NAMED = [(key, key) for key in ALL_CASES]


def build(case: str, **overrides) -> tuple[models.Model, tuple[int, ...]]:
    name, config, shape = ALL_CASES[case]
    return models.get(name, num_classes=NUM_CLASSES, **(config | overrides)), shape


class Setup(NamedTuple):
    model: models.Model
    shape: tuple[int, ...]
    init: Callable  # jitted (rng) -> (params, state)
    train: Callable  # jitted (params, state, x) -> (logits, state), train=True
    eval: Callable  # jitted, train=False


@functools.lru_cache(maxsize=None)
def setup(case: str) -> Setup:
    """One model per case with its jitted functions, shared by the tests (compiles dominate)."""
    model, shape = build(case)
    return Setup(
        model,
        shape,
        jax.jit(lambda k: model.init(k, shape)),
        jax.jit(lambda p, s, x: model.apply(p, s, x, train=True)),
        jax.jit(lambda p, s, x: model.apply(p, s, x, train=False)),
    )


def key(seed: int) -> jax.Array:
    """A key of the 'rbg' implementation.

    XLA:CPU compiles the default threefry generator slowly (tens of seconds for
    a ResNet's init on a loaded 2-core machine); the models never look at the
    key implementation, and :func:`test_same_seed_same_numbers_with_default_keys`
    covers the default one.
    """
    return jax.random.key(seed, impl="rbg")


def batch(shape: tuple[int, ...], n: int, seed: int = 0) -> tuple[jax.Array, jax.Array]:
    kx, ky = jax.random.split(key(seed))
    return jax.random.normal(kx, (n, *shape)), jax.random.randint(ky, (n,), 0, NUM_CLASSES)


def mean_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return losses.softmax_cross_entropy(logits=logits, labels=labels).mean()


# Registered models whose inputs are not images or signals (integer tokens), with their own file.
OWN_TESTS = {"next_token_rnn": "tests/models/test_next_token.py"}


def test_every_name_has_a_case():
    assert set(CASES) | set(OWN_TESTS) == set(models.NAMES)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="model name: expected one of .*three_layer_convnet.*, got 'resnet9000'"):
        models.get("resnet9000")


def test_unknown_keyword_is_a_value_error_listing_the_valid_ones():
    # Not a TypeError from the factory's signature: the registry checks keywords first.
    with pytest.raises(
        ValueError, match=r"mlp keyword arguments: expected some of \(hidden_sizes, num_classes.*got unknown hidden$"
    ):
        models.get("mlp", hidden=(3,))


def test_module_names_are_not_shadowed():
    # The factories live in private modules; the public name is the factory, never a module.
    assert callable(models.resnet) and models.REGISTRY.factory("resnet") is models.resnet
    with pytest.raises(ModuleNotFoundError):
        __import__("jax231.models.resnet")


class ModelTableTest(parameterized.TestCase):
    @parameterized.named_parameters(*NAMED)
    def test_shapes_jit_equals_no_jit(self, case):
        su = setup(case)
        params, state = su.init(key(0))
        x, _ = batch(su.shape, 5)
        for train, jitted_fn in ((False, su.eval), (True, su.train)):
            eager = su.model.apply(params, state, x, train=train)
            jitted = jitted_fn(params, state, x)
            chex.assert_shape(eager[0], (5, NUM_CLASSES))
            chex.assert_tree_all_finite(eager)
            # 1e-5: the same float32 program, fused differently by XLA.
            chex.assert_trees_all_close(eager, jitted, rtol=1e-5, atol=1e-5)
            chex.assert_trees_all_equal_shapes_and_dtypes(eager[1], state)

    @parameterized.named_parameters(*NAMED)
    def test_same_seed_same_numbers(self, case):
        su = setup(case)
        p1, s1 = su.init(key(3))
        p2, s2 = su.init(key(3))
        p3, _ = su.init(key(4))
        chex.assert_trees_all_equal((p1, s1), (p2, s2))
        x, _ = batch(su.shape, 3)
        chex.assert_trees_all_equal(su.train(p1, s1, x), su.train(p2, s2, x))
        assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p3)) if a.size > 1)

    @parameterized.named_parameters(*NAMED)
    def test_initial_loss_is_log_num_classes_at_small_init(self, case):
        # The notes' first sanity check: with small weights every class is equally
        # likely, so the softmax loss starts at log C (within 10%).
        su = setup(case)
        small, _ = build(case, init="small")
        params, state = jax.jit(lambda k: small.init(k, su.shape))(key(1))
        x, y = batch(su.shape, 32)
        logits, _ = su.train(params, state, x)  # the same apply: init only changes the numbers
        loss = float(mean_loss(logits, y))
        assert abs(loss - math.log(NUM_CLASSES)) < 0.1 * math.log(NUM_CLASSES), loss

    @parameterized.named_parameters(*NAMED)
    def test_overfits_a_tiny_batch(self, case):
        # The notes' second sanity check: 20 examples with random labels are memorised
        # (100% training accuracy, measured in eval mode) within a fixed Adam budget.
        su = setup(case)
        model = su.model
        params, state = su.init(key(0))
        x, y = batch(su.shape, 20, seed=1)
        opt = optax.adam(1e-2)

        def step(carry, i):
            params, state, opt_state = carry

            def loss_fn(p):
                logits, new_state = model.apply(p, state, x, train=True)
                return mean_loss(logits, y), new_state

            (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), state, opt_state), loss

        @jax.jit
        def train(params, state):
            return jax.lax.scan(step, (params, state, opt.init(params)), jnp.arange(200))

        (params, state, _), losses = train(params, state)
        logits, _ = su.eval(params, state, x)
        accuracy = float(jnp.mean(jnp.argmax(logits, -1) == y))
        assert accuracy == 1.0, (accuracy, losses[::20])
        assert losses[-1] < 0.1 * losses[0]

    @parameterized.named_parameters(*NAMED)
    def test_vmap_over_params_equals_a_loop_over_seeds(self, case):
        su = setup(case)
        seeds = [su.init(key(i)) for i in range(2)]
        params, state = jax.tree.map(lambda *leaves: jnp.stack(leaves), *seeds)  # stacked over seeds
        x, _ = batch(su.shape, 4)
        logits, new_state = jax.jit(jax.vmap(lambda p, s: su.model.apply(p, s, x, train=True)))(params, state)
        chex.assert_shape(logits, (2, 4, NUM_CLASSES))
        for i, (p_i, s_i) in enumerate(seeds):
            ref, ref_state = su.train(p_i, s_i, x)
            # 1e-4: batched vs unbatched float32 kernels sum in different orders.
            chex.assert_trees_all_close(logits[i], ref, rtol=1e-4, atol=1e-4)
            chex.assert_trees_all_close(jax.tree.map(lambda a: a[i], new_state), ref_state, rtol=1e-4, atol=1e-4)

    @parameterized.named_parameters(*NAMED)
    def test_wrong_input_rank_or_shape_raises(self, case):
        su = setup(case)
        model, shape = su.model, su.shape
        params, state = su.init(key(0))
        with self.assertRaisesRegex(ValueError, r" x: expected (shape|\d+ channels)|features"):
            model.apply(params, state, jnp.zeros(shape[:-1] + (shape[-1] + 1,))[None], train=False)
        if case in FLATTENING:
            return  # linear models flatten any (N, ...) input: only the feature count matters
        with self.assertRaisesRegex(ValueError, r" x: expected shape"):
            model.apply(params, state, jnp.zeros((2,) + shape + (1,)), train=False)
        with self.assertRaisesRegex(ValueError, "input_shape"):
            model.init(key(0), shape[:-1])


class BatchNormModelTest(parameterized.TestCase):
    @parameterized.named_parameters(*[(c, c) for c in BN_CASES])
    def test_train_and_eval_differ_and_only_train_updates_state(self, case):
        su = setup(case)
        params, state = su.init(key(0))
        x, _ = batch(su.shape, 6)
        x = 3.0 * x + 1.0  # batch statistics far from the initial running ones (0, 1)
        train_logits, train_state = su.train(params, state, x)
        eval_logits, eval_state = su.eval(params, state, x)
        assert float(jnp.max(jnp.abs(train_logits - eval_logits))) > 1e-3
        chex.assert_trees_all_equal(eval_state, state)
        for old, new in zip(jax.tree.leaves(state), jax.tree.leaves(train_state)):
            assert not np.allclose(old, new)
        assert jax.tree.structure(train_state) == jax.tree.structure(state)


def test_linear_classifier_trains_with_the_svm_loss():
    # The notes train the same linear model with either loss; the hinge loss also
    # memorises 20 random labels in 48 dimensions.
    su = setup("linear")
    params, state = su.init(key(0))
    x, y = batch(su.shape, 20, seed=2)
    opt = optax.adam(1e-2)

    def step(carry, _):
        params, opt_state = carry
        loss_fn = lambda p: losses.svm_loss(logits=su.model.apply(p, state, x, train=True)[0], labels=y).mean()  # noqa: E731
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    (params, _), hinge = jax.jit(lambda p: jax.lax.scan(step, (p, opt.init(p)), None, length=200))(params)
    assert float(hinge[-1]) < 0.05 * float(hinge[0])
    assert float(losses.accuracy(logits=su.eval(params, state, x)[0], labels=y)) == 1.0


def test_same_seed_same_numbers_with_default_keys():
    model, shape = build("linear")
    init = jax.jit(lambda k: model.init(k, shape))
    chex.assert_trees_all_equal(init(jax.random.key(0)), init(jax.random.key(0)))
    chex.assert_trees_all_equal(init(jax.random.PRNGKey(0)), init(jax.random.key(0)))


def test_models_without_batch_norm_have_empty_state():
    for case in ("linear", "two_layer_net", "three_layer_convnet", "cnn1d", "rnn", "lstm", "gru"):
        model, shape = build(case)
        assert jax.eval_shape(lambda k: model.init(k, shape), jax.random.key(0))[1] == {}, case


# --- Pinned parameter counts, computed by hand from each architecture. -------------


def _conv_bn(window, c_in, c_out):  # conv without bias + BN gamma/beta
    return window * window * c_in * c_out + 2 * c_out


def _resnet_count(depth, width, block, c_in=3, num_classes=10):
    n = (depth - 2) // (6 if block == "basic" else 9)
    total = _conv_bn(3, c_in, width)
    c = width
    for s in range(3):
        w = width * 2**s
        for b in range(n):
            out = w if block == "basic" else 4 * w
            if block == "basic":
                total += _conv_bn(3, c, w) + _conv_bn(3, w, w)
            else:
                total += _conv_bn(1, c, w) + _conv_bn(3, w, w) + _conv_bn(1, w, out)
            if c != out or (s > 0 and b == 0):
                total += _conv_bn(1, c, out)
            c = out
    return total + c * num_classes + num_classes


def _mobilenet_count(blocks, stem_width=32, c_in=3, num_classes=10):
    total = 9 * c_in * stem_width + 2 * stem_width  # 3x3 stem conv + BN
    c = stem_width
    for out, _ in blocks:
        total += (9 * c + 2 * c) + (c * out + 2 * out)  # depthwise 3x3 + BN, pointwise 1x1 + BN
        c = out
    return total + c * num_classes + num_classes


MOBILENET_V1 = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]

PARAM_COUNTS = [
    # The course's two-layer net on CIFAR-10: 3072 -> 100 -> 10.
    ("two_layer_net", {}, (32, 32, 3), 3072 * 100 + 100 + 100 * 10 + 10),
    ("linear", {}, (32, 32, 3), 3072 * 10 + 10),
    (
        "mlp",
        {"hidden_sizes": (20, 30), "norm": "batch"},
        (7,),
        7 * 20 + 20 + 2 * 20 + 20 * 30 + 30 + 2 * 30 + 30 * 10 + 10,
    ),
    # Course defaults: 32 7x7 filters, 100 hidden units; the pool leaves 16x16x32.
    ("three_layer_convnet", {}, (32, 32, 3), 7 * 7 * 3 * 32 + 32 + 16 * 16 * 32 * 100 + 100 + 100 * 10 + 10),
    # MNIST-1D CNN: 40 -> 20 -> 10 -> 5 samples of 25 channels, kernel 5.
    ("cnn1d", {}, (40, 1), (5 * 1 * 25 + 25) + 2 * (5 * 25 * 25 + 25) + 5 * 25 * 10 + 10),
    # VGG-16 convolutions (13 layers) + 512 hidden + head on 32x32 CIFAR: 1x1x512 after 5 pools.
    (
        "vgg",
        {},
        (32, 32, 3),
        sum(
            9 * a * b + b
            for a, b in [
                (3, 64),
                (64, 64),
                (64, 128),
                (128, 128),
                (128, 256),
                (256, 256),
                (256, 256),
                (256, 512),
                (512, 512),
                (512, 512),
                (512, 512),
                (512, 512),
                (512, 512),
            ]
        )
        + 512 * 512
        + 512
        + 512 * 10
        + 10,
    ),
    # ResNet-20 of He et al. (0.27M parameters in their table 6) and ResNet-29 bottleneck.
    ("resnet", {}, (32, 32, 3), _resnet_count(20, 16, "basic")),
    ("resnet", {"depth": 29, "block": "bottleneck"}, (32, 32, 3), _resnet_count(29, 16, "bottleneck")),
    # MobileNet: stem 3x3 conv (32) + BN, then per block 3x3 depthwise + BN + 1x1 pointwise + BN.
    (
        "mobilenet",
        {"blocks": ((8, 1), (16, 2))},
        (8, 8, 3),
        (9 * 3 * 32 + 64) + (9 * 32 + 64 + 32 * 8 + 16) + (9 * 8 + 16 + 8 * 16 + 32) + 16 * 10 + 10,
    ),
    ("mobilenet", {}, (32, 32, 3), _mobilenet_count(MOBILENET_V1)),
    ("rnn", {"hidden_dim": 16}, (40, 1), 1 * 16 + 16 * 16 + 16 + 16 * 10 + 10),
    ("lstm", {"hidden_dim": 16}, (40, 1), 4 * (1 * 16 + 16 * 16 + 16) + 16 * 10 + 10),
    ("gru", {"hidden_dim": 16}, (40, 1), 3 * (1 * 16 + 16 * 16 + 2 * 16) + 16 * 10 + 10),
]


@pytest.mark.parametrize("name, config, shape, expected", PARAM_COUNTS)
def test_pinned_parameter_counts(name, config, shape, expected):
    params, _ = jax.eval_shape(lambda k: models.get(name, **config).init(k, shape), jax.random.key(0))
    assert models.count_params(params) == expected


def test_counts_match_the_papers():
    # He et al. 2016, table 6: ResNet-20 has 0.27M parameters.
    assert round(_resnet_count(20, 16, "basic") / 1e6, 2) == 0.27
    # Howard et al. 2017, table 8: MobileNet v1 (1000 classes) has 4.2M parameters.
    assert round(_mobilenet_count(MOBILENET_V1, num_classes=1000) / 1e6, 1) == 4.2
