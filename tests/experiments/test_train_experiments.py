"""Tests of experiments/train, lr_find, hparam_search and transfer on tiny configs.

References: NumPy transcriptions of the schedule, ramp, smoothing and search
formulas; the model's own ``apply`` for reported accuracies; optax's
``multi_transform`` + ``set_to_zero`` for the freezing transform.
"""

from __future__ import annotations

import json
import math

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from experiments import _common
from experiments.hparam_search import config as search_config
from experiments.hparam_search import experiment as search_experiment
from experiments.hparam_search import search
from experiments.lr_find import config as lr_config
from experiments.lr_find import experiment as lr_experiment
from experiments.train import config as train_config
from experiments.train import experiment as train_experiment
from experiments.transfer import config as transfer_config
from experiments.transfer import experiment as transfer_experiment
from jax231 import models
from jax231 import optimizers
from tests import test_utils
from tests.reliability import cli_worker


def _accuracy(model, state, arrays) -> float:
    """Reference accuracy: argmax of the model's inference-mode scores, in NumPy."""
    logits, _ = model.apply(state.params, state.model_state, jnp.asarray(arrays["image"]), train=False)
    return float(np.mean(np.argmax(np.asarray(logits), axis=1) == np.asarray(arrays["label"])))


def _run_main(module: str, *args: str) -> dict:
    """``python -m module *args`` in this process (the exit status and stderr, without a JAX import
    per case; ``tests/reliability/test_cli.py`` keeps real-process cases of the same contract)."""
    out = cli_worker.run_in_process(module, args)
    assert out["escaped"] is None and not out["timed_out"], out
    return out


