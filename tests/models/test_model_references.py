"""Models against references: float64 NumPy transcriptions and flax.linen with transplanted weights.

Also the stochastic layers (dropout, DropConnect, stochastic depth), the class
templates, synchronised batch norm on several devices and bad configurations.
"""

from __future__ import annotations

from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import models
from tests import test_utils


def key(seed: int) -> jax.Array:
    # 'rbg' keys compile much faster than threefry on XLA:CPU (see test_models.key).
    return jax.random.key(seed, impl="rbg")


def to_np64(tree):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), tree)


# --- NumPy transcriptions. -------------------------------------------------------------------


def test_two_layer_net_equals_numpy():
    model = models.get("two_layer_net", hidden_size=7, num_classes=4, init="he")
    params, state = model.init(key(0), (3, 2))
    x = np.random.default_rng(0).normal(size=(5, 3, 2)).astype(np.float32)
    scores, _ = model.apply(params, state, x, train=False)
    p = to_np64(params)
    h = np.maximum(0.0, x.reshape(5, 6) @ p["dense_0"]["w"] + p["dense_0"]["b"])
    ref = h @ p["head"]["w"] + p["head"]["b"]
    # float32 model vs float64 NumPy on O(1) numbers.
    assert test_utils.rel_error(scores, ref) < 1e-5


def test_mlp_with_batch_norm_equals_numpy_in_train_and_eval():
    model = models.mlp(hidden_sizes=(6,), num_classes=3, norm="batch", bn_momentum=0.8)
    params, state = model.init(key(1), (4,))
    params["norm_0"] = {"gamma": jnp.linspace(0.5, 1.5, 6), "beta": jnp.linspace(-1.0, 1.0, 6)}
    x = np.random.default_rng(1).normal(size=(8, 4)).astype(np.float32) * 2 + 1
    p = to_np64(params)
    a = x @ p["dense_0"]["w"] + p["dense_0"]["b"]
    mu, var = a.mean(0), a.var(0)  # biased batch variance, as flax and the course
    h = np.maximum(0.0, p["norm_0"]["gamma"] * (a - mu) / np.sqrt(var + 1e-5) + p["norm_0"]["beta"])
    scores, new_state = model.apply(params, state, x, train=True)
    assert test_utils.rel_error(scores, h @ p["head"]["w"] + p["head"]["b"]) < 1e-4
    np.testing.assert_allclose(new_state["norm_0"]["mean"], 0.2 * mu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_state["norm_0"]["var"], 0.8 + 0.2 * var, rtol=1e-5)
    # Eval uses the running statistics passed in.
    s = to_np64(new_state)["norm_0"]
    h = np.maximum(0.0, p["norm_0"]["gamma"] * (a - s["mean"]) / np.sqrt(s["var"] + 1e-5) + p["norm_0"]["beta"])
    scores, _ = model.apply(params, new_state, x, train=False)
    assert test_utils.rel_error(scores, h @ p["head"]["w"] + p["head"]["b"]) < 1e-4


# --- flax.linen transcriptions with our weights transplanted. --------------------------------


def to_flax(tree: Any, *, bn: bool = False) -> Any:
    """Renames our keys to flax's: w -> kernel, b -> bias, gamma -> scale, beta -> bias."""
    if not isinstance(tree, dict):
        return tree
    names = {"w": "kernel", "b": "bias", "gamma": "scale", "beta": "bias"}
    return {names.get(k, k): to_flax(v) for k, v in tree.items()}


class FlaxThreeLayerConvNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Conv(4, (3, 3), padding=((1, 1), (1, 1)), name="conv")(x)
        x = nn.max_pool(nn.relu(x), (2, 2), strides=(2, 2))
        x = nn.relu(nn.Dense(16, name="fc_0")(x.reshape(x.shape[0], -1)))
        return nn.Dense(10, name="head")(x)


class FlaxCNN1D(nn.Module):
    @nn.compact
    def __call__(self, x):
        for i in range(3):
            x = nn.relu(nn.Conv(8, (5,), strides=(2,), padding="SAME", name=f"conv_{i}")(x))
        return nn.Dense(10, name="head")(x.reshape(x.shape[0], -1))


