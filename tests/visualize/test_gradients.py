"""Saliency against finite differences, fooling images, FGSM, occlusion, class visualisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import losses, models, visualize
from tests import test_utils
from tests.visualize.conftest import make_tiny_vgg, random_images


def _logits_fn(model, params, state):
    return jax.tree_util.Partial(lambda x: model.apply(params, state, x, train=False)[0])


def test_saliency_equals_finite_differences():
    with test_utils.x64():
        # tanh: smooth, so centred differences converge (max pooling ties have probability 0).
        model, params, state = make_tiny_vgg(3, activation="tanh", dtype=jnp.float64)
        logits_fn = lambda x: model.apply(params, state, x, train=False)[0]
        images = jnp.asarray(random_images(3, n=2), jnp.float64)
        labels = np.array([1, 4])
        grads = np.asarray(visualize.class_score_gradients(logits_fn, images, labels))
        # Centred differences of every pixel at once: one batch of 2 * D perturbed copies per image.
        eps = 1e-5
        base = np.asarray(images)
        dim = base[0].size
        basis = np.eye(dim).reshape(dim, *base.shape[1:]) * eps
        fd = np.zeros_like(grads)
        for n, label in enumerate(labels):
            scores = np.asarray(jax.jit(logits_fn)(np.concatenate([base[n] + basis, base[n] - basis])))[:, label]
            fd[n] = ((scores[:dim] - scores[dim:]) / (2 * eps)).reshape(base.shape[1:])
        # float64: truncation O(eps^2) ~ 1e-10 and rounding O(1e-16 / eps) ~ 1e-11, on gradients ~ 1e-2.
        np.testing.assert_allclose(grads, fd, rtol=1e-6, atol=1e-8)
        saliency = visualize.saliency_maps(logits_fn, images, labels)
        np.testing.assert_allclose(saliency, np.abs(fd).max(-1), rtol=1e-6, atol=1e-9)


def test_fooling_images_reach_every_target_on_a_tiny_model():
    # tanh: an untrained ReLU network can have classes that no input reaches (dead hidden units).
    model, params, state = make_tiny_vgg(activation="tanh")
    logits_fn = lambda x: model.apply(params, state, x, train=False)[0]
    images = jnp.asarray(random_images(4, n=10))
    original = np.asarray(jnp.argmax(logits_fn(images), 1))
    targets = np.arange(10) % 5
    result = visualize.fooling_images(logits_fn, images, targets, step_size=0.05, max_steps=500)
    assert bool(jnp.all(result.fooled))
    np.testing.assert_array_equal(np.asarray(jnp.argmax(logits_fn(result.images), 1)), targets)
    # Images already predicted as their target do not move; the others took >= 1 step.
    np.testing.assert_array_equal(np.asarray(result.num_steps) == 0, original == targets)
    diff = (np.asarray(result.images) - np.asarray(images)).reshape(10, -1)
    np.testing.assert_allclose(result.linf, np.abs(diff).max(1))
    np.testing.assert_allclose(result.l2, np.sqrt((diff.astype(np.float64) ** 2).sum(1)), rtol=1e-5)
    assert float(result.linf.max()) > 0
    # Within the pixel range (projected steps), every target is still reached.
    clipped = visualize.fooling_images(logits_fn, images, targets, step_size=0.05, max_steps=500, clip=(0.0, 1.0))
    assert bool(jnp.all(clipped.fooled)) and float(clipped.images.min()) >= 0 and float(clipped.images.max()) <= 1


def _inflating_scores(x):
    """Linear scores ``s_0 = x_0``, ``s_1 = 2 x_0``: ascending ``s_0`` raises ``s_1`` twice as fast."""
    first = x.reshape(x.shape[0], -1)[:, 0]
    return jnp.stack([first, 2.0 * first], axis=1)


def test_raw_score_ascent_can_stall_where_log_prob_ascent_reaches_the_target():
    # At x_0 = 1 class 1 leads; along d s_0 / dx = e_0 the lead s_1 - s_0 = x_0 only grows, while
    # d log p_0 / dx = (1 - p_0 - 2 p_1) e_0 < 0 moves x_0 below 0, where s_0 > s_1 (hand-derived).
    images = jnp.asarray(np.array([1.0, 0.5], np.float32).reshape(1, 1, 2, 1))
    raw = visualize.fooling_images(_inflating_scores, images, 0, step_size=0.1, max_steps=50)
    assert not bool(raw.fooled[0]) and int(raw.num_steps[0]) == 50
    assert float(raw.images[0, 0, 0, 0]) == pytest.approx(1.0 + 50 * 0.1, rel=1e-5)
    logp = visualize.fooling_images(_inflating_scores, images, 0, step_size=0.15, max_steps=50, objective="log_prob")
    assert bool(logp.fooled[0]) and float(logp.images[0, 0, 0, 0]) < 0
    assert int(logp.num_steps[0]) == 7  # x_0 = 1 - 0.15 k first < 0 at k = 7 (each step has unit direction)
    # The margin s_0 - s_1 = -x_0 has gradient -e_0: the same unit steps, the same 7.
    margin = visualize.fooling_images(_inflating_scores, images, 0, step_size=0.15, max_steps=50, objective="margin")
    assert bool(margin.fooled[0]) and int(margin.num_steps[0]) == 7


def _dying_unit_scores(x):
    """One hidden ReLU ``h = relu(x_0)``; ``s_0 = -h``, ``s_1 = h + 0.5``: the target 0 gains as ``h`` falls."""
    h = jax.nn.relu(x.reshape(x.shape[0], -1)[:, 0])
    return jnp.stack([-h, h + 0.5], axis=1)


@pytest.mark.parametrize("objective", ["log_prob", "margin"])
def test_every_objective_stalls_once_the_last_hidden_unit_is_dead(objective):
    # The ascent lowers h to 0, where s = (0, 0.5) is the bias alone: class 1 still wins and the
    # gradient is exactly 0, so no step moves x again (the dead-ReLU plateau of the module docstring).
    images = jnp.asarray(np.array([0.3, 0.0], np.float32).reshape(1, 1, 2, 1))
    out = visualize.fooling_images(_dying_unit_scores, images, 0, step_size=0.1, max_steps=20, objective=objective)
    assert not bool(out.fooled[0]) and int(out.num_steps[0]) == 20
    # x_0 = 0.3 - 0.1 k reaches h = 0 after 3 steps (4 if rounding leaves x_0 a hair above 0), then is frozen.
    assert float(out.images[0, 0, 0, 0]) <= 1e-6 and 0.3 - 1e-6 <= float(out.linf[0]) <= 0.4 + 1e-6
    grad = jax.grad(lambda x: jax.nn.log_softmax(_dying_unit_scores(x), axis=1)[0, 0])(out.images)
    assert float(jnp.abs(grad).max()) == 0.0


def test_fgsm_steps_epsilon_along_the_loss_gradient_sign(tiny_vgg):
    model, params, state = tiny_vgg
    logits_fn = lambda x: model.apply(params, state, x, train=False)[0]
    images = jnp.asarray(random_images(5, n=6))
    labels = np.arange(6) % 5
    eps = 1e-3
    loss = lambda x: float(losses.softmax_cross_entropy(logits=logits_fn(x), labels=labels).sum())
    away = visualize.fgsm(logits_fn, images, labels, epsilon=eps)
    towards = visualize.fgsm(logits_fn, images, labels, epsilon=eps, targeted=True)
    np.testing.assert_allclose(visualize.linf_perturbation(images, away), eps, rtol=1e-3)
    # To first order the step changes the loss by +-eps * ||grad||_1.
    assert loss(away) > loss(images) > loss(towards)
    clipped = visualize.fgsm(logits_fn, images, labels, epsilon=0.5, clip=(0.0, 1.0))
    assert float(clipped.min()) >= 0.0 and float(clipped.max()) <= 1.0


def test_occluding_an_ignored_pixel_changes_nothing():
    model = models.linear(num_classes=3)
    params, state = model.init(jax.random.key(0), (4, 5, 2))
    w = params["w"].reshape(4, 5, 2, 3).at[2, 3].set(0.0)  # pixel (2, 3) is ignored, both channels
    params = {**params, "w": w.reshape(40, 3)}
    logits_fn = lambda x: model.apply(params, state, x, train=False)[0]
    images = jnp.asarray(random_images(6, n=3, size=5, channels=2)[:, :4])
    drops = visualize.occlusion_sensitivity(logits_fn, images, np.array([0, 1, 2]), patch_size=1, fill=0.5)
    assert drops.shape == (3, 4, 5)
    np.testing.assert_array_equal(np.asarray(drops[:, 2, 3]), 0.0)
    assert float(jnp.abs(drops).sum()) > 0
    # Reference for one position: hide the 2x2 patch at (0, 2) by hand.
    coarse = visualize.occlusion_sensitivity(logits_fn, images, 1, patch_size=2, stride=2, fill=0.0)
    hidden = images.at[:, 0:2, 2:4].set(0.0)
    prob = lambda x: np.asarray(jax.nn.softmax(logits_fn(x)))[:, 1]
    np.testing.assert_allclose(coarse[:, 0, 1], prob(images) - prob(hidden), rtol=1e-5, atol=1e-7)


def test_class_visualization_raises_the_class_score(tiny_vgg):
    model, params, state = tiny_vgg
    logits_fn = lambda x: model.apply(params, state, x, train=False)[0]
    classes = np.array([0, 3])
    kwargs = dict(rng=jax.random.key(0), input_shape=(8, 8, 3), learning_rate=0.2, l2=1e-3)
    start = visualize.class_visualization(logits_fn, classes, num_steps=1, **kwargs)
    images = visualize.class_visualization(logits_fn, classes, num_steps=60, **kwargs)
    assert images.shape == (2, 8, 8, 3) and float(images.min()) >= 0 and float(images.max()) <= 1
    score = lambda x: np.asarray(logits_fn(x))[np.arange(2), classes]
    assert np.all(score(images) > score(start) + 1e-3)
    again = visualize.class_visualization(logits_fn, classes, num_steps=60, **kwargs)
    np.testing.assert_array_equal(images, again)  # same seed, same image


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda f, x: visualize.fooling_images(f, x, 5), r"^targets: expected class indices in \[0, 5\), got 5..5$"),
        (lambda f, x: visualize.fooling_images(f, x, -1), r"^targets: expected class indices in \[0, 5\)"),
        (lambda f, x: visualize.fooling_images(f, x, 1, objective="hinge"), r"^objective: expected one of"),
        (lambda f, x: visualize.fgsm(f, x, np.array([0, 1]), epsilon=0.1), r"^labels: expected an int or 4 int"),
        (lambda f, x: visualize.fgsm(f, x, 0, epsilon=0.0), r"^epsilon: expected a number > 0"),
        (lambda f, x: visualize.saliency_maps(f, x[0], 0), r"^images: expected a float \(N, H, W, C\)"),
        (
            lambda f, x: visualize.class_visualization(f, [7], rng=jax.random.key(0), input_shape=(8, 8, 3)),
            r"^classes: expected class indices in \[0, 5\)",
        ),
        (
            lambda f, x: visualize.occlusion_sensitivity(f, x, 0, patch_size=9),
            r"^patch_size: expected an int in \[1, 8\]",
        ),
    ],
)
def test_bad_input_is_one_line_naming_the_argument(tiny_vgg, call, match):
    model, params, state = tiny_vgg
    logits_fn = lambda x: model.apply(params, state, x, train=False)[0]
    with pytest.raises(ValueError, match=match):
        call(logits_fn, jnp.asarray(random_images(7)))