# --------------------------------------------------------------------------------- train
@pytest.mark.slow
def test_train_tiny_writes_outputs_and_reports_the_model_accuracy(tmp_path):
    config = train_config.get_config("tiny")
    result = train_experiment.run(config, tmp_path)

    for name in ("results.json", "report.md", "curves.png", "metrics.csv"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert result.fit.status == "completed"
    assert result.num_steps == 20
    assert int(result.fit.state.step) == 20
    # The reported test accuracy is the final model's: recomputed with model.apply.
    splits = train_experiment.build_data(config)
    model = train_experiment.build_model(config, splits.num_classes)
    assert result.test["accuracy"] == pytest.approx(_accuracy(model, result.fit.state, splits.test), abs=1e-6)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["test_accuracy"] == pytest.approx(result.test["accuracy"])
    assert saved["model_kwargs"] == {"hidden_sizes": [16]}


@pytest.mark.slow
def test_train_reads_a_named_tfds_dataset_under_mock_data(tmp_path):
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    config = train_config.get_config("tiny")
    config.dataset = "mnist"
    config.val_size = 16
    config.train_size = 0
    config.test_size = 0
    config.preprocess = "mean_image"
    config.num_steps = 4
    config.eval_every = 2
    config.batch_size = 16
    with tfds.testing.mock_data(num_examples=64):
        result = train_experiment.run(config, tmp_path)
    assert result.fit.status == "completed"
    assert 0.0 <= result.test["accuracy"] <= 1.0
    assert json.loads((tmp_path / "results.json").read_text())["dataset"] == "mnist"


@pytest.mark.parametrize("name", ["constant", "step", "exponential", "cosine", "warmup_cosine"])
def test_make_schedule_matches_numpy(name):
    lr, num_steps = 0.1, 100
    steps = np.array([0, 1, 4, 5, 33, 34, 50, 99, 100])
    # NumPy transcriptions of the formulas in make_schedule's docstring.
    warm = 5  # 0.05 * 100

    def cosine(t, length):
        return 0.5 * lr * (1 + np.cos(np.pi * np.minimum(t, length) / length))

    expected = {
        "constant": np.full(steps.shape, lr),
        "step": lr * 0.1 ** np.floor(steps / 33),
        "exponential": lr * np.exp(math.log(0.01) * steps / num_steps),
        "cosine": cosine(steps, num_steps),
        "warmup_cosine": np.where(
            steps < warm, lr * steps / warm, cosine(np.maximum(steps - warm, 0), num_steps - warm)
        ),
    }[name]
    schedule = train_experiment.make_schedule(name, lr, num_steps=num_steps)
    values = np.full(steps.shape, schedule) if isinstance(schedule, float) else np.asarray([schedule(t) for t in steps])
    # float32 schedules: a few ulps after exp/cos (rtol 1e-5); near the end of the cosine,
    # 1 + cos(pi t / T) cancels, leaving an absolute error of order eps_f32 * lr ~ 1e-8 (atol 1e-7).
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("model", "lenet5", "--config.model: expected one of linear, mlp.*, got 'lenet5'"),
        ("optimizer", "adamax", "--config.optimizer: expected one of sgd, momentum.*, got 'adamax'"),
        ("schedule", "linear", "--config.schedule: expected one of constant, step.*, got 'linear'"),
        ("dataset", "imagenet", "--config.dataset: expected one of mnist1d, digits, cifar10_shared.*, got 'imagenet'"),
        ("learning_rate", float("inf"), r"--config.learning_rate: expected a finite number, got inf"),
        ("l2", -1.0, r"--config.l2: expected a finite number >= 0, got -1.0"),
        ("seed", 2**40, r"--config.seed: expected an int in \[0, 4294967295\], got 1099511627776"),
        ("preprocess", "zca", "--config.preprocess: expected one of none, mean_image, per_channel, got 'zca'"),
        ("loss", "hinge", "--config.loss: expected one of softmax, svm, got 'hinge'"),
    ],
)
def test_train_bad_config_is_a_usage_error(tmp_path, field, value, message):
    config = train_config.get_config("tiny")
    config[field] = value
    with pytest.raises(_common.UsageError, match=message):
        train_experiment.run(config, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (["--optimizer=adamax"], "error: --config.optimizer: expected one of sgd, momentum, nesterov"),
        (["--config.learning_rat=0.1"], "error: --config: bad override: unknown field"),
        (["--lr=nan"], "error: --config.learning_rate: expected a finite number, got nan"),
        (["--seed=-1"], "error: --config.seed: expected an int in [0, 4294967295], got -1"),
        (["--dataset=npz:/nonexistent/x.npz"], "error: name: expected an existing .npz file, got '/nonexistent/x.npz'"),
        (["--workdir=/proc/version/out"], "error: --workdir: cannot write to '/proc/version/out'"),
    ],
)
def test_train_main_bad_input_exits_2_with_one_line(tmp_path, args, message):
    argv = [f"--workdir={tmp_path}", f"--config={test_utils.REPO_ROOT}/experiments/train/config.py:tiny", *args]
    out = _run_main("experiments.train.main", *argv)
    assert out["code"] == 2, out["stderr"]
    lines = [line for line in out["stderr"].splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(message), out["stderr"]
    assert "Traceback" not in out["stderr"]


# ------------------------------------------------------------------------------- lr_find
def test_exponential_ramp_and_smoothing_match_numpy():
    ramp = lr_experiment.exponential_ramp(1e-4, 1.0, 5)
    # float32 exp: relative error 1e-6.
    np.testing.assert_allclose([float(ramp(t)) for t in range(5)], [1e-4, 1e-3, 1e-2, 1e-1, 1.0], rtol=1e-5)
    losses = np.array([2.0, 1.0, 3.0, 0.5])
    beta = 0.9
    ema = np.cumsum([(1 - beta) * beta ** (3 - i) * l for i, l in enumerate(losses)])  # last entry only
    expected_last = ema[-1] / (1 - beta**4)
    smoothed = lr_experiment.smooth(losses, beta)
    assert smoothed[0] == pytest.approx(2.0)  # bias correction makes the first value the first loss
    assert smoothed[-1] == pytest.approx(expected_last)


@pytest.mark.parametrize(
    "curve, expected_min, expected_steep",
    [
        # np.gradient (central differences) is steepest at lr 1e-2, the minimum is at lr 1, then it rises.
        ([2.3, 2.29, 2.0, 1.0, 0.8, 3.0], 1.0, 1e-2),
        # Monotone decreasing: the minimum is the last point; steepest at lr 1e-3.
        ([2.0, 1.9, 1.4, 1.35, 1.32, 1.3], 10.0, 1e-3),
    ],
)
def test_suggestions(curve, expected_min, expected_steep):
    lrs = 10.0 ** np.arange(-4, 2)
    min_lr, steep_lr = lr_experiment.suggestions(lrs, np.asarray(curve))
    assert min_lr == pytest.approx(expected_min)
    assert steep_lr == pytest.approx(expected_steep)


@pytest.mark.slow
def test_lr_find_stops_at_the_explosion_and_writes_outputs(tmp_path):
    config = lr_config.get_config()
    config.train_size, config.val_size, config.test_size = 512, 64, 64
    config.model_kwargs = ml_collections.ConfigDict({"hidden_sizes": (16,)})
    config.min_lr, config.max_lr, config.num_steps = 1e-3, 1e4, 60
    result = lr_experiment.run(config, tmp_path)

    for name in ("lr_find.png", "lr_find.csv", "results.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert result.exploded_at is not None and len(result.losses) < 60  # SGD at lr 1e4 must blow up
    ramp = 1e-3 * (1e4 / 1e-3) ** (np.arange(len(result.losses)) / 59)
    np.testing.assert_allclose(result.learning_rates, ramp, rtol=1e-6)
    assert result.suggested_lr == pytest.approx(result.min_loss_lr / 10)
    assert 1e-3 <= result.steepest_lr <= result.min_loss_lr < result.exploded_at


def test_lr_find_with_lbfgs_is_one_usage_error_before_training(tmp_path):
    config = lr_config.get_config()
    config.optimizer, config.train_size, config.val_size, config.test_size = "lbfgs", 128, 32, 32
    with pytest.raises(_common.UsageError, match="^--config.optimizer: expected a first-order optimizer") as info:
        lr_experiment.run(config, tmp_path)
    assert "\n" not in str(info.value) and not (tmp_path / "results.json").exists()


# ------------------------------------------------------------------------- hparam_search
def test_log_uniform_sampling_is_seeded_and_in_range():
    ranges = {"learning_rate": (1e-4, 1e-1), "l2": (1e-6, 1e-6)}
    points = search.sample_log_uniform(np.random.default_rng(3), ranges, 200)
    again = search.sample_log_uniform(np.random.default_rng(3), ranges, 200)
    assert points == again
    lrs = np.log10([p["learning_rate"] for p in points])
    assert lrs.min() >= -4 and lrs.max() <= -1
    # Uniform in log space: each of the three decades gets about a third (binomial sd ~ 6.7).
    counts = np.histogram(lrs, bins=[-4, -3, -2, -1])[0]
    assert np.all(np.abs(counts - 200 / 3) < 25), counts
    assert all(p["l2"] == pytest.approx(1e-6) for p in points)


def _trial(index, lr, acc, status="completed"):
    return search.Trial(index, "coarse", {"learning_rate": lr}, {"val_accuracy": acc, "status": status}, 0.0)


def test_rank_and_refine_ranges():
    trials = [
        _trial(0, 1e-1, 0.5),
        _trial(1, 1e1, math.nan, "diverged"),
        _trial(2, 1e-2, 0.7),
        _trial(3, 1e-3, 0.6),
        _trial(4, 1e-4, 0.2),
    ]
    assert [t.index for t in search.rank(trials)] == [2, 3, 0, 4, 1]
    fine = search.refine_ranges(trials, {"learning_rate": (1e-5, 1e2)}, top_k=2, shrink=0.1)
    # Top two: 1e-2 and 1e-3; padded by 0.1 * 7 decades / 2 = 0.35 decades each side.
    lo, hi = fine["learning_rate"]
    assert math.log10(lo) == pytest.approx(-3.35) and math.log10(hi) == pytest.approx(-1.65)
    # Clipped to the coarse range.
    fine = search.refine_ranges(trials, {"learning_rate": (1e-3, 1e-2)}, top_k=2, shrink=1.0)
    assert fine["learning_rate"] == pytest.approx((1e-3, 1e-2))


@pytest.mark.parametrize("ranges", [{"learning_rate": (0.0, 1.0)}, {"learning_rate": (1.0, 0.1)}, {}])
def test_bad_ranges_are_usage_errors(ranges):
    with pytest.raises(_common.UsageError, match="--config.ranges"):
        search.check_ranges(ranges)


def _tiny_search_config(sweep: bool) -> ml_collections.ConfigDict:
    config = search_config.get_config()
    config.train_size, config.val_size, config.test_size = 512, 128, 64
    config.model_kwargs = ml_collections.ConfigDict({"hidden_sizes": (16,)})
    config.optimizer = "sgd"
    # Learning rates up to 1e4 with SGD explode; seed 0 draws one such coarse point (lr 3e3).
    config.ranges = ml_collections.ConfigDict({"learning_rate": (1e-2, 1e4), "l2": (1e-5, 1e-2)})
    config.num_coarse, config.num_fine, config.coarse_steps, config.fine_steps = 3, 1, 20, 30
    config.eval_every, config.batch_size = 10, 64
    config.sweep = sweep
    return config


@pytest.mark.slow
def test_hparam_search_aborts_exploding_trials_and_sorts_the_table(tmp_path):
    config = _tiny_search_config(sweep=False)  # its lr range up to 1e4 makes SGD explode
    config.coarse_steps, config.fine_steps, config.eval_every = 40, 40, 20
    trials = search_experiment.run(config, tmp_path, log=lambda line: None)

    assert len(trials) == 4 and [t.stage for t in trials] == ["coarse"] * 3 + ["fine"]
    diverged = [t for t in trials if t.result["status"] == "diverged"]
    assert diverged, [t.hparams for t in trials]
    assert all(t.result["steps_run"] < t.result["steps_asked"] for t in diverged)  # aborted early
    rows = [line for line in (tmp_path / "trials.md").read_text().splitlines() if line.startswith("| ")][1:]
    ranks = [int(row.split("|")[1]) for row in rows]
    assert ranks == sorted(ranks)
    finite = [t.result["val_accuracy"] for t in search.rank(trials) if t.result["status"] != "diverged"]
    assert finite == sorted(finite, reverse=True)
    assert (tmp_path / "trials.png").exists() and (tmp_path / "trials.csv").exists()


@pytest.mark.slow
def test_hparam_search_sweep_equals_the_loop(tmp_path):
    (tmp_path / "loop").mkdir()
    (tmp_path / "sweep").mkdir()
    loop = search_experiment.run(_tiny_search_config(False), tmp_path / "loop", log=lambda line: None)
    swept = search_experiment.run(_tiny_search_config(True), tmp_path / "sweep", log=lambda line: None)
    assert [t.hparams for t in swept] == [t.hparams for t in loop]  # same points, so same fine ranges
    assert [t.index for t in search.rank(swept)] == [t.index for t in search.rank(loop)]
    assert [t.result["status"] for t in swept] == [t.result["status"] for t in loop]
    assert any(t.result["status"] == "diverged" for t in swept)
    for a, b in zip(loop, swept):
        if a.result["status"] == "diverged":  # fit stops at the bad update; the sweep at the interval
            assert math.isnan(b.result["val_accuracy"]) and b.result["steps_run"] <= a.result["steps_run"]
            continue
        # The sweep vmaps the trials (XLA batches their products: float32 reassociation, a few ulp
        # over 30 updates); accuracies count argmax hits on 128 examples and come out equal.
        assert b.result["val_accuracy"] == a.result["val_accuracy"]
        assert b.result["val_loss"] == pytest.approx(a.result["val_loss"], rel=1e-5)
        assert b.result["train_accuracy"] == pytest.approx(a.result["train_accuracy"], abs=1e-6)
        assert (b.result["best_step"], b.result["steps_run"]) == (a.result["best_step"], a.result["steps_run"])
    assert (tmp_path / "sweep" / "trials.md").stat().st_size > 0
    assert json.loads((tmp_path / "sweep" / "results.json").read_text())["num_trials"] == 4


@pytest.mark.parametrize(
    "change, message",
    [
        ({"schedule": "cosine"}, "--sweep: searching learning_rate needs --config.schedule=constant"),
        (
            {"ranges": ml_collections.ConfigDict({"momentum": (0.5, 0.9)}), "momentum": 0.9},
            "--sweep: can search only learning_rate, l2 in one program; got 'momentum'",
        ),
    ],
)
def test_hparam_search_sweep_rejects_what_run_sweep_cannot_search(change, message):
    config = _tiny_search_config(True)
    for name, value in change.items():
        config[name] = value
    with pytest.raises(_common.UsageError, match=message):
        search_experiment.validate_config(config)


# ------------------------------------------------------------------------------ transfer
def test_freeze_matches_optax_multi_transform():
    params = {"dense_0": {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}, "head": {"w": jnp.ones((2, 4)), "b": jnp.ones(4)}}
    grads = jax.tree_util.tree_map(lambda p: jnp.full_like(p, 0.5), params)
    mask = transfer_experiment.head_mask(params, "head")
    ours = transfer_experiment.freeze(optimizers.adam(learning_rate=0.1), mask)
    labels = {"dense_0": {"w": "frozen", "b": "frozen"}, "head": {"w": "train", "b": "train"}}
    # optax's masking around the same inner rule isolates the freezing logic.
    reference = optax.multi_transform(
        {"train": optimizers.adam(learning_rate=0.1), "frozen": optax.set_to_zero()}, labels
    )
    state, ref_state = ours.init(params), reference.init(params)
    for _ in range(3):
        updates, state = ours.update(grads, state, params, value=1.0)  # extras pass through
        ref_updates, ref_state = reference.update(grads, ref_state, params)
        # The same float32 operations on the same leaves: equal up to 1 ulp (rtol 1e-7).
        chex.assert_trees_all_close(updates, ref_updates, rtol=1e-7, atol=0)
        assert not np.any(np.asarray(updates["dense_0"]["w"]))


def test_select_classes_relabels():
    arrays = {"image": np.arange(6)[:, None], "label": np.array([5, 0, 7, 5, 9, 1])}
    out = transfer_experiment.select_classes(arrays, (9, 5))
    np.testing.assert_array_equal(out["image"][:, 0], [0, 3, 4])
    np.testing.assert_array_equal(out["label"], [1, 1, 0])


@pytest.mark.slow
def test_transfer_head_only_keeps_the_pretrained_features(tmp_path):
    config = transfer_config.get_config()
    config.model_kwargs = ml_collections.ConfigDict({"hidden_sizes": (16,)})
    config.pretrain_steps, config.finetune_steps, config.eval_every = 40, 20, 10
    result = transfer_experiment.run(config, tmp_path)

    pretrained = result["pretrain"].state.params
    head_only = result["arms"]["head_only"].fit.state.params
    for key in pretrained:
        if key != "head":
            # Frozen: bitwise the pretrained weights.
            jax.tree_util.tree_map(np.testing.assert_array_equal, head_only[key], pretrained[key])
    assert not np.allclose(head_only["head"]["w"], pretrained["head"]["w"])  # the head was re-initialised and trained
    fine_tuned = result["arms"]["fine_tune_all"].fit.state.params
    assert not np.allclose(fine_tuned["dense_0"]["w"], pretrained["dense_0"]["w"])
    # Reported accuracies are the final models' on B's test split.
    split_b = transfer_experiment.task_splits(config, "b")
    model_b = models.get("mlp", num_classes=5, hidden_sizes=(16,))
    for name, arm in result["arms"].items():
        if name != "stage_features":  # a linear classifier on features (test_transfer_new_arms)
            assert arm.test_accuracy == pytest.approx(_accuracy(model_b, arm.fit.state, split_b.test), abs=1e-6)
    assert "head_only" in (tmp_path / "summary.md").read_text()
    # fine_tune_last_n=2 trains dense_0's successor groups only: with one hidden layer, dense_0 and head.
    last_n = result["arms"]["fine_tune_last_n"].fit.state.params
    assert not np.allclose(last_n["dense_0"]["w"], pretrained["dense_0"]["w"])
    # stage_features: the reported accuracy is the linear classifier's on dense_0's features of B's test split.
    features = models.stage_features("mlp", "dense_0", num_classes=5, hidden_sizes=(16,))
    test_feats = {
        "image": features(pretrained, result["pretrain"].state.model_state, split_b.test["image"]),
        "label": split_b.test["label"],
    }
    linear = result["arms"]["stage_features"]
    assert linear.test_accuracy == pytest.approx(
        _accuracy(models.linear(num_classes=5), linear.fit.state, test_feats), abs=1e-6
    )
    summary = (tmp_path / "summary.md").read_text()
    assert all(name in summary for name in transfer_experiment.ARMS)


def test_augment_fn_is_seeded_crops_and_flips():
    rng = np.random.default_rng(0)
    train = {"image": rng.random((12, 8, 8, 1)).astype(np.float32), "label": np.arange(12, dtype=np.int32)}

    def take(seed):
        return train_experiment.augment_fn(jax.random.key(seed), train)

    first, again, other = take(1), take(1), take(2)
    np.testing.assert_array_equal(first["image"], again["image"])
    np.testing.assert_array_equal(first["label"], train["label"])
    assert not np.array_equal(first["image"], other["image"])
    # NumPy reference: each image is one of the 9 x 9 crops of the zero-padded (pad 4)
    # original, possibly mirrored left-right.
    for image, label in zip(np.asarray(first["image"]), first["label"]):
        padded = np.pad(train["image"][label], ((4, 4), (4, 4), (0, 0)))
        candidates = [padded[i : i + 8, j : j + 8] for i in range(9) for j in range(9)]
        candidates += [c[:, ::-1] for c in candidates]
        assert any(np.array_equal(image, c) for c in candidates)


def test_suggestions_skip_the_first_tenth_of_the_curve():
    lrs = np.logspace(-5, 0, 20)
    # A sharp drop between the first two points (EMA start-up noise) must be ignored;
    # the real descent is steepest between points 10 and 12.
    curve = np.array([3.0, 2.0] + [2.0] * 8 + [1.9, 1.5, 1.1, 1.0, 0.95, 0.9, 0.88, 0.87, 0.86, 2.0])
    min_lr, steep_lr = lr_experiment.suggestions(lrs, curve)
    assert min_lr == pytest.approx(lrs[18])
    assert steep_lr == pytest.approx(lrs[11])


# ----------------------------------------------- hparam_search: grid, rounds, categorical (issue 12)
def test_grid_search_enumerates_the_cartesian_product():
    ranges, choices = {"learning_rate": (1e-3, 1e-1), "l2": (1e-6, 1e-4)}, {"optimizer": ("sgd", "adam")}
    points = search.grid_points(ranges, choices, 3)
    lrs, l2s = np.logspace(-3, -1, 3), np.logspace(-6, -4, 3)
    expected = [(lr, l2, opt) for lr in lrs for l2 in l2s for opt in ("sgd", "adam")]
    assert len(points) == 18
    got = [(p["learning_rate"], p["l2"], p["optimizer"]) for p in points]
    assert [g[2] for g in got] == [e[2] for e in expected]
    np.testing.assert_allclose([g[:2] for g in got], [e[:2] for e in expected], rtol=1e-12)
    with pytest.raises(_common.UsageError, match="--config.grid_size: expected an integer >= 1"):
        search.grid_points(ranges, choices, 0)


def test_categorical_sampling_is_seeded_and_covers_the_choices():
    choices = {"optimizer": ("sgd", "momentum", "adam"), "schedule": ("constant", "cosine")}
    points = search.sample_categorical(np.random.default_rng(5), choices, 60)
    assert points == search.sample_categorical(np.random.default_rng(5), choices, 60)
    for name, options in choices.items():
        counts = {o: sum(p[name] == o for p in points) for o in options}
        assert all(c >= 60 / len(options) / 3 for c in counts.values()), counts  # each choice drawn often
    with pytest.raises(_common.UsageError, match="--config.choices.optimizer: unknown category 'sgdd'"):
        search_experiment.validate_choices(
            ml_collections.ConfigDict(
                {**search_config.get_config().to_dict(), "choices": {"optimizer": ("sgd", "sgdd")}}
            )
        )
    with pytest.raises(_common.UsageError, match="--config.choices.schedule: expected at least one choice"):
        search.check_choices({"schedule": ()})


def test_coarse_to_fine_rounds_shrink_the_range_around_the_best():
    def objective(hparams, stage):  # a peak at lr = 1e-2 (log distance), categorical 'b' better
        return {
            "val_accuracy": -abs(math.log10(hparams["learning_rate"]) + 2) - (hparams["kind"] == "a"),
            "status": "completed",
        }

    widths, best = [], None
    for rounds in (0, 1, 2, 3):
        trials, last = search.coarse_to_fine(
            objective,
            {"learning_rate": (1e-5, 1e1)},
            num_coarse=8,
            num_fine=8,
            seed=0,
            top_k=2,
            shrink=0.1,
            rounds=rounds,
            choices={"kind": ("a", "b")},
        )
        lo, hi = last["learning_rate"]
        widths.append(math.log10(hi) - math.log10(lo))
        best = search.rank(trials)[0]
        assert lo <= best.hparams["learning_rate"] <= hi
        assert [t.round for t in trials] == sum(([r] * 8 for r in range(rounds + 1)), [])
    assert widths[0] == pytest.approx(6.0) and all(b < a for a, b in zip(widths, widths[1:])), widths
    assert best.hparams["kind"] == "b" and abs(math.log10(best.hparams["learning_rate"]) + 2) < 0.5
    trials, _ = search.coarse_to_fine(
        objective,
        {"learning_rate": (1e-5, 1e1)},
        num_coarse=1,
        num_fine=1,
        seed=0,
        strategy="grid",
        grid_size=2,
        rounds=1,
        top_k=2,
        choices={"kind": ("a", "b")},
    )
    assert len(trials) == 4 + 2 and {t.hparams["kind"] for t in trials if t.round == 1} == {"b"}


@pytest.mark.slow
def test_hparam_search_grid_with_categorical_optimizer_end_to_end(tmp_path):
    config = _tiny_search_config(False)
    config.ranges = ml_collections.ConfigDict({"learning_rate": (1e-2, 1e-1)})
    config.choices = ml_collections.ConfigDict({"optimizer": ("sgd", "adam")})
    config.strategy, config.grid_size, config.rounds = "grid", 2, 1
    config.coarse_steps = config.fine_steps = 10
    trials = search_experiment.run(config, tmp_path, log=lambda line: None)
    assert len(trials) >= 4 + 2 and {t.hparams["optimizer"] for t in trials if t.round == 0} == {"sgd", "adam"}
    table = (tmp_path / "trials.md").read_text()
    assert "optimizer" in table and "round" in table


def test_hparam_search_bad_strategy_exits_2():
    out = _run_main("experiments.hparam_search.main", "--workdir=/tmp/unused_hs", "--config.strategy=spiral")
    assert out["code"] == 2 and "--config.strategy: expected one of random, grid" in out["stderr"]
    assert len(out["stderr"].strip().splitlines()) == 1, out["stderr"]


def test_transfer_last_n_freezes_the_earlier_groups_and_differential_lr_scales_them(tmp_path):
    config = transfer_config.get_config()
    config.model_kwargs = ml_collections.ConfigDict({"hidden_sizes": (16, 8)})
    config.pretrain_steps, config.finetune_steps, config.eval_every = 20, 10, 10
    config.arms, config.finetune_last_n, config.optimizer = ("fine_tune_last_n", "differential_lr"), 2, "sgd"
    config.learning_rate = 0.1
    result = transfer_experiment.run(config, tmp_path)
    pretrained = result["pretrain"].state.params
    last_n = result["arms"]["fine_tune_last_n"].fit.state.params
    jax.tree_util.tree_map(np.testing.assert_array_equal, last_n["dense_0"], pretrained["dense_0"])  # frozen
    assert not np.allclose(last_n["dense_1"]["w"], pretrained["dense_1"]["w"])
    # Differential lrs with SGD: the backbone's total change is backbone_lr_scale x smaller per step;
    # the reference is optax.multi_transform with sgd(0.1 * scale) per group on the same transferred params.
    assert sorted(result["arms"]) == ["differential_lr", "fine_tune_last_n"]
    labels = models.group_labels(pretrained)
    ours = transfer_experiment.differential_optimizer(optimizers.sgd(learning_rate=0.1), pretrained, "head", 0.1)
    ref = optax.multi_transform({g: optax.sgd(0.1 if g == "head" else 0.01) for g in pretrained}, labels)
    grads = jax.tree_util.tree_map(jnp.ones_like, pretrained)
    chex.assert_trees_all_close(
        ours.update(grads, ours.init(pretrained), pretrained)[0],
        ref.update(grads, ref.init(pretrained), pretrained)[0],
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "change, message",
    [
        ({"arms": ("scratch", "bogus")}, "--config.arms: expected .*, got 'bogus'"),
        ({"arms": ("stage_features",), "feature_stage": "dense_9"}, "--config.feature_stage: stage: expected one of"),
        ({"arms": ("fine_tune_last_n",), "finetune_last_n": 9}, "--config.finetune_last_n: n: expected an int in"),
    ],
)
def test_transfer_bad_arm_fields_are_usage_errors(tmp_path, change, message):
    config = transfer_config.get_config()
    config.model_kwargs = ml_collections.ConfigDict({"hidden_sizes": (8,)})
    config.pretrain_steps, config.finetune_steps, config.eval_every = 2, 2, 2
    for name, value in change.items():
        config[name] = value
    with pytest.raises(_common.UsageError, match=message):
        transfer_experiment.run(config, tmp_path)