class FlaxBlock(nn.Module):
    width: int
    stride: int
    bottleneck: bool

    @nn.compact
    def __call__(self, x):
        bn = lambda name: nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5, name=name)  # noqa: E731
        conv = lambda c, k, s, name: nn.Conv(c, (k, k), strides=(s, s), padding="SAME", use_bias=False, name=name)  # noqa: E731
        out = self.width * (4 if self.bottleneck else 1)
        if self.bottleneck:
            specs = [(self.width, 1, 1), (self.width, 3, self.stride), (out, 1, 1)]
        else:
            specs = [(self.width, 3, self.stride), (self.width, 3, 1)]
        h = x
        for j, (c, k, s) in enumerate(specs):
            h = bn(f"bn_{j}")(conv(c, k, s, f"conv_{j}")(h))
            if j < len(specs) - 1:
                h = nn.relu(h)
        if self.stride != 1 or x.shape[-1] != out:
            x = bn("shortcut_bn")(conv(out, 1, self.stride, "shortcut_conv")(x))
        return nn.relu(x + h)


class FlaxStage(nn.Module):
    width: int
    blocks: int
    first_stride: int
    bottleneck: bool

    @nn.compact
    def __call__(self, x):
        for b in range(self.blocks):
            x = FlaxBlock(self.width, self.first_stride if b == 0 else 1, self.bottleneck, name=f"block_{b}")(x)
        return x


class FlaxStem(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(self.width, (3, 3), padding="SAME", use_bias=False, name="conv")(x)
        return nn.relu(nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5, name="bn")(x))


class FlaxResNet(nn.Module):
    """He et al.'s CIFAR ResNet written with flax.linen, module names mirroring ours."""

    width: int
    blocks: int
    bottleneck: bool

    @nn.compact
    def __call__(self, x):
        x = FlaxStem(self.width, name="stem")(x)
        for s in range(3):
            x = FlaxStage(self.width * 2**s, self.blocks, 1 if s == 0 else 2, self.bottleneck, name=f"stage_{s}")(x)
        return nn.Dense(10, name="head")(x.mean(axis=(1, 2)))


class FlaxMobileNet(nn.Module):
    """MobileNet v1 blocks with flax.linen: depthwise = grouped conv with one group per channel."""

    blocks: tuple
    stem_width: int

    @nn.compact
    def __call__(self, x):
        x = FlaxStem(self.stem_width, name="stem")(x)
        for i, (out, stride) in enumerate(self.blocks):
            x = FlaxSeparable(out, stride, name=f"block_{i}")(x)
        return nn.Dense(10, name="head")(x.mean(axis=(1, 2)))


class FlaxSeparable(nn.Module):
    out: int
    stride: int

    @nn.compact
    def __call__(self, x):
        bn = lambda name: nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5, name=name)  # noqa: E731
        c = x.shape[-1]
        x = nn.Conv(
            c,
            (3, 3),
            strides=(self.stride,) * 2,
            padding="SAME",
            feature_group_count=c,
            use_bias=False,
            name="depthwise",
        )(x)
        x = nn.relu(bn("depthwise_bn")(x))
        x = nn.Conv(self.out, (1, 1), use_bias=False, name="pointwise")(x)
        return nn.relu(bn("pointwise_bn")(x))


def _flax_vars(params, state):
    variables = {"params": to_flax(params)}
    if state:
        variables["batch_stats"] = state
    return variables


@pytest.mark.parametrize(
    "name, config, shape, flax_model",
    [
        (
            "three_layer_convnet",
            {"num_filters": 4, "filter_size": 3, "hidden_dim": 16},
            (8, 8, 3),
            FlaxThreeLayerConvNet(),
        ),
        ("cnn1d", {"channels": 8}, (40, 1), FlaxCNN1D()),
    ],
)
def test_convnets_equal_flax(name, config, shape, flax_model):
    model = models.get(name, **config)
    params, state = model.init(key(0), shape)
    x = jax.random.normal(key(1), (3, *shape))
    ours, _ = jax.jit(lambda p, x: model.apply(p, state, x, train=False))(params, x)
    theirs = jax.jit(flax_model.apply)({"params": to_flax(params)}, x)
    # Same float32 convolutions; 1e-5 covers different fusion/summation order.
    chex.assert_trees_all_close(ours, theirs, rtol=1e-5, atol=1e-5)


