"""experiments/speedrun: the smoke run on synthetic data, TTA against explicit views, the
optimizer groups, bad input, and the real CIFAR-10 copy (skipped when ../shared is absent).

References: the mean of explicitly built views (NumPy), a hand computation of the first
Nesterov step, the model's own ``apply``.
"""

from __future__ import annotations

import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import _common
from experiments.speedrun import config as speedrun_config
from experiments.speedrun import experiment
from jax231 import models, optimizers
from jax231.models import layers
from tests import test_utils


def _tiny_model():
    data = experiment.synthetic_cifar(64, 20)
    whitening = layers.whitening_filters(experiment.normalized(data["train"]["image"]), patch_size=2)
    return models.airbench_net(whitening, widths=(8, 16, 16), conv_impl="im2col"), data


@pytest.mark.slow
def test_smoke_run_on_synthetic_data_writes_outputs_and_the_summary_line(tmp_path):
    config = speedrun_config.get_config("tiny")
    result = experiment.run(config, tmp_path)
    assert re.fullmatch(r"test accuracy: \d+\.\d\d% \(TTA\), training [\d,]+ s", result.summary), result.summary
    for name in ("runs.md", "runs.csv", "tta.md", "curves.png", "tta.png", "results.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    (run,) = result.runs
    assert run.history["step"][-1] == 8  # 512 images / 128 = 4 steps per epoch, 2 epochs
    # Learnable synthetic classes (chance 10%): 8 steps of the airbench recipe already separate them.
    assert run.accuracy > 0.3 and run.tta_accuracy > 0.3, (run.accuracy, run.tta_accuracy)


def test_tta_equals_the_mean_of_the_explicitly_augmented_predictions():
    model, data = _tiny_model()
    params, state = model.init(jax.random.PRNGKey(0), (32, 32, 3))
    images = data["test"]["image"][:10]
    probs = experiment._predict(model, params, state, jnp.asarray(images), batch_size=5, tta=True)

    def softmax(x):
        logits = np.asarray(model.apply(params, state, jnp.asarray(x), train=False)[0], np.float64)
        e = np.exp(logits - logits.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    views = [padded[:, 1 + dy : 33 + dy, 1 + dx : 33 + dx] for dy, dx in ((0, 0), (-1, -1), (-1, 1), (1, -1), (1, 1))]
    views += [v[:, :, ::-1] for v in views]
    expected = np.mean([softmax(v) for v in views], axis=0)
    np.testing.assert_allclose(np.asarray(probs), expected, atol=1e-5)  # float32 softmax of ~1 values


def test_optimizer_groups_frozen_whitening_and_scaled_norm_bias():
    model, _ = _tiny_model()
    params, _ = model.init(jax.random.PRNGKey(0), (32, 32, 3))
    config = speedrun_config.get_config("cpu94")
    opt = experiment.make_optimizer(config, steps_per_epoch=10, total_steps=100)
    labels = experiment.param_labels(params)
    assert labels["whiten"] == {"w": "whiten_filters", "b": "whiten_bias"}
    assert labels["group2"]["norm1"]["beta"] == "norm_bias" and labels["head"]["w"] == "weights"
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    updates, _ = opt.update(grads, opt.init(params), params)
    # First Nesterov step with v = g: Delta = -eta (1 + mu) (g + lambda p); beta = 0 so no decay term.
    eta = config.lr * config.batch_size / 1024 / (1 + 1 / (1 - config.momentum)) * config.lr_knots[0]
    np.testing.assert_allclose(
        updates["group1"]["norm1"]["beta"], -eta * config.bias_scaler * (1 + config.momentum), rtol=1e-5
    )
    np.testing.assert_array_equal(updates["whiten"]["w"], 0.0)
    state = opt.init(params)
    for _ in range(12):  # past the whitening bias's epochs (3 x 10 steps is more; use a short config)
        updates, state = opt.update(grads, state, params)
        params = optimizers.apply_updates(params, updates)
    np.testing.assert_array_equal(
        params["whiten"]["w"], model.init(jax.random.PRNGKey(0), (32, 32, 3))[0]["whiten"]["w"]
    )


def test_muon_groups_filters_by_muon_and_the_head_by_nesterov_sgd():
    model, _ = _tiny_model()
    params, _ = model.init(jax.random.PRNGKey(0), (32, 32, 3))
    config = speedrun_config.get_config("gpu94_muon")
    opt = experiment.make_optimizer(config, steps_per_epoch=10, total_steps=100)
    labels = experiment.muon_labels(params)
    assert labels["group1"]["conv1"]["w"] == "filters" and labels["head"]["w"] == "head"
    assert labels["whiten"] == {"w": "whiten_filters", "b": "whiten_bias"}
    assert labels["group3"]["norm2"]["beta"] == "norm_bias"
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    updates, _ = opt.update(grads, opt.init(params), params)
    # First Nesterov step, v = g + lambda p: Delta = -eta (1 + mu)(g + lambda p), eta = head_lr B, lambda = wd / head_lr.
    m = config.muon
    expected = (
        -m.head_lr * config.batch_size * (1 + m.sgd_momentum) * (1 + m.weight_decay / m.head_lr * params["head"]["w"])
    )
    np.testing.assert_allclose(updates["head"]["w"], expected, rtol=1e-5)
    np.testing.assert_array_equal(updates["whiten"]["w"], 0.0)
    new = optimizers.apply_updates(params, updates)  # Muon's filters land at norm sqrt(fan_out) + a step of size ~lr
    w, w0 = new["group2"]["conv1"]["w"], params["group2"]["conv1"]["w"]
    step = np.linalg.norm(np.asarray(w) - np.asarray(w0) * np.sqrt(w0.shape[-1]) / np.linalg.norm(np.asarray(w0)))
    assert 0.1 * m.lr < step < 2 * m.lr * np.sqrt(w0.shape[-1]), step  # NS singular values lie in ~[0.7, 1.2]


@pytest.mark.parametrize(
    "field, value, message",
    [
        (
            "conv_impl",
            "winograd",
            r"^--config.conv_impl: expected one of \('auto', 'xla', 'im2col', 'native'\), got 'winograd'$",
        ),
        ("whiten_patch_size", 3, r"^--config.whiten_patch_size: expected a patch size that tiles the 32x32 images"),
        ("compute_dtype", "bfloat16", r"^--config.compute_dtype: expected 'float32' on the cpu backend"),
        ("dataset", "imagenet", r"^--config.dataset: expected one of \('cifar10_shared', 'synthetic'\)"),
        ("optimizer", "adam", r"^--config.optimizer: expected one of \('nesterov', 'muon'\), got 'adam'$"),
    ],
)
def test_bad_config_is_one_line_usage_error(field, value, message):
    if field == "compute_dtype" and jax.default_backend() != "cpu":
        pytest.skip("bfloat16 is accepted on this accelerator backend")
    config = speedrun_config.get_config("tiny")
    config[field] = value
    with pytest.raises(_common.UsageError, match=message) as err:
        experiment.validate(config)
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_main_bad_conv_impl_exits_2_with_one_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.speedrun.main",
            f"--workdir={tmp_path}",
            "--config=experiments/speedrun/config.py:tiny",
            "--config.conv_impl=winograd",
        ],
        capture_output=True,
        text=True,
        cwd=test_utils.REPO_ROOT,
        timeout=180,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [
        "error: --config.conv_impl: expected one of ('auto', 'xla', 'im2col', 'native'), got 'winograd'"
    ], proc.stderr


@test_utils.requires_shared_cifar10
@pytest.mark.shared_data
def test_real_cifar10_is_uint8_and_its_patches_whiten():
    config = speedrun_config.get_config("cpu94")
    config.train_size, config.test_size = 2000, 500
    data = experiment.load_data(config)
    assert data["train"]["image"].dtype == np.uint8 and data["train"]["image"].shape == (2000, 32, 32, 3)
    assert data["test"]["label"].shape == (500,) and set(np.unique(data["test"]["label"])) <= set(range(10))
    x = experiment.normalized(data["train"]["image"][:500])
    filters = layers.whitening_filters(x, patch_size=2, eps=5e-4)
    patches = layers.image_patches(x, 2)
    white = patches @ filters.reshape(12, 24)[:, :12].astype(np.float64)
    cov = white.T @ white / len(white)
    # diag(lambda / (lambda + eps)): ~1 for the strong directions of natural-image patches.
    assert np.all(np.abs(cov - np.diag(np.diag(cov))) < 1e-5) and np.diag(cov)[0] > 0.999  # float32 filters
