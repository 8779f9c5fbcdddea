"""Tests for experiments.compare_optimizers: end to end, 2-D mode, bad input, report logic."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments import _common as common
from experiments.compare_optimizers import config as config_lib
from experiments.compare_optimizers import experiment, optim, report, run as run_lib, sweep as sweep_lib, trajectories
from jax231 import training
from tests import test_utils
from tests.training import test_logging

MAIN = "experiments.compare_optimizers.main"
TINY = [  # ~20 updates, one seed, two optimizers (one minibatch, one full-batch), 500 examples.
    "--models=linear", "--optimizers=sgd,lbfgs", "--seeds=0", "--num_steps=20",
    "--config.eval_every=10", "--config.lbfgs_steps=4", "--config.lbfgs_eval_every=2",
    "--config.train_size=500", "--config.test_size=300",
]


def _main(*args, timeout=300):
    env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", MAIN, *args], capture_output=True, text=True,
                          cwd=test_utils.REPO_ROOT, env=env, timeout=timeout)


# ----------------------------------------------------------------------- end to end
def test_main_end_to_end_tiny(tmp_path):
    proc = _main(f"--workdir={tmp_path}", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("summary.md", "summary.csv", "curves_loss.png", "curves_accuracy.png",
                 "performance_profile.png", "performance_profile.md", "performance_profile.csv",
                 "results.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    with (tmp_path / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["model"], r["optimizer"]) for r in rows] == [("linear (target 0.30)", "sgd"),
                                                           ("linear (target 0.30)", "lbfgs")]
    assert list(rows[0]) == list(report.SUMMARY_COLUMNS)
    # The markdown summary is printed to stdout at the end.
    assert "| linear (target 0.30) | lbfgs |" in proc.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    runs = results["runs"]
    assert [(r["optimizer"], r["seed"], r["status"]) for r in runs] == [("sgd", 0, "completed"),
                                                                      ("lbfgs", 0, "completed")]
    assert runs[0]["history"]["step"] == [10, 20] and runs[1]["history"]["step"] == [2, 4]
    for r in runs:  # a few updates of softmax regression lower the loss below chance, log(10)
        assert r["final_train_loss"] < math.log(10) and 0.0 <= r["test_accuracy"] <= 1.0
    assert [row["optimizer"] for row in results["performance_profile"]] == ["sgd", "lbfgs"]
    # TensorBoard (on by default with TensorFlow): one directory per run, curves and HParams.
    if training.tensorboard_available():
        dirs = {p.name: p for p in (tmp_path / "tensorboard").iterdir()}
        sgd = next(p for name, p in dirs.items() if "_sgd_" in name)
        assert len(dirs) == 2 and any("_lbfgs_" in name for name in dirs)
        scalars, hparams = test_logging.read_tensorboard(sgd)
        assert [step for step, _ in scalars["val_accuracy"]] == runs[0]["history"]["step"]
        np.testing.assert_allclose([v for _, v in scalars["val_accuracy"]], runs[0]["history"]["val_accuracy"],
                                   rtol=1e-6)
        assert hparams["optimizer"] == "sgd" and hparams["seed"] == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--optimizers=sgd,adamm"], "error: --optimizers: expected one of sgd, momentum, nesterov, "
                                      "adagrad, rmsprop, adam, adamw, lbfgs"),
        (["--models=linear,mlpp"], "error: --models: expected one of linear, mlp,"),
        (["--dataset=mnist2d"], "error: --dataset: expected one of mnist1d, digits, cifar10_shared"),
        (["--config.batch_sizee=3"],  # ml_collections applies overrides at import: still one line
         'error: --config: bad override: unknown field batch_sizee Did you mean "batch_size"'),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, args, message):
    proc = _main(f"--workdir={tmp_path / 'out'}", *args, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr
    assert not (tmp_path / "out").exists()  # nothing is created before the input is valid


def test_unwritable_workdir_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = _main(f"--workdir={blocker / 'sub'}", *TINY, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(f"error: --workdir: cannot write to '{blocker / 'sub'}'")
    assert "Traceback" not in proc.stderr and proc.stdout == ""  # no training output at all


# --------------------------------------------------------------------------- 2-D mode
def test_sgd_trajectory_matches_closed_form():
    # On f = (x^2 + k y^2) / 2, SGD gives x_t = (1 - a)^t x_0 and y_t = (1 - a k)^t y_0 (float64 NumPy).
    lr, k, steps = 0.09, 20.0, 30
    path = trajectories.trajectory(optim.build_optimizer("sgd", learning_rate=lr),
                                   lambda p: trajectories.quadratic(p, k), (-4.5, 1.5), num_steps=steps)
    t = np.arange(steps + 1, dtype=np.float64)
    expected = np.stack([-4.5 * (1 - lr) ** t, 1.5 * (1 - lr * k) ** t], axis=1)
    np.testing.assert_allclose(np.asarray(path), expected, rtol=1e-4, atol=1e-6)  # float32 products


def test_trajectories_mode_writes_picture(tmp_path):
    config = config_lib.get_config()
    config.mode, config.optimizers = "2d", "sgd,adam,lbfgs"
    config.trajectory_steps.rosenbrock = 100
    plan = experiment.validate(config)
    text = experiment.run(config, plan, tmp_path, log=lambda s: None)
    assert (tmp_path / "trajectories.png").read_bytes()[:4] == b"\x89PNG"
    rows = json.loads((tmp_path / "trajectories.json").read_text())["rows"]
    assert [(r["surface"], r["optimizer"]) for r in rows] == [
        (s, o) for s in ("quadratic", "rosenbrock", "saddle") for o in ("sgd", "adam", "lbfgs")]
    final = {(r["surface"], r["optimizer"]): r for r in rows}
    # L-BFGS with a line search solves all three in the step budget (Rosenbrock in < 100 iterations).
    for surface in ("quadratic", "rosenbrock", "saddle"):
        assert final[(surface, "lbfgs")]["final_distance"] < 1e-2, surface
    # SGD leaves the saddle's ridge (start y = 1e-3) and ends near a minimum, not at the saddle.
    assert final[("saddle", "sgd")]["final_distance"] < 0.1
    assert "| rosenbrock | lbfgs |" in text


# ---------------------------------------------------------------------- config & plan
def test_default_config_validates():
    plan = experiment.validate(config_lib.get_config())
    assert plan.optimizers == optim.OPTIMIZERS and plan.models == ("linear", "mlp")
    assert plan.seeds == (0, 1, 2) and plan.mode == "train"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"optimizers": "sgd,adamm"}, "--optimizers: expected one of sgd, .*, got 'adamm'"),
        ({"mode": "3d"}, "--mode: expected one of train, 2d, got '3d'"),
        ({"schedule": "cosin"}, "--schedule: expected one of constant, cosine, step, warmup_cosine, got 'cosin'"),
        ({"seeds": "0,x"}, "--seeds: expected comma-separated integers, got 'x'"),
        ({"num_steps": 0}, "--num_steps: expected a positive integer; got 0"),
        ({"lr": "adam:0"}, "--lr: expected a positive value for 'adam'"),
        ({"lr_search": -1}, "--lr_search: expected an integer >= 0"),
        ({"profile_cost": "time"}, "--config.profile_cost: expected one of seconds, epochs, steps, got 'time'"),
    ],
)
def test_validate_rejects(overrides, message):
    with pytest.raises(common.UsageError, match=message):
        experiment.validate(experiment.apply_overrides(config_lib.get_config(), **overrides))


def test_apply_overrides_lr_map_keeps_other_rates():
    config = experiment.apply_overrides(config_lib.get_config(), lr="adam:1e-4,sgd:0.5", num_steps=7,
                                        optimizers="sgd,adam")
    plan = experiment.validate(config)
    assert plan.learning_rates == {"sgd": 0.5, "adam": 1e-4} and config.num_steps == 7
    assert config.learning_rates.rmsprop == config_lib.get_config().learning_rates.rmsprop


@pytest.mark.parametrize("schedule", optim.SCHEDULES)
def test_schedules_start_at_peak_or_warm_up(schedule):
    lr = optim.make_schedule(schedule, learning_rate=0.1, num_steps=30, warmup_steps=10)
    values = np.asarray([lr(t) if callable(lr) else lr for t in (0, 10, 29)], np.float64)
    expected = {"constant": [0.1, 0.1, 0.1], "cosine": [0.1, 0.5 * 0.1 * (1 + np.cos(np.pi * 10 / 30)), None],
                "step": [0.1, 0.01, 0.001], "warmup_cosine": [0.0, 0.1, None]}[schedule]
    for got, want in zip(values, expected):
        if want is not None:
            assert got == pytest.approx(want, rel=1e-5)
    assert np.all(values[1:] <= values[0] + 1e-12) or schedule == "warmup_cosine"


# --------------------------------------------------------------------- run measuring
def test_time_to_target_and_seconds_per_step():
    history = {"step": [10, 20, 30, 40], "time": [5.0, 5.2, 5.4, 5.8],
               "val_accuracy": [0.1, 0.5, float("nan"), 0.7]}
    assert run_lib.time_to_target(history, 0.5) == 20
    assert run_lib.time_to_target(history, 0.6) == 40
    assert run_lib.time_to_target(history, 0.9) == math.inf
    # First interval (compilation) excluded; median of 0.02, 0.02, 0.04 s per step.
    assert run_lib.seconds_per_step(history) == pytest.approx(0.02)


def test_sample_learning_rates_log_uniform_and_deterministic():
    lrs = run_lib.sample_learning_rates(1e-3, num=200, decades=1.5, seed=3)
    assert lrs == run_lib.sample_learning_rates(1e-3, num=200, decades=1.5, seed=3)
    exponents = np.log10(np.asarray(lrs) / 1e-3)
    assert exponents.min() >= -1.5 and exponents.max() <= 1.5 and lrs == sorted(lrs)
    assert abs(exponents.mean()) < 0.25  # uniform in log space: mean 0, std 0.87 / sqrt(200) = 0.06


def _fake(model, opt, seed, *, acc, steps, per_step=0.01):
    spec = run_lib.RunSpec(model, opt, 0.1, seed)
    history = {"step": [10, 20], "time": [1.0, 1.1], "train_loss": [1.0, 0.5],
               "val_accuracy": [acc / 2, acc]}
    return run_lib.RunResult(spec, "completed", "", history, 0.1, 0.5, 0.8, acc, acc, steps,
                             per_step, steps * per_step, 1.0)


def test_summary_rows_mean_std_over_seeds():
    results = [_fake("mlp", "sgd", 0, acc=0.6, steps=20), _fake("mlp", "sgd", 1, acc=0.8, steps=math.inf),
               _fake("mlp", "adam", 0, acc=0.7, steps=10), _fake("mlp", "adam", 1, acc=0.7, steps=30)]
    rows = report.summary_rows(results, targets={"mlp": 0.55})
    assert [r["optimizer"] for r in rows] == ["sgd", "adam"]
    assert rows[0]["test acc"] == "0.700 ± 0.100" and rows[0]["reached"] == "1/2"
    assert rows[0]["steps to target"] == "20" and rows[1]["steps to target"] == "20 ± 10"
    costs = report.profile_costs(results)  # seconds: steps x seconds per step
    np.testing.assert_allclose(costs["sgd"], [0.2, np.inf])
    np.testing.assert_allclose(costs["adam"], [0.1, 0.3])
    np.testing.assert_allclose(report.profile_costs(results, cost="epochs")["adam"], [1.0, 3.0])  # x 0.1
    np.testing.assert_allclose(report.profile_costs(results, cost="steps")["adam"], [10, 30])


def test_train_one_same_seed_same_numbers():
    config = config_lib.get_config()
    config.num_steps, config.eval_every = 12, 6
    splits = common.load_splits("mnist1d", val_size=100, train_size=300, test_size=100)
    problems = run_lib.build_problems(config, ["linear"], splits.num_classes)
    opt = run_lib.make_optimizer(config, "momentum", 0.03)

    def once(seed):
        return run_lib.train_one(run_lib.RunSpec("linear", "momentum", 0.03, seed), problem=problems["linear"],
                                 optimizer=opt, splits=splits, config=config)

    a, b, c = once(0), once(0), once(1)
    assert a.history["train_loss"] == b.history["train_loss"] and a.history["step"] == [6, 12]
    assert (a.final_train_loss, a.test_accuracy) == (b.final_train_loss, b.test_accuracy)
    assert a.final_train_loss != c.final_train_loss  # the seed is data: other init, other order
    assert a.epochs_per_step == pytest.approx(128 / 300)


@pytest.mark.parametrize("sweep", [False, True])  # True: the 2 search rates run as one run_sweep
def test_lr_search_picks_best_val_accuracy_and_reports(tmp_path, sweep):
    config = config_lib.get_config()
    config.update(models="linear", optimizers="sgd", seeds="0", num_steps=10, eval_every=5, lr_search=2,
                  lr_search_decades=2.0, train_size=300, test_size=100, val_size=100, sweep=sweep)
    plan = experiment.validate(config)
    experiment.run(config, plan, tmp_path, log=lambda s: None)
    results = json.loads((tmp_path / "results.json").read_text())
    search = results["lr_search"]
    lrs = run_lib.sample_learning_rates(config.learning_rates.sgd, num=2, decades=2.0, seed=0)
    assert [r["learning_rate"] for r in search] == pytest.approx(lrs)
    best = max(search, key=lambda r: (r["val_accuracy"], -r["final_train_loss"]))
    assert results["runs"][0]["learning_rate"] == pytest.approx(best["learning_rate"])
    assert "| linear | sgd |" in (tmp_path / "lr_search.md").read_text()
    assert all(("run_sweep, 2 members" in r["message"]) == sweep for r in search)


# ------------------------------------------------------------------------------ --sweep
def test_sweep_groups_one_call_per_optimizer_or_per_lr_with_a_schedule():
    specs = [run_lib.RunSpec(m, o, lr, s) for m in ("linear", "mlp") for o, lr in
             (("sgd", 0.1), ("sgd", 0.2), ("lbfgs", 1.0)) for s in (0, 1)]
    # Constant rate: the two rates and two seeds of (model, sgd) share one call; L-BFGS stays in the loop.
    assert sweep_lib.sweep_groups(specs, schedule="constant") == [[0, 1, 2, 3], [6, 7, 8, 9]]
    # A schedule overwrites the swept rate every step: one call per rate (seeds only).
    assert sweep_lib.sweep_groups(specs, schedule="cosine") == [[0, 1], [2, 3], [6, 7], [8, 9]]


@pytest.mark.slow
def test_sweep_gives_the_loop_numbers_and_writes_the_outputs(tmp_path):
    def run(sweep):
        config = config_lib.get_config()
        config.update(models="linear", optimizers="sgd,lbfgs", seeds="0,1", num_steps=20, eval_every=10,
                      lbfgs_steps=4, lbfgs_eval_every=2, train_size=400, test_size=100, val_size=100,
                      sweep=sweep)
        workdir = tmp_path / ("sweep" if sweep else "loop")
        workdir.mkdir()
        experiment.run(config, experiment.validate(config), workdir, log=lambda s: None)
        for name in ("summary.md", "summary.csv", "curves_loss.png", "performance_profile.png", "results.json"):
            assert (workdir / name).stat().st_size > 0, name
        return json.loads((workdir / "results.json").read_text())

    loop, sweep = run(False), run(True)
    assert [(r["model"], r["optimizer"], r["seed"], r["status"]) for r in sweep["runs"]] == \
        [(r["model"], r["optimizer"], r["seed"], r["status"]) for r in loop["runs"]]
    for a, b in zip(loop["runs"], sweep["runs"]):
        assert a["history"]["step"] == b["history"]["step"]
        # run_sweep vmaps the members: XLA batches their matrix products, so float32 sums are
        # reassociated; over 20 updates that moves losses by a few ulp (measured <= 2e-7 relative).
        np.testing.assert_allclose(b["history"]["train_loss"], a["history"]["train_loss"], rtol=1e-5)
        assert b["final_train_loss"] == pytest.approx(a["final_train_loss"], rel=1e-5)
        # Accuracies count argmax hits on 100 examples: equal unless a near-tie flips one (1/100).
        for key in ("val_accuracy", "test_accuracy", "final_train_accuracy"):
            assert abs(b[key] - a[key]) <= 0.01 + 1e-9, key
        assert b["steps_to_target"] == a["steps_to_target"]
    for a, b in zip(loop["runs"], sweep["runs"]):
        if b["optimizer"] == "lbfgs":  # not swept: the same fit loop, bitwise the same losses
            assert "run_sweep" not in b["message"] and b["history"]["train_loss"] == a["history"]["train_loss"]
    swept = [r for r in sweep["runs"] if r["optimizer"] != "lbfgs"]
    assert all("run_sweep, 2 members" in r["message"] for r in swept)
    # Seconds are the sweep's, shared by its 2 members: equal amortised costs within a call.
    for opt in ("sgd",):
        per_step = {r["seconds_per_step"] for r in swept if r["optimizer"] == opt}
        assert len(per_step) == 1 and per_step.pop() > 0
