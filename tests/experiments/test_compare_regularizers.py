"""Tests for experiments.compare_regularizers: augmentation, ensembles, test-time variants, end to end, bad input."""

from __future__ import annotations

import csv
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import _common as common
from experiments.compare_regularizers import config as config_lib
from experiments.compare_regularizers import evaluation, experiment, train
from jax231 import pipelines
from tests import test_utils
from tests.reliability import cli_worker

MAIN = "experiments.compare_regularizers.main"


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
    logits = (
        np.einsum("nd,kdc->knc", x, np.asarray(params["w"], np.float64))
        + np.asarray(params["b"], np.float64)[:, None, :]
    )
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs = (probs / probs.sum(-1, keepdims=True)).mean(0)
    y = np.asarray(data["label"])
    assert test_utils.rel_error(loss, -np.mean(np.log(probs[np.arange(20), y]))) < 1e-5  # float32 logsumexp
    assert float(acc) == pytest.approx(np.mean(probs.argmax(-1) == y), abs=1e-7)


def test_train_method_same_seed_same_numbers_and_members():
    config = config_lib.get_config()
    config.num_epochs, config.batch_size = 2, 64
    splits = common.load_splits("mnist1d", val_size=100, train_size=256, test_size=100)
    method = train.Method(
        "ensemble", "mlp", {"hidden_sizes": (16,)}, members=2, penalty=train.penalty_fn("l2", l2=1e-3)
    )
    a = train.train_method(method, splits=splits, config=config, seed=0)
    b = train.train_method(method, splits=splits, config=config, seed=0)
    c = train.train_method(method, splits=splits, config=config, seed=1)
    assert a.history == b.history and a.final == b.final
    assert a.history["train_loss"] != c.history["train_loss"]  # the seed is data: other init and order
    assert a.history["epoch"] == [1, 2] and a.num_params == 40 * 16 + 16 + 16 * 10 + 10
    assert a.final["gap"] == pytest.approx(a.final["train_accuracy"] - a.final["val_accuracy"])


