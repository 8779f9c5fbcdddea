"""Tests for experiments.compare_regularizers: augmentation, ensembles, end to end, bad input."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import _common as common
from experiments.compare_regularizers import config as config_lib
from experiments.compare_regularizers import experiment, train
from tests import test_utils

MAIN = "experiments.compare_regularizers.main"


def _main(*args, timeout=300):
    env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", MAIN, *args], capture_output=True, text=True,
                          cwd=test_utils.REPO_ROOT, env=env, timeout=timeout)


def test_augment_shift_matches_numpy_roll():
    x = jax.random.normal(jax.random.key(0), (6, 40, 1))
    key = jax.random.key(1)
    out = train.augment_signals(key, x, max_shift=3, noise_std=0.0)
    # Reference: the same shifts drawn the same way, applied with np.roll per example.
    shifts = np.asarray(jax.random.randint(jax.random.split(key)[0], (6,), -3, 4))
    expected = np.stack([np.roll(np.asarray(xi), s, axis=0) for xi, s in zip(x, shifts)])
    np.testing.assert_array_equal(np.asarray(out), expected)
    assert np.abs(shifts).max() <= 3 and len(set(shifts.tolist())) > 1
    noisy = train.augment_signals(key, jnp.zeros((64, 40, 1)), max_shift=0, noise_std=0.5)
    assert float(jnp.std(noisy)) == pytest.approx(0.5, rel=0.05)  # 2560 draws: std error ~1.4%
    with pytest.raises(ValueError, match=r"x: expected signals of shape \(N, L, C\); got shape \(40, 1\)"):
        train.augment_signals(key, x[0], max_shift=1, noise_std=0.0)


def test_ensemble_metrics_match_numpy_average_softmax():
    model = common.model_registry().get("linear", num_classes=3)
    params, states = jax.vmap(lambda k: model.init(k, (4,)))(jax.random.split(jax.random.key(0), 3))
    params = jax.tree_util.tree_map(lambda p: p * 100.0, params)  # members disagree strongly
    data = {"image": jax.random.normal(jax.random.key(1), (20, 4)), "label": jnp.arange(20) % 3}
    loss, acc = train.ensemble_metrics(model, params, states, data)
    # float64 NumPy: p = mean_k softmax(x W_k + b_k); L = -mean log p_y; acc = mean(argmax p == y).
    x = np.asarray(data["image"], np.float64)
    logits = np.einsum("nd,kdc->knc", x, np.asarray(params["w"], np.float64)) + np.asarray(
        params["b"], np.float64)[:, None, :]
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs = (probs / probs.sum(-1, keepdims=True)).mean(0)
    y = np.asarray(data["label"])
    assert test_utils.rel_error(loss, -np.mean(np.log(probs[np.arange(20), y]))) < 1e-5  # float32 logsumexp
    assert float(acc) == pytest.approx(np.mean(probs.argmax(-1) == y), abs=1e-7)


def test_train_method_same_seed_same_numbers_and_members():
    config = config_lib.get_config()
    config.num_epochs, config.batch_size = 2, 64
    splits = common.load_splits("mnist1d", val_size=100, train_size=256, test_size=100)
    method = train.Method("ensemble", "mlp", {"hidden_sizes": (16,)}, members=2,
                          penalty=train.penalty_fn("l2", l2=1e-3))
    a = train.train_method(method, splits=splits, config=config, seed=0)
    b = train.train_method(method, splits=splits, config=config, seed=0)
    c = train.train_method(method, splits=splits, config=config, seed=1)
    assert a.history == b.history and a.final == b.final
    assert a.history["train_loss"] != c.history["train_loss"]  # the seed is data: other init and order
    assert a.history["epoch"] == [1, 2] and a.num_params == 40 * 16 + 16 + 16 * 10 + 10
    assert a.final["gap"] == pytest.approx(a.final["train_accuracy"] - a.final["val_accuracy"])


def test_main_end_to_end_tiny(tmp_path):
    methods = "augmentation,snapshot_ensemble,polyak"  # penalties and ensembles: test above
    proc = _main(f"--workdir={tmp_path}", f"--methods={methods}", "--num_epochs=2",
                 "--config.train_size=256", "--config.test_size=100", "--config.val_size=100",
                 "--config.batch_size=64", "--config.snapshot_cycles=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("summary.md", "summary.csv", "curves_accuracy.png", "curves_gap.png", "results.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    with (tmp_path / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["method"] for r in rows] == methods.split(",")
    assert list(rows[0]) == list(experiment.TABLE_COLUMNS)
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    for run in runs:
        final = run["final"]
        assert 0 <= final["val_accuracy"] <= 1 and not run["diverged"]
        assert final["gap"] == pytest.approx(final["train_accuracy"] - final["val_accuracy"])
    assert "| snapshot_ensemble |" in proc.stdout


def test_bad_method_one_line_exit_2(tmp_path):
    proc = _main(f"--workdir={tmp_path / 'out'}", "--methods=none,dropot", timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: --methods: expected one of " + ", ".join(config_lib.METHODS) + ", got 'dropot'")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("optimizer", "lbfgs", "L-BFGS is full batch"),
        ("optimizer", "adamm", "--optimizer: expected one of .*, got 'adamm'"),
        ("num_epochs", 0, "--config.num_epochs: expected a positive integer; got 0"),
        ("snapshot_cycles", 99, "--config.snapshot_cycles: expected 1..num_epochs=30; got 99"),
    ],
)
def test_validate_rejects(field, value, message):
    config = config_lib.get_config()
    config[field] = value
    with pytest.raises(common.UsageError, match=message):
        experiment.validate(config)


def test_every_method_is_built_from_the_config():
    methods = experiment.build_methods(config_lib.get_config())
    assert tuple(methods) == config_lib.METHODS
    assert methods["dropconnect"].model_config["drop_connect_rate"] == 0.1
    assert methods["stochastic_depth"].model_config["stochastic_depth_rate"] == 0.5
    assert methods["resnet"].model_config.get("stochastic_depth_rate", 0.0) == 0.0
    assert methods["ensemble"].members == 3 and methods["snapshot_ensemble"].snapshot_cycles == 3
