"""The speedrun's library blocks: whitening init, Dirac init, flip pairs, label smoothing,
the triangular schedule, the airbench net's options and the bf16 check.

References: float64 NumPy transcriptions (patch PCA, patches by explicit loops, np.interp),
optax (label smoothing), ``lax.conv`` through ``conv2d`` (the identity filters).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jax231 import losses, models, optimizers, pipelines
from jax231.models import layers
from jax231.optimizers import schedules
from jax231.training import fit


def _numpy_patches(x: np.ndarray, k: int, s: int) -> np.ndarray:
    """Patches by explicit loops, flattened in (row, column, channel) order."""
    n, h, w, c = x.shape
    rows = []
    for i in range(n):
        for r in range(0, h - k + 1, s):
            for q in range(0, w - k + 1, s):
                rows.append(x[i, r : r + k, q : q + k, :].reshape(-1))
    return np.asarray(rows)


@pytest.mark.parametrize("k, s", [(2, 2), (2, 1), (3, 1)])
def test_image_patches_match_explicit_loops(k, s):
    x = (
        np.random.default_rng(0).normal(size=(3, 8, 8, 3))
        if k != 3
        else np.random.default_rng(0).normal(size=(3, 7, 7, 2))
    )
    np.testing.assert_array_equal(layers.image_patches(x, k, stride=s), _numpy_patches(x, k, s))


@pytest.mark.parametrize("k, s", [(2, None), (2, 1)])
def test_whitening_filters_reproduce_numpy_pca_of_the_patches(k, s):
    x = np.random.default_rng(1).normal(size=(20, 8, 8, 3)) * np.array([1.0, 0.5, 2.0])
    x[..., 1] += 0.7 * x[..., 0]  # correlated channels
    eps = 5e-4
    filters = layers.whitening_filters(x, patch_size=k, eps=eps, stride=s)
    d = k * k * 3
    chex.assert_shape(filters, (k, k, 3, 2 * d))
    p = _numpy_patches(x, k, s or k)
    lam, u = np.linalg.eigh(p.T @ p / len(p))
    lam, u = lam[::-1], u[:, ::-1]
    expected = u / np.sqrt(lam + eps)
    got = filters.reshape(d, 2 * d).astype(np.float64)
    # Eigenvectors are defined up to sign; float32 filters: rtol 1e-4.
    signs = np.sign(np.sum(got[:, :d] * expected, axis=0))
    np.testing.assert_allclose(got[:, :d], expected * signs, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got[:, d:], -got[:, :d])
    # The whitened patches have covariance diag(lambda / (lambda + eps)) (the identity up to eps).
    white = p @ got[:, :d]
    np.testing.assert_allclose(white.T @ white / len(p), np.diag(lam / (lam + eps)), atol=1e-4)


def test_whitening_as_the_first_convolution_whitens_the_patches():
    x = np.random.default_rng(2).normal(size=(16, 8, 8, 3))
    filters = layers.whitening_filters(x, patch_size=2, eps=0.0, stride=1)
    y = np.asarray(layers.conv2d(jnp.asarray(x, jnp.float32), filters, padding=0, impl="xla"))[..., :12]
    cov = y.reshape(-1, 12).T @ y.reshape(-1, 12) / (16 * 7 * 7)
    np.testing.assert_allclose(cov, np.eye(12), atol=2e-3)  # float32 conv of unit-variance outputs


@pytest.mark.parametrize(
    "k, message",
    [
        (3, r"^patch_size: expected k <= 32 with \(H - k\) and \(W - k\) multiples of the stride 3"),
        (0, r"^patch_size: expected a positive int, got 0$"),
    ],
)
def test_patch_size_that_does_not_tile_is_one_line_value_error(k, message):
    with pytest.raises(ValueError, match=message) as err:
        layers.whitening_filters(np.zeros((2, 32, 32, 3)), patch_size=k)
    assert "\n" not in str(err.value)


def test_dirac_filters_pass_the_first_channels_through():
    w = jax.random.normal(jax.random.PRNGKey(0), (3, 3, 4, 6))
    d = layers.dirac(w)
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 5, 5, 4))
    y = jax.jit(lambda x, d: layers.conv2d(x, d, padding=1, impl="xla"))(x, d)
    np.testing.assert_allclose(y[..., :4], x, atol=1e-6)
    np.testing.assert_array_equal(d[..., 4:], w[..., 4:])  # the other filters keep their values
    wide = layers.dirac(jnp.ones((3, 3, 6, 4)))  # fewer outputs than inputs: output o copies input o
    np.testing.assert_allclose(layers.conv2d(jnp.ones((1, 3, 3, 6)), wide, padding=1, impl="xla")[0, 1, 1], np.ones(4))


def test_flip_pairs_shows_each_image_once_in_each_orientation():
    images = np.random.default_rng(0).integers(0, 255, size=(5, 4, 6, 3)).astype(np.uint8)
    out = pipelines.flip_pairs({"image": images, "label": np.arange(5)})
    np.testing.assert_array_equal(out["image"][:5], images)
    np.testing.assert_array_equal(out["image"][5:], images[:, :, ::-1])
    np.testing.assert_array_equal(out["label"], np.r_[np.arange(5), np.arange(5)])
    with pytest.raises(ValueError, match=r"^arrays: expected an 'image' of shape \(N, H, W, C\)"):
        pipelines.flip_pairs({"image": images[0], "label": np.arange(1)})


@pytest.mark.parametrize("alpha", [0.0, 0.2, 1.0])
def test_smoothed_cross_entropy_matches_optax(alpha):
    logits = jax.random.normal(jax.random.PRNGKey(0), (7, 10)) * 3
    labels = jnp.arange(7) % 10
    expected = optax.softmax_cross_entropy(logits, optax.smooth_labels(jax.nn.one_hot(labels, 10), alpha))
    np.testing.assert_allclose(
        losses.smoothed_cross_entropy(logits=logits, labels=labels, smoothing=alpha), expected, rtol=1e-5
    )
    with pytest.raises(ValueError, match=r"^smoothing: expected a float in \[0, 1\], got 1.5$"):
        losses.smoothed_cross_entropy(logits=logits, labels=labels, smoothing=1.5)


def test_piecewise_linear_is_numpy_interp():
    sched = schedules.piecewise_linear((0, 23, 100), (0.2, 1.0, 0.07))
    steps = np.arange(-3, 110)
    np.testing.assert_allclose(
        jax.vmap(sched)(jnp.asarray(steps)), np.interp(steps, (0, 23, 100), (0.2, 1.0, 0.07)), rtol=1e-6
    )
    with pytest.raises(ValueError, match=r"^steps: expected increasing steps >= 0"):
        schedules.piecewise_linear((0, 5, 5), (1.0, 1.0, 1.0))


def _net(**kwargs):
    return models.airbench_net(layers.whitening_filters(np.random.default_rng(0).normal(size=(4, 32, 32, 3))), **kwargs)


def test_airbench_net_shapes_frozen_scale_and_parameter_count():
    shapes, _ = jax.eval_shape(lambda: _net().init(jax.random.PRNGKey(0), (32, 32, 3)))
    assert models.count_params(shapes) == 1_971_640  # airbench94's 1.97M (24-channel whitening, 64/256/256)
    model = _net(widths=(8, 16, 16))
    params, state = model.init(jax.random.PRNGKey(0), (32, 32, 3))
    assert set(params["group1"]["norm1"]) == {"beta"}  # the scale is frozen at 1: not a parameter
    apply = jax.jit(lambda p, s, x: model.apply(p, s, x, train=True))
    logits, new_state = apply(params, state, jnp.zeros((2, 32, 32, 3), jnp.uint8))
    chex.assert_shape(logits, (2, 10))
    chex.assert_trees_all_equal_structs(new_state, state)


def test_head_std_rescales_the_head_init():
    plain, _ = _net(widths=(8, 16, 16)).init(jax.random.PRNGKey(0), (32, 32, 3))
    muon, _ = _net(widths=(8, 16, 16), head_std=1.0).init(jax.random.PRNGKey(0), (32, 32, 3))
    head = np.asarray(plain["head"]["w"], np.float64)
    np.testing.assert_allclose(muon["head"]["w"], head / head.std(ddof=1), rtol=1e-5)  # PyTorch's w *= 1 / w.std()
    np.testing.assert_array_equal(muon["group1"]["conv1"]["w"], plain["group1"]["conv1"]["w"])
    with pytest.raises(ValueError, match=r"^head_std: expected a float > 0 or None, got 0.0"):
        _net(head_std=0.0)


def test_bf16_compute_is_close_to_float32():
    x = jax.random.uniform(jax.random.PRNGKey(2), (4, 32, 32, 3))
    f32 = _net(widths=(8, 16, 16))
    bf16 = _net(widths=(8, 16, 16), compute_dtype="bfloat16")
    params, state = f32.init(jax.random.PRNGKey(0), (32, 32, 3))
    (a, sa), (b, sb) = (
        jax.jit(lambda p, s, x, m=m: m.apply(p, s, x, train=True))(params, state, x) for m in (f32, bf16)
    )
    assert b.dtype == jnp.float32 and sb["group1"]["norm1"]["mean"].dtype == jnp.float32
    # bf16 keeps 8 mantissa bits (relative error ~4e-3 per operation, over ~8 layers).
    np.testing.assert_allclose(b, a, atol=0.05 * float(jnp.max(jnp.abs(a))))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"conv_impl": "winograd"},
            r"^conv_impl: expected one of \('auto', 'xla', 'im2col', 'native'\), got 'winograd'$",
        ),
        ({"compute_dtype": "float16"}, r"^compute_dtype: expected one of \('float32', 'bfloat16'\), got 'float16'$"),
        ({"widths": (64, 256)}, r"^widths: expected three positive ints, got \(64, 256\)$"),
    ],
)
def test_airbench_net_bad_options_are_one_line_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _net(**kwargs)


def test_bf16_is_refused_on_a_backend_that_only_emulates_it():
    with pytest.raises(ValueError, match=r"^compute_dtype: expected 'float32' on the cpu backend .*got 'bfloat16'$"):
        models.check_compute_dtype("bfloat16", backend="cpu")
    assert models.check_compute_dtype("bfloat16", backend="gpu") == "bfloat16"
    assert models.check_compute_dtype("float32", backend="cpu") == "float32"


def _tagged_images(n: int, width: int = 4) -> np.ndarray:
    """Image ``i`` holds ``i + 1`` in its first column and ``-1`` in its last: a mirror swaps them."""
    images = np.zeros((n, 2, width, 1), np.float32)
    images[:, :, 0, 0] = np.arange(1, n + 1)[:, None]
    images[:, :, -1, 0] = -1.0
    return images


def _seen(images: np.ndarray) -> list[tuple[int, bool]]:
    """``(image index, mirrored)`` of every tagged image of a batch."""
    first, last = images[:, 0, 0, 0], images[:, 0, -1, 0]
    return [(int(f) - 1, False) if f > 0 else (int(g) - 1, True) for f, g in zip(first, last)]


def test_alternating_flips_inside_fit_show_each_image_once_each_way_per_pair_of_epochs():
    n, batch_size, epochs = 24, 6, 4
    steps_per_epoch = n // batch_size
    batches: dict[int, list[tuple[int, bool]]] = {}

    def record(step, images):
        batches[int(step)] = _seen(np.asarray(images))

    flips = pipelines.alternating_flip_fn(steps_per_epoch)

    def spy(key, batch, *, step):  # fit gives the step to a batch_fn that declares it (on the device)
        batch = flips(key, batch, step=step)
        jax.debug.callback(record, step, batch["image"], ordered=True)
        return batch

    images = pipelines.flip_half(jax.random.PRNGKey(3), _tagged_images(n))
    preflipped = {i for i, mirrored in _seen(np.asarray(images)) if mirrored}
    assert 0 < len(preflipped) < n  # (a random half: 24 fair coins, seed 3)
    fit(
        models.get("linear", num_classes=2),
        optimizers.sgd(0.0),
        train={"image": images, "label": np.zeros(n, np.int32)},
        num_steps=epochs * steps_per_epoch,
        batch_size=batch_size,
        eval_every=epochs * steps_per_epoch,
        batch_fn=spy,
    )
    jax.effects_barrier()
    seen = [sum((batches[t] for t in range(e * steps_per_epoch, (e + 1) * steps_per_epoch)), []) for e in range(epochs)]
    for epoch in range(epochs):
        assert sorted(i for i, _ in seen[epoch]) == list(range(n))  # each image once per epoch
        mirrored = {i for i, m in seen[epoch] if m}
        assert mirrored == (preflipped if epoch % 2 == 0 else set(range(n)) - preflipped)
    for a, b in zip(seen, seen[1:]):  # two consecutive epochs: every image mirrored exactly once
        assert sorted(i for i, m in a + b if m) == list(range(n))


def test_flip_half_mirrors_a_seeded_half_and_alternate_flips_follow_the_epoch_parity():
    images = np.random.default_rng(0).integers(0, 255, size=(64, 3, 5, 2)).astype(np.uint8)
    out = np.asarray(pipelines.flip_half(jax.random.PRNGKey(0), images))
    mirrored = np.all(out == images[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(mirrored | np.all(out == images, axis=(1, 2, 3)))  # each image as is or mirrored
    assert 16 <= mirrored.sum() <= 48  # Bernoulli(1/2) over 64 (outside: p < 1e-4)
    np.testing.assert_array_equal(out, np.asarray(pipelines.flip_half(jax.random.PRNGKey(0), images)))
    np.testing.assert_array_equal(pipelines.alternate_flips(jnp.asarray(out), 2), out)
    np.testing.assert_array_equal(pipelines.alternate_flips(jnp.asarray(out), jnp.int32(5)), out[:, :, ::-1])
    with pytest.raises(ValueError, match=r"^images: expected shape \(N, H, W, C\)"):
        pipelines.flip_half(jax.random.PRNGKey(0), images[0])
    with pytest.raises(ValueError, match=r"^steps_per_epoch: expected an int >= 1, got 0"):
        pipelines.alternating_flip_fn(0)
