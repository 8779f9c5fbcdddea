"""The affine warp (against scipy.ndimage and NumPy), its Augment options, and RandAugment."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage

from jax231 import gradcheck, pipelines
from jax231.pipelines import _augment, _randaugment


def _scipy_warp(x, matrix, offset):
    return np.stack(
        [
            scipy.ndimage.affine_transform(
                x[..., k].astype(np.float64),
                np.asarray(matrix, np.float64),
                np.asarray(offset, np.float64),
                order=1,
                mode="grid-constant",
                cval=0.0,
            )
            for k in range(x.shape[-1])
        ],
        axis=-1,
    )


@pytest.mark.parametrize(
    "transform",
    [
        {"rotation": 0.3, "scale": 1.1, "stretch": 0.9, "shear": 0.2, "translation": (0.5, -1.25)},
        {"rotation": -1.0},
        {"scale": 0.7, "shear": -0.4},
    ],
)
def test_affine_warp_matches_scipy_affine_transform_order_1(transform):
    x = np.random.default_rng(0).standard_normal((9, 11, 2)).astype(np.float32)
    matrix, offset = pipelines.affine_matrix((9, 11), **transform)
    ours = jax.jit(pipelines.affine_warp)(x, matrix, offset)
    # float32 interpolation against float64: values of order 1, a few ulps.
    np.testing.assert_allclose(ours, _scipy_warp(x, matrix, offset), rtol=1e-5, atol=1e-5)


def test_affine_matrix_geometry_matches_numpy_rotations_and_shears():
    x = np.random.default_rng(1).standard_normal((5, 5, 1)).astype(np.float32)
    identity = pipelines.affine_matrix((5, 5))
    np.testing.assert_array_equal(pipelines.affine_warp(x, *identity), x)
    rot90 = pipelines.affine_warp(x, *pipelines.affine_matrix((5, 5), rotation=math.pi / 2))
    np.testing.assert_allclose(rot90, np.rot90(x), atol=1e-5)  # counter-clockwise on screen
    rot180 = pipelines.affine_warp(x, *pipelines.affine_matrix((5, 5), rotation=math.pi))
    np.testing.assert_allclose(rot180, x[::-1, ::-1], atol=1e-5)
    # Shear k = 1 about the centre row 2: out[i, j] = x[i, j - (i - 2)], zero outside.
    sheared = pipelines.affine_warp(x, *pipelines.affine_matrix((5, 5), shear=1.0))
    expected = np.zeros_like(x)
    for i in range(5):
        for j in range(5):
            if 0 <= j - (i - 2) < 5:
                expected[i, j] = x[i, j - (i - 2)]
    np.testing.assert_allclose(sheared, expected, atol=1e-5)


def test_affine_warp_gradient_with_respect_to_the_image():
    x = np.random.default_rng(2).standard_normal((5, 6, 2))
    matrix, offset = pipelines.affine_matrix((5, 6), rotation=0.4, scale=1.2)
    matrix, offset = np.asarray(matrix, np.float64), np.asarray(offset, np.float64)
    gradcheck.check_grads(lambda v: pipelines.affine_warp(v, matrix, offset), x, num_checks=20)


def test_augment_warp_step_is_affine_warp_of_the_drawn_map():
    cfg = _augment.Augment(pad_crop=0, flip=False, rotate=25.0, scale=0.2, stretch=0.1, shear=0.3)
    images = np.random.default_rng(3).standard_normal((64, 8, 8, 3)).astype(np.float32)
    params = _augment.sample_params(jax.random.key(0), 64, images.shape[1:], cfg)
    ours = jax.vmap(lambda p, x: _augment.apply_params(p, x, cfg))(params, jnp.asarray(images))
    warp = np.asarray(params.warp)
    for i in range(0, 64, 16):
        np.testing.assert_allclose(ours[i], _scipy_warp(images[i], warp[i, :, :2], warp[i, :, 2]), rtol=1e-5, atol=1e-5)
    # The forward map M = A^{-1} = R K S: det M = s^2 (stretch and shear keep area) with s in [0.8, 1.2].
    det = 1.0 / np.linalg.det(warp[:, :, :2])
    assert np.all((det >= 0.8**2 - 1e-5) & (det <= 1.2**2 + 1e-5)) and det.std() > 0.01


def test_augment_batch_with_a_warp_is_seeded_and_keeps_the_other_draws():
    images = jnp.asarray(np.random.default_rng(4).random((8, 10, 10, 3), dtype=np.float32))
    fn = jax.jit(lambda key, x: pipelines.augment_batch(key, x, pad_crop=2, rotate=15.0, shear=0.1))
    a, b, c = fn(jax.random.key(0), images), fn(jax.random.key(0), images), fn(jax.random.key(1), images)
    chex.assert_shape(a, images.shape)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # Adding the warp does not change the draws of the other steps (same seed, same crops).
    plain = _augment.sample_params(jax.random.key(0), 8, (10, 10, 3), _augment.Augment(pad_crop=2))
    warped = _augment.sample_params(jax.random.key(0), 8, (10, 10, 3), _augment.Augment(pad_crop=2, rotate=15.0))
    np.testing.assert_array_equal(plain.crop, warped.crop)
    np.testing.assert_array_equal(plain.flip, warped.flip)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"rotate": -1.0}, r"^rotate: expected a value in \[0, 180\]"),
        ({"scale": 1.0}, r"^scale: expected a value in \[0, 1\)"),
        ({"stretch": -0.1}, r"^stretch: expected"),
        ({"shear": -0.1}, r"^shear: expected"),
    ],
)
def test_bad_warp_options_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pipelines.augment_batch(jax.random.key(0), jnp.zeros((2, 4, 4, 3)), **kwargs)


def test_warp_rejects_signals_and_the_tf_twin():
    with pytest.raises(ValueError, match=r"^images: rotate/scale/stretch/shear need images"):
        pipelines.augment_batch(jax.random.key(0), jnp.zeros((2, 9, 1)), rotate=10.0)
    from jax231.pipelines import _tf_augment  # deferred: imports TensorFlow

    with pytest.raises(ValueError, match=r"^augment: rotate/scale/stretch/shear .* on the device only"):
        _tf_augment.sample_params(None, (4, 4, 3), 2, _augment.Augment(rotate=10.0))


# ----------------------------------------------------------------------------- RandAugment


def test_rand_augment_applies_one_of_the_ops_per_step():
    images = jnp.asarray(np.random.default_rng(5).random((32, 8, 8, 3), dtype=np.float32))
    key = jax.random.key(7)
    out = jax.jit(lambda k, x: pipelines.rand_augment(k, x, num_ops=1, magnitude=0.6))(key, images)
    branches = _randaugment._op_branches((8, 8), 3, 0.6)

    @jax.jit
    def every_op(example_key, x):
        # Re-derive each example's op from the documented key split; return it and every op's output.
        k_choice, k_op = jax.random.split(jax.random.split(example_key, 1)[0])
        index = jax.random.randint(k_choice, (), 0, len(_randaugment.OPS))
        return index, jnp.stack([branch(k_op, x) for branch in branches])

    index, candidates = jax.vmap(every_op)(jax.random.split(key, 32), images)
    np.testing.assert_allclose(out, candidates[np.arange(32), index], rtol=1e-6, atol=1e-6)
    assert len(set(np.asarray(index).tolist())) >= 7  # uniform over 12 ops: 32 draws cover most


def test_rand_augment_ops_follow_their_formulas():
    x = jnp.asarray(np.random.default_rng(6).random((6, 7, 3), dtype=np.float32))
    branches = dict(zip(_randaugment.OPS, _randaugment._op_branches((6, 7), 3, 0.5)))
    key = jax.random.key(0)
    np.testing.assert_array_equal(branches["identity"](key, x), x)
    np.testing.assert_array_equal(branches["flip"](key, x), x[:, ::-1])
    delta = np.asarray(branches["brightness"](key, x) - x)
    np.testing.assert_allclose(np.abs(delta), 0.15, rtol=1e-5)  # m * 0.3, one sign for the image
    rotated = np.asarray(branches["rotate"](key, x))
    candidates = [
        _scipy_warp(np.asarray(x), *map(np.asarray, pipelines.affine_matrix((6, 7), rotation=s * math.radians(15))))
        for s in (1, -1)
    ]
    assert min(np.abs(rotated - c).max() for c in candidates) < 1e-5


def test_rand_augment_edge_cases_and_bad_input():
    images = jnp.asarray(np.random.default_rng(8).random((16, 6, 6, 3), dtype=np.float32))
    np.testing.assert_array_equal(pipelines.rand_augment(jax.random.key(0), images, num_ops=0), images)  # no op
    # Magnitude 0: every op is the identity except the (magnitude-free) mirror.
    out = jax.jit(lambda k, x: pipelines.rand_augment(k, x, num_ops=3, magnitude=0.0))(jax.random.key(0), images)
    same = np.all(np.isclose(out, images, atol=1e-6), axis=(1, 2, 3))
    mirrored = np.all(np.isclose(out, images[:, :, ::-1], atol=1e-6), axis=(1, 2, 3))
    assert np.all(same | mirrored)
    with pytest.raises(ValueError, match=r"^magnitude: expected a float in \[0, 1\]"):
        pipelines.rand_augment(jax.random.key(0), images, magnitude=2.0)
    with pytest.raises(ValueError, match=r"^num_ops: expected an int >= 0"):
        pipelines.rand_augment(jax.random.key(0), images, num_ops=-1)