def _np_softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _np_views(x, pad):
    """The 5 crops of the zero-padded images (centre, four corners) and their mirrors, in NumPy."""
    n, h, w, c = x.shape
    padded = np.pad(np.asarray(x, np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    crops = [
        padded[:, i : i + h, j : j + w] for i, j in ((pad, pad), (0, 0), (0, 2 * pad), (2 * pad, 0), (2 * pad, 2 * pad))
    ]
    return crops + [v[:, :, ::-1] for v in crops]


def _np_metrics(probs, y):
    """Loss, accuracy and argmax of mean probabilities ``(N, C)`` (float64)."""
    pred = probs.argmax(-1)
    return -np.mean(np.log(probs[np.arange(len(y)), y])), np.mean(pred == y), pred


def test_tta_metrics_match_numpy_mean_over_views_and_members():
    model = common.model_registry().get("linear", num_classes=3)
    params, states = jax.vmap(lambda k: model.init(k, (4, 4, 1)))(jax.random.split(jax.random.key(0), 2))
    params = jax.tree_util.tree_map(lambda p: p * 30.0, params)  # views and members disagree
    data = {"image": jax.random.normal(jax.random.key(1), (12, 4, 4, 1)), "label": jnp.arange(12) % 3}
    out = evaluation.test_time_metrics(
        model, evaluation.Variant("tta", crops=5, pad=1, flip=True), params, states, data, jax.random.key(2)
    )
    # float64 NumPy: p = mean_k mean_v softmax(flatten(T_v x) W_k + b_k).
    w, b = np.asarray(params["w"], np.float64), np.asarray(params["b"], np.float64)
    views = _np_views(data["image"], 1)
    probs = np.mean([_np_softmax(v.reshape(12, -1) @ w[k] + b[k]) for k in range(2) for v in views], axis=0)
    loss, acc, _ = _np_metrics(probs, np.asarray(data["label"]))
    assert test_utils.rel_error(out["loss"], loss) < 1e-5  # float32 logits of |z| ~ 100
    assert float(out["accuracy"]) == pytest.approx(acc, abs=1e-7)
    assert len(views) == 10 and not np.allclose(views[0], views[5])  # the mirrors are other views


@pytest.mark.parametrize("kind", ["mc_dropout", "mc_regions"])
def test_monte_carlo_metrics_match_a_loop_over_the_keys(kind):
    num_samples = 4
    if kind == "mc_dropout":  # train-mode passes: dropout masks
        model = common.model_registry().get("mlp", num_classes=3, hidden_sizes=(16,), drop_rate=0.5)
        shape, train_mode = (6,), True
    else:  # eval-mode passes with a key: fractional-pooling regions
        model = common.model_registry().get("fmp_convnet", num_classes=3, num_layers=1, width=4)
        shape, train_mode = (5, 5, 1), False
    params, states = jax.vmap(lambda k: model.init(k, shape))(jax.random.split(jax.random.key(0), 1))
    data = {"image": jax.random.normal(jax.random.key(1), (40, *shape)), "label": jnp.arange(40) % 3}
    key = jax.random.key(3)
    out = evaluation.test_time_metrics(
        model, evaluation.Variant(kind, num_samples=num_samples), params, states, data, key
    )
    # Reference: one apply per key of jax.random.split(key, T), then float64 NumPy mean / std.
    member = jax.tree_util.tree_map(lambda p: p[0], params)
    passes = np.stack(
        [
            _np_softmax(model.apply(member, {}, data["image"], train=train_mode, rng=k)[0])
            for k in jax.random.split(key, num_samples)
        ]
    )
    probs, spread = passes.mean(0), passes.std(0)
    y = np.asarray(data["label"])
    loss, acc, pred = _np_metrics(probs, y)
    spread_pred = spread[np.arange(40), pred]
    assert spread_pred.max() > 1e-3  # the passes differ
    assert test_utils.rel_error(out["loss"], loss) < 1e-5
    assert float(out["accuracy"]) == pytest.approx(acc, abs=1e-7)
    for name, mask in (("spread_right", pred == y), ("spread_wrong", pred != y)):
        assert float(out[name]) == pytest.approx(spread_pred[mask].mean(), rel=1e-4, abs=1e-6)


def test_augmentation_hooks_are_the_pipelines_functions():
    settings = train.Settings.from_config(config_lib.get_config(), "images")
    batch = {"image": jax.random.uniform(jax.random.key(0), (8, 8, 8, 1)), "label": jnp.arange(8)}
    references = {
        "warp": lambda k, x: pipelines.augment_batch(k, x, pad_crop=0, flip=False, rotate=10.0, scale=0.1, shear=0.1),
        "rand_augment": lambda k, x: pipelines.rand_augment(k, x, num_ops=2, magnitude=0.3),
    }

    @jax.jit  # one program computes the hooks and the references (one compilation)
    def both(key):
        return {
            kind: (train.augmentation_hook(kind, settings)(key, batch)["image"], ref(key, batch["image"]))
            for kind, ref in references.items()
        }

    for kind, (hooked, expected) in both(jax.random.key(1)).items():
        np.testing.assert_array_equal(np.asarray(hooked), np.asarray(expected), err_msg=kind)
        assert not np.allclose(np.asarray(hooked), np.asarray(batch["image"])), kind  # it changed the images
    assert train.augmentation_hook("", settings) is None
    with pytest.raises(
        ValueError, match=r"augment: expected one of \['', 'shift_noise', 'warp', 'rand_augment'\], got 'flip'"
    ):
        train.augmentation_hook("flip", settings)


def _tiny_config():
    config = config_lib.get_config()
    config.num_epochs, config.batch_size, config.train_size, config.val_size, config.test_size = 2, 64, 256, 100, 100
    config.images.update(num_epochs=2, train_size=64, val_size=64, test_size=64, num_layers=1, width=4)
    config.mc_samples = 3
    return config


def test_max_norm_method_projects_every_unit_onto_the_ball():
    config = _tiny_config()
    splits = experiment.load_data(config, "signals")
    method = train.Method("max_norm", "mlp", {"hidden_sizes": (16,)}, max_norm=0.5)
    trained = train.fit_method(method, splits=splits, config=config, seed=0)
    init, _ = train.build_model(method, splits.num_classes).init(jax.random.key(0), (40, 1))  # an He init
    for layer in ("dense_0", "head"):
        initial = np.linalg.norm(np.asarray(init[layer]["w"]), axis=0)
        final = np.linalg.norm(np.asarray(trained.params[layer]["w"][0]), axis=0)
        assert initial.max() > 0.6  # He init: ||w_j|| ~ sqrt(2) > c, so the constraint binds
        assert final.max() <= 0.5 * (1 + 1e-5)  # float32 rounding of the projection
        assert final.max() >= 0.5 * (1 - 1e-3)  # and it is active (units sit on the ball)


def test_variants_reuse_the_trained_net(tmp_path, monkeypatch):
    config = _tiny_config()
    config.methods = "dropout,mc_dropout,fractional_pool_avg"
    config.tensorboard = False
    calls = []
    fit = train.fit_method
    monkeypatch.setattr(train, "fit_method", lambda method, **kw: calls.append(method.name) or fit(method, **kw))
    text = experiment.run(config, tmp_path, log=lambda _: None)
    assert calls == ["dropout", "fractional_pool_avg"]  # mc_dropout reuses dropout's members
    runs = {r["method"]: r for r in json.loads((tmp_path / "results.json").read_text())["runs"]}
    assert runs["mc_dropout"]["history"] == runs["dropout"]["history"]
    assert (
        runs["mc_dropout"]["final"]["val_accuracy"] != runs["dropout"]["final"]["val_accuracy"]
        or runs["mc_dropout"]["final"]["val_loss"] != runs["dropout"]["final"]["val_loss"]
    )
    assert "MC dropout, T = 3, of dropout's net" in text
    assert "mean over pooling-region draws, T = 3, of fractional_pool's net" in text
    assert "| fractional_pool_avg | digits |" in text and "| mc_dropout | mnist1d |" in text
    for name in ("mc_dropout", "fractional_pool_avg"):
        final = runs[name]["final"]
        assert 0 <= final["spread_right"] <= 0.5 and 0 <= final["test_accuracy"] <= 1
    assert (tmp_path / "final_accuracy.png").stat().st_size > 0


def test_main_end_to_end_tiny(tmp_path):
    methods = "augmentation,snapshot_ensemble,polyak"  # penalties, ensembles, image methods: tests above
    proc = test_utils.run_module(
        MAIN,
        f"--workdir={tmp_path}",
        f"--methods={methods}",
        "--num_epochs=2",
        "--config.train_size=256",
        "--config.test_size=100",
        "--config.val_size=100",
        "--config.batch_size=64",
        "--config.snapshot_cycles=2",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in (
        "summary.md",
        "summary.csv",
        "curves_accuracy.png",
        "curves_gap.png",
        "final_accuracy.png",
        "results.json",
    ):
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
    assert "| snapshot_ensemble | mnist1d |" in proc.stdout


def test_bad_method_one_line_exit_2(tmp_path):
    # In this process (no JAX import); test_main_end_to_end_tiny is the real process.
    out = cli_worker.run_in_process(MAIN, [f"--workdir={tmp_path / 'out'}", "--methods=none,dropot"])
    assert out["escaped"] is None and not out["timed_out"] and out["code"] == 2, out
    assert out["stderr"].strip() == (
        "error: --methods: expected one of " + ", ".join(config_lib.METHODS) + ", got 'dropot'"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("optimizer", "lbfgs", "L-BFGS is full batch"),
        ("optimizer", "adamm", "--optimizer: expected one of .*, got 'adamm'"),
        ("num_epochs", 0, "--config.num_epochs: expected a positive integer; got 0"),
        ("snapshot_cycles", 99, "--config.snapshot_cycles: expected 1..num_epochs=30; got 99"),
        ("max_norm", 0.0, r"--config.max_norm: expected a positive value; got 0.0"),
        ("mc_samples", 0, "--config.mc_samples: expected a positive integer; got 0"),
        ("input_noise_std", -0.1, r"--config.input_noise_std: expected a value >= 0; got -0.1"),
        ("fractional_ratio", 1.0, r"--config.fractional_ratio: expected a ratio > 1; got 1.0"),
        ("tta.crops", 3, "--config.tta.crops: expected 1 or 5; got 3"),
        ("images.num_epochs", 0, "--config.images.num_epochs: expected a positive integer; got 0"),
    ],
)
def test_validate_rejects(field, value, message):
    config = config_lib.get_config()
    section, _, name = field.rpartition(".")
    (config[section] if section else config)[name] = value
    with pytest.raises(common.UsageError, match=message):
        experiment.validate(config)


def test_every_method_is_built_from_the_config():
    methods = experiment.build_methods(config_lib.get_config())
    assert tuple(methods) == config_lib.METHODS
    assert methods["dropconnect"].model_config["drop_connect_rate"] == 0.1
    assert methods["stochastic_depth"].model_config["stochastic_depth_rate"] == 0.5
    assert methods["resnet"].model_config.get("stochastic_depth_rate", 0.0) == 0.0
    assert methods["ensemble"].members == 3 and methods["snapshot_ensemble"].snapshot_cycles == 3
    assert {n for n, m in methods.items() if m.data == "images"} == set(config_lib.IMAGE_METHODS)
    assert methods["max_norm"].max_norm == 1.0 and methods["warp"].augment == "warp"
    assert methods["spatial_dropout"].model_config["spatial_drop_rate"] == 0.1
    for variant, of in (("mc_dropout", "dropout"), ("tta", "convnet"), ("fractional_pool_avg", "fractional_pool")):
        assert train.training_key(methods[variant]) == train.training_key(methods[of])  # nothing retrained
        assert methods[variant].variant is not None and methods[of].variant is None