def _assert_train_mode_matches_flax(model, flax_model, params, state, x):
    """Scores and updated batch-norm statistics of one train-mode apply equal flax's."""
    ours, our_state = jax.jit(lambda p, s, x: model.apply(p, s, x, train=True))(params, state, x)
    theirs, updates = jax.jit(lambda v, x: flax_model.apply(v, x, mutable=["batch_stats"]))(
        _flax_vars(params, state), x
    )
    # float32 through ~10 conv+BN layers; BN renormalises, so errors stay at ~1e-5.
    chex.assert_trees_all_close(ours, theirs, rtol=1e-4, atol=1e-4)
    chex.assert_trees_all_close(our_state, updates["batch_stats"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("block, depth, width", [("basic", 8, 4), ("bottleneck", 11, 2)])
def test_resnet_equals_flax_transcription(block, depth, width):
    model = models.resnet(depth=depth, width=width, block=block)
    params, state = model.init(key(0), (8, 8, 3))
    flax_model = FlaxResNet(width, 1, block == "bottleneck")
    x = jax.random.normal(key(1), (4, 8, 8, 3))
    # Parameter counts and tree layout agree with flax's own initialisation.
    flax_vars = jax.eval_shape(flax_model.init, jax.random.key(0), x)
    assert models.count_params(params) == sum(np.prod(a.shape) for a in jax.tree.leaves(flax_vars["params"]))
    assert jax.tree.structure(to_flax(params)) == jax.tree.structure(flax_vars["params"])
    chex.assert_trees_all_equal_shapes(to_flax(params), flax_vars["params"])
    # Train mode: outputs and updated running statistics.
    _assert_train_mode_matches_flax(model, flax_model, params, state, x)


def test_mobilenet_equals_flax_transcription():
    blocks = ((8, 1), (16, 2), (16, 1))
    model = models.mobilenet(blocks=blocks, stem_width=4)
    params, state = model.init(key(0), (8, 8, 3))
    flax_model = FlaxMobileNet(blocks, 4)
    x = jax.random.normal(key(1), (4, 8, 8, 3))
    flax_vars = jax.eval_shape(flax_model.init, jax.random.key(0), x)
    assert jax.tree.structure(to_flax(params)) == jax.tree.structure(flax_vars["params"])
    chex.assert_trees_all_equal_shapes(to_flax(params), flax_vars["params"])
    _assert_train_mode_matches_flax(model, flax_model, params, state, x)


# --- Stochastic layers. --------------------------------------------------------------------


def test_dropout_and_drop_connect_use_the_rng_only_in_train_mode():
    for kwargs in ({"drop_rate": 0.5}, {"drop_connect_rate": 0.5}):
        model = models.mlp(hidden_sizes=(32,), **kwargs)
        params, state = model.init(key(0), (5,))
        x = jax.random.normal(key(1), (4, 5))
        a, _ = model.apply(params, state, x, train=True, rng=key(2))
        b, _ = model.apply(params, state, x, train=True, rng=key(2))
        c, _ = model.apply(params, state, x, train=True, rng=key(3))
        e1, _ = model.apply(params, state, x, train=False)
        e2, _ = models.mlp(hidden_sizes=(32,)).apply(params, state, x, train=False)
        chex.assert_trees_all_equal(a, b)
        assert not np.allclose(a, c) and not np.allclose(a, e1), kwargs
        chex.assert_trees_all_equal(e1, e2)  # eval is the deterministic network (inverted scaling)
        with pytest.raises(ValueError, match="needs rng="):
            model.apply(params, state, x, train=True)


def test_stochastic_depth_drops_residual_branches_in_train_mode_only():
    shape = (8, 8, 3)
    sd = models.resnet(depth=8, width=4, stochastic_depth_rate=0.9)
    plain = models.resnet(depth=8, width=4)
    params, state = plain.init(key(0), shape)
    x = jax.random.normal(key(1), (6, *shape))
    run = jax.jit(lambda r: sd.apply(params, state, x, train=True, rng=r)[0])
    a, b, c = run(key(2)), run(key(2)), run(key(3))
    chex.assert_trees_all_equal(a, b)
    assert not np.allclose(a, c)
    assert not np.allclose(a, plain.apply(params, state, x, train=True)[0])
    # Evaluation uses every block unscaled: identical to the plain network.
    chex.assert_trees_all_close(
        sd.apply(params, state, x, train=False)[0], plain.apply(params, state, x, train=False)[0], rtol=1e-6, atol=1e-6
    )
    with pytest.raises(ValueError, match="needs rng="):
        sd.apply(params, state, x, train=True)


def test_class_templates_are_the_columns_of_w_as_images():
    params, _ = models.linear(num_classes=3).init(key(0), (2, 2, 3))
    templates = models.class_templates(params, (2, 2, 3))
    chex.assert_shape(templates, (3, 2, 2, 3))
    for c in range(3):
        np.testing.assert_array_equal(templates[c], params["w"][:, c].reshape(2, 2, 3))
    with pytest.raises(ValueError, match="image_shape"):
        models.class_templates(params, (3, 3, 3))


# --- Synchronised batch norm across devices. ------------------------------------------------


def test_synchronised_batch_norm_equals_one_device_on_the_whole_batch():
    out = test_utils.run_with_devices(
        """
        import jax, jax.numpy as jnp, numpy as np
        from jax231 import models
        assert jax.device_count() == 2
        for name, cfg, shape in [("mlp", {"hidden_sizes": (8,), "norm": "batch"}, (5,)),
                                 ("resnet", {"depth": 8, "width": 2}, (8, 8, 3))]:
            single = models.get(name, **cfg)
            synced = models.get(name, bn_axis_name="batch", **cfg)
            params, state = single.init(jax.random.key(0, impl="rbg"), shape)
            x = jax.random.normal(jax.random.key(1, impl="rbg"), (8, *shape)) * 2 + 1
            ref, ref_state = jax.jit(lambda p, s, x: single.apply(p, s, x, train=True))(params, state, x)
            f = jax.pmap(lambda p, s, x: synced.apply(p, s, x, train=True), axis_name="batch",
                         in_axes=(None, None, 0))
            logits, new_state = f(params, state, x.reshape(2, 4, *shape))
            np.testing.assert_allclose(logits.reshape(8, -1), ref, rtol=1e-4, atol=1e-4)
            for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(ref_state)):
                np.testing.assert_allclose(a[0], b, rtol=1e-4, atol=1e-5)
                np.testing.assert_allclose(a[1], b, rtol=1e-4, atol=1e-5)
            print(name, "ok")
        """,
        num_devices=2,
    )
    assert out.split() == ["mlp", "ok", "resnet", "ok"]


# --- Bad configurations. ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, config, match",
    [
        ("mlp", {"activation": "swish"}, r"activation: expected one of .*'relu'"),
        ("mlp", {"norm": "group"}, r"norm: expected one of None, 'batch', 'layer'"),
        ("mlp", {"init": "orthogonal"}, r"init: expected one of .*'xavier'"),
        ("mlp", {"drop_rate": 1.0}, r"drop_rate: expected a finite number in \[0, 1\)"),
        ("mlp", {"hidden_sizes": (10, 0)}, r"hidden_sizes\[1\]: expected an int >= 1"),
        ("two_layer_net", {"activation": "nope"}, "activation: expected one of"),
        ("vgg", {"stage_widths": (4, 8), "convs_per_stage": (1,)}, "equal length"),
        ("vgg", {"norm": "layer"}, r"norm: expected one of None, 'batch'"),
        ("resnet", {"depth": 9}, r"depth: expected 6\*n \+ 2"),
        ("resnet", {"block": "wide"}, r"block: expected one of 'basic', 'bottleneck'"),
        ("resnet", {"stochastic_depth_rate": -0.1}, r"stochastic_depth_rate: expected a finite number in \[0, 1\)"),
        ("three_layer_convnet", {"filter_size": 4}, "filter_size: expected an odd int"),
        ("mobilenet", {"width_multiplier": 0.0}, "width_multiplier: expected a number > 0"),
        ("cnn1d", {"kernel_size": 0}, "kernel_size: expected an int >= 1"),
        ("lstm", {"hidden_dim": -1}, "hidden_dim: expected an int >= 1"),
        ("linear", {"num_classes": 0}, "num_classes: expected an int >= 1"),
    ],
)
def test_bad_config_raises_with_the_accepted_values(name, config, match):
    with pytest.raises(ValueError, match=match):
        models.get(name, **config)


def test_bad_input_shapes_at_init_raise():
    with pytest.raises(ValueError, match=r"input_shape: expected \(H, W, C\)"):
        models.resnet(depth=8).init(key(0), (8, 8))
    with pytest.raises(ValueError, match=r"divisible by 2\*\*len\(stage_widths\) = 4"):
        models.vgg(stage_widths=(4, 4), convs_per_stage=(1, 1)).init(key(0), (6, 6, 3))
    with pytest.raises(ValueError, match=r"input_shape: expected \(T, D\)"):
        models.gru_classifier().init(key(0), (40,))
