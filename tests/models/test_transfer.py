"""Transfer-learning helpers: groups and freeze labels, features at an intermediate stage.

References: the VGG prefix transcribed with ``jax.lax`` primitives in this
file; for ResNet, the last stage's features through the model's own head
equal the full network's logits. Both paths are the same float32 operations,
so the tolerance is 1e-5 (re-association inside XLA's fused kernels).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import models, optimizers, training

VGG = {"stage_widths": (4, 6, 8), "convs_per_stage": (1, 2, 1), "hidden_dims": (8,), "num_classes": 3}


def _vgg_prefix(params, x, stages):
    """conv3x3 (pad 1) + bias -> relu, per conv; 2x2 max pool per stage; flatten."""
    for s in range(stages):
        stage = params[f"stage_{s}"]
        for j in range(VGG["convs_per_stage"][s]):
            x = (
                jax.lax.conv_general_dilated(
                    x, stage[f"conv_{j}"]["w"], (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")
                )
                + stage[f"conv_{j}"]["b"]
            )
            x = jnp.maximum(x, 0.0)
        x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    return x.reshape(x.shape[0], -1)


@pytest.mark.parametrize("stage", [0, 1, 2])
def test_vgg_stage_features_equal_the_manual_prefix(stage):
    params, state = models.vgg(**VGG).init(jax.random.key(0), (16, 16, 3))
    x = jax.random.normal(jax.random.key(1), (2, 16, 16, 3))
    got = models.stage_features("vgg", f"stage_{stage}", **VGG)(params, state, x)
    np.testing.assert_allclose(got, _vgg_prefix(params, x, stage + 1), rtol=1e-5, atol=1e-5)


def test_resnet_last_stage_features_through_the_head_are_the_logits():
    config = {"depth": 14, "width": 4, "num_stages": 2, "num_classes": 3}
    model = models.resnet(**config)
    params, state = model.init(jax.random.key(0), (8, 8, 3))
    x = jax.random.normal(jax.random.key(1), (2, 8, 8, 3))
    feats = models.stage_features("resnet", "stage_1", **config)(params, state, x)
    logits = model.apply(params, state, x, train=False)[0]
    np.testing.assert_allclose(feats @ params["head"]["w"] + params["head"]["b"], logits, rtol=1e-5, atol=1e-5)
    assert models.stage_features("resnet", "stage_0", **config)(params, state, x).shape == (2, 4)


def test_mlp_hidden_layer_features_equal_the_manual_prefix():
    model = models.mlp(hidden_sizes=(7, 5), num_classes=3)
    params, state = model.init(jax.random.key(0), (4, 2))
    x = jax.random.normal(jax.random.key(1), (3, 4, 2))
    h0 = jnp.maximum(x.reshape(3, -1) @ params["dense_0"]["w"] + params["dense_0"]["b"], 0.0)
    h1 = jnp.maximum(h0 @ params["dense_1"]["w"] + params["dense_1"]["b"], 0.0)
    for stage, want in (("dense_0", h0), ("dense_1", h1)):
        got = models.stage_features("mlp", stage, hidden_sizes=(7, 5), num_classes=3)(params, state, x)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_groups_are_ordered_input_to_output_and_bad_names_fail():
    params = jax.eval_shape(lambda k: models.resnet(depth=8, width=4).init(k, (8, 8, 3))[0], jax.random.key(0))
    assert models.param_groups(params) == ("stem", "stage_0", "stage_1", "stage_2", "head")
    assert models.last_groups(params, 2) == ("stage_2", "head")
    with pytest.raises(ValueError, match="n: expected an int in"):
        models.last_groups(params, 6)
    with pytest.raises(ValueError, match="stage: expected one of"):
        models.stage_features("resnet", "stage_3", depth=8, width=4)
    with pytest.raises(ValueError, match="name: expected one of"):
        models.stage_features("linear", "stage_0")


def test_fine_tuning_the_head_leaves_frozen_leaves_exactly_unchanged():
    model = models.mlp(hidden_sizes=(8, 8), num_classes=3)
    params, model_state = model.init(jax.random.key(0), (6,))
    pretrained = models.Model(lambda rng, shape: (params, model_state), model.apply)  # fit starts from params
    labels = models.freeze_labels(params, models.last_groups(params, 1))
    opt = optimizers.multi_transform(
        {"train": optimizers.adam(learning_rate=1e-2), "frozen": optimizers.set_to_zero()}, labels
    )
    rng = np.random.default_rng(0)
    data = {"image": rng.normal(size=(16, 6)).astype(np.float32), "label": rng.integers(0, 3, 16)}
    result = training.fit(pretrained, opt, train=data, num_steps=3, eval_every=3, check_initial_loss=False)
    for g in ("dense_0", "dense_1"):
        jax.tree_util.tree_map(np.testing.assert_array_equal, result.state.params[g], params[g])
    assert not np.array_equal(result.state.params["head"]["w"], params["head"]["w"])
