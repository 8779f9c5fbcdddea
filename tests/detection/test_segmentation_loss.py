"""The segmenter's soft Dice loss and its sum with the pixel cross-entropy, against float64 NumPy;
the U-Net's skip variants.

References: a NumPy transcription of the Dice formula of :mod:`jax231.detection._segmentation_loss`
and of the pixel cross-entropy; the gradient against centred differences in float64.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import detection, gradcheck, models


def _numpy_dice(logits, labels, smooth):
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    n, _, _, c = z.shape
    out = np.zeros(n)
    for i in range(n):
        scores = []
        for k in range(c):
            y = (labels[i] == k).astype(np.float64)
            scores.append((2 * np.sum(p[i, ..., k] * y) + smooth) / (np.sum(p[i, ..., k]) + np.sum(y) + smooth))
        out[i] = 1 - np.mean(scores)
    return out


def _numpy_cross_entropy(logits, labels):
    z = logits.astype(np.float64)
    log_p = z - z.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    return -np.take_along_axis(log_p, labels[..., None], -1)[..., 0].mean(axis=(1, 2))


def _data(seed=0, shape=(3, 5, 6, 4)):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=shape).astype(np.float32) * 2
    labels = rng.integers(0, shape[-1] - 1, size=shape[:3])  # The last class is absent everywhere.
    return logits, labels


@pytest.mark.parametrize("smooth", [1.0, 1e-3])
def test_soft_dice_equals_numpy_formula(smooth):
    logits, labels = _data()
    got = detection.soft_dice_loss(logits=logits, labels=labels, smooth=smooth)
    # float32 softmax and sums of 30 terms against float64: a few ulps of values in [0, 1].
    np.testing.assert_allclose(got, _numpy_dice(logits, labels, smooth), rtol=1e-5, atol=1e-6)


def test_segmentation_loss_is_cross_entropy_plus_weighted_dice_with_named_terms():
    logits, labels = _data(1)
    values, terms = detection.segmentation_loss(logits=logits, labels=labels, dice_weight=0.5)
    ce, dice = _numpy_cross_entropy(logits, labels), _numpy_dice(logits, labels, 1.0)
    np.testing.assert_allclose(terms["cross_entropy"], ce, rtol=1e-5)
    np.testing.assert_allclose(terms["dice"], dice, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values, ce + 0.5 * dice, rtol=1e-5)


def test_dice_of_confident_truth_is_near_zero_and_gradient_is_right():
    logits, labels = _data(2)
    perfect = 30.0 * jax.nn.one_hot(labels, logits.shape[-1])
    # Every class score is exactly 1 up to exp(-30) leaks: the loss is 0 to float32 precision.
    np.testing.assert_allclose(detection.soft_dice_loss(logits=perfect, labels=labels), 0.0, atol=1e-6)
    small, small_labels = _data(3, shape=(2, 3, 3, 3))
    with jax.enable_x64():
        f = jax.jit(lambda z: jnp.sum(detection.soft_dice_loss(logits=z, labels=small_labels)))
        z = jnp.asarray(small, jnp.float64)
        num = gradcheck.numerical_grad(f, z)
        # float64 centred differences (h = 1e-5) of a smooth function: error ~1e-10.
        assert gradcheck.rel_error(jax.grad(f)(z), num) < 1e-6


def test_masks_of_the_wrong_shape_raise_one_line_value_errors():
    logits = np.zeros((2, 4, 4, 3))
    for fn in (detection.soft_dice_loss, detection.segmentation_loss):
        with pytest.raises(ValueError, match=r"^labels: expected shape \(2, 4, 4\)[^\n]*$"):
            fn(logits=logits, labels=np.zeros((2, 4, 5), int))
    with pytest.raises(ValueError, match="^smooth: expected a positive float"):
        detection.soft_dice_loss(logits=logits, labels=np.zeros((2, 4, 4), int), smooth=0.0)


def test_unet_additive_skips_norm_and_coarse_scores_have_the_right_shapes():
    model = models.unet(
        num_classes=5, widths=(2, 4, 4), convs_per_block=1, skip="add", coarse_scores=True, norm_groups=2
    )
    params, state = model.init(jax.random.key(0), (8, 8, 1))
    out, _ = jax.jit(lambda p, x: model.apply(p, state, x, train=False))(params, jnp.zeros((2, 8, 8, 1)))
    chex.assert_shape(out, (2, 8, 8, 5))
    # The sum keeps the decoder's input width: the level-1 block reads 2 channels, not 4.
    assert params["up1"]["conv1"]["w"].shape == (3, 3, 2, 2)
    assert sorted(params["down1"]) == sorted(params["up2"]) == ["conv1", "norm1"]
    assert params["coarse_head"]["w"].shape == (1, 1, 4, 5)
    assert params["down2"]["norm1"]["gamma"].shape == (4,)
    np.testing.assert_array_equal(np.isfinite(out), True)
    with pytest.raises(ValueError, match="^skip: expected one of"):
        models.unet(num_classes=3, skip="max")
