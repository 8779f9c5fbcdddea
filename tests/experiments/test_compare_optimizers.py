"""Tests for experiments.compare_optimizers: end to end, 2-D mode, bad input, report logic."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import PIL.Image
import pytest

from experiments import _common as common
from experiments.compare_optimizers import config as config_lib
from experiments.compare_optimizers import (
    experiment,
    optim,
    report,
    run as run_lib,
    sweep as sweep_lib,
    trajectories,
    tune,
)
from jax231 import training
from tests import test_utils
from tests.reliability import cli_worker
from tests.training import test_logging

MAIN = "experiments.compare_optimizers.main"
TINY = [  # ~20 updates, one seed, two optimizers (one tuned on 2 rates, one full-batch), 500 examples.
    "--models=linear",
    "--optimizers=sgd,lbfgs",
    "--seeds=0",
    "--num_steps=20",
    "--config.eval_every=10",
    "--config.lbfgs_steps=4",
    "--config.lbfgs_eval_every=2",
    "--config.train_size=500",
    "--config.test_size=300",
    "--config.tuning.grid_size=2",
]


# ----------------------------------------------------------------------- end to end
def test_main_end_to_end_tiny(tmp_path):
    proc = test_utils.run_module(MAIN, f"--workdir={tmp_path}", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in (
        "summary.md",
        "summary.csv",
        "tuning.md",
        "sensitivity.png",
        "curves_loss.png",
        "curves_accuracy.png",
        "performance_profile_steps.png",
        "performance_profile_steps.csv",
        "performance_profile_seconds.png",
        "results.json",
        "report.md",
    ):
        assert (tmp_path / name).stat().st_size > 0, name
    for name in ("sensitivity.png", "performance_profile_steps.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG", name
    with (tmp_path / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["model"], r["optimizer"]) for r in rows] == [
        ("linear (target 0.30)", "sgd"),
        ("linear (target 0.30)", "lbfgs"),
    ]
    assert list(rows[0]) == list(report.SUMMARY_COLUMNS)
    assert "| linear (target 0.30) | lbfgs |" in proc.stdout  # the summary is printed at the end
    assert "budget: 2 log-spaced learning rates x 1 seeds" in proc.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    runs, (tuning,) = results["runs"], results["tuning"]
    # Every run is in the JSON: the 2 grid points of sgd (one sweep), then L-BFGS (untuned, fit's loop).
    assert [(r["optimizer"], r["seed"], r["status"]) for r in runs] == [
        ("sgd", 0, "completed"),
        ("sgd", 0, "completed"),
        ("lbfgs", 0, "completed"),
    ]
    assert tuning["grid"] == pytest.approx([0.03, 3.0]) and results["budget"]["grid_size"] == 2
    reported = [r for r in runs if r["reported"]]
    assert [r["learning_rate"] for r in reported] == pytest.approx([tuning["learning_rate"], 1.0])
    assert runs[0]["history"]["step"] == [10, 20] and runs[2]["history"]["step"] == [2, 4]
    assert float(rows[0]["lr"]) == pytest.approx(tuning["learning_rate"], rel=1e-2)
    for r in runs:
        assert 0.0 <= r["test_accuracy"] <= 1.0
    assert [row["optimizer"] for row in results["performance_profiles"]["steps"]] == ["sgd"]  # minibatch only
    assert [row["optimizer"] for row in results["performance_profiles"]["seconds"]] == ["sgd", "lbfgs"]
    # report.md embeds the figures and gives the command, the budget, the machine and a reading
    # whose numbers come from this run.
    text = (tmp_path / "report.md").read_text()
    for needle in (
        "![",
        "(sensitivity.png)",
        "(performance_profile_steps.png)",
        "(performance_profile_seconds.png)",
        "--config.tuning.grid_size=2",
        "**Budget:** 2 log-spaced",
        "cpu_count:",
        "jax:",
        "## Reading",
        "s CPU",
    ):
        assert needle in text, needle
    best = max(reported, key=lambda r: r["test_accuracy"])
    assert f"{best['optimizer']} has the best mean test accuracy ({best['test_accuracy']:.3f})" in text
    # TensorBoard (on by default with TensorFlow): one directory per reported run, curves and HParams.
    if training.tensorboard_available():
        dirs = {p.name: p for p in (tmp_path / "tensorboard").iterdir()}
        sgd = next(p for name, p in dirs.items() if "_sgd_" in name)
        assert len(dirs) == 2 and any("_lbfgs_" in name for name in dirs)
        scalars, hparams = test_logging.read_tensorboard(sgd)
        assert [step for step, _ in scalars["val_accuracy"]] == reported[0]["history"]["step"]
        np.testing.assert_allclose(
            [v for _, v in scalars["val_accuracy"]], reported[0]["history"]["val_accuracy"], rtol=1e-6
        )
        assert hparams["optimizer"] == "sgd" and hparams["seed"] == 0


def _main_in_process(*args):
    """The main in THIS process (no JAX import per case): its exit status and stderr.

    The exit status and the one stderr line are the contract; the real process boundary is
    test_main_end_to_end_tiny's (and tests/reliability/test_cli.py's).
    """
    out = cli_worker.run_in_process(MAIN, list(args))
    assert out["escaped"] is None and not out["timed_out"], out
    return out


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--optimizers=sgd,adamm"],
            "error: --optimizers: expected one of sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw, lbfgs",
        ),
        (["--models=linear,mlpp"], "error: --models: expected one of linear, mlp,"),
        (["--dataset=mnist2d"], "error: --dataset: expected one of mnist1d, digits, cifar10_shared"),
        (
            ["--config.batch_sizee=3"],  # ml_collections applies overrides at import: still one line
            'error: --config: bad override: unknown field batch_sizee Did you mean "batch_size"',
        ),
        (
            ["--config.tuning.grid_size=0"],  # an empty grid: refused by the CLI's name-based range check first
            "error: --config.tuning.grid_size: expected an int >= 1, got 0",
        ),
        (
            ["--config.target_accuracy.mlp=1.5"],  # a target no optimizer can reach
            "error: --config.target_accuracy.mlp: expected a validation accuracy in (0, 1]",
        ),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, args, message):
    out = _main_in_process(f"--workdir={tmp_path / 'out'}", *args)
    assert out["code"] == 2, out["stderr"]
    lines = out["stderr"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), out["stderr"]
    assert not (tmp_path / "out").exists()  # nothing is created before the input is valid


def test_optimizer_without_a_search_space_exit_2(tmp_path):
    # A user's config file that tunes muon but gives it no range: refused before any training.
    config = tmp_path / "my_config.py"
    config.write_text(
        "from experiments.compare_optimizers import config as base\n\n\n"
        "def get_config():\n    c = base.get_config()\n    del c.tuning.lr_ranges['muon']\n"
        "    c.optimizers = 'sgd,muon'\n    return c\n"
    )
    out = _main_in_process(f"--config={config}", f"--workdir={tmp_path / 'out'}")
    assert out["code"] == 2, out["stderr"]
    lines = out["stderr"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: --config.tuning.lr_ranges: expected a search space for every tuned optimizer (one of "
    ), lines
    assert "sgd" in lines[0] and lines[0].endswith("got none for 'muon'") and not (tmp_path / "out").exists()


def test_unwritable_workdir_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    out = _main_in_process(f"--workdir={blocker / 'sub'}", *TINY)
    assert out["code"] == 2
    assert out["stderr"].strip().startswith(f"error: --workdir: cannot write to '{blocker / 'sub'}'")
    assert "Traceback" not in out["stderr"] and out["stdout"] == ""  # no training output at all


# --------------------------------------------------------------------------- 2-D mode
def test_sgd_trajectory_matches_closed_form():
    # On f = (x^2 + k y^2) / 2, SGD gives x_t = (1 - a)^t x_0 and y_t = (1 - a k)^t y_0 (float64 NumPy).
    lr, k, steps = 0.09, 20.0, 30
    path = trajectories.trajectory(
        optim.build_optimizer("sgd", learning_rate=lr),
        lambda p: trajectories.quadratic(p, k),
        (-4.5, 1.5),
        num_steps=steps,
    )
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
    with PIL.Image.open(tmp_path / "trajectories.gif") as gif:  # the animation, Pillow writer
        assert gif.format == "GIF" and gif.n_frames == 30
    rows = json.loads((tmp_path / "trajectories.json").read_text())["rows"]
    assert [(r["surface"], r["optimizer"]) for r in rows] == [
        (s, o) for s in ("quadratic", "rosenbrock", "saddle") for o in ("sgd", "adam", "lbfgs")
    ]
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
        ({"lr": "adam:0"}, "--lr: expected a finite positive value for 'adam'"),
        ({"profile_cost": "time"}, "--config.profile_cost: expected one of seconds, epochs, steps, got 'time'"),
    ],
)
def test_validate_rejects(overrides, message):
    with pytest.raises(common.UsageError, match=message):
        experiment.validate(experiment.apply_overrides(config_lib.get_config(), **overrides))


def test_apply_overrides_lr_map_keeps_other_rates():
    config = experiment.apply_overrides(
        config_lib.get_config(), lr="adam:1e-4,sgd:0.5", num_steps=7, optimizers="sgd,adam"
    )
    plan = experiment.validate(config)
    assert plan.learning_rates == {"sgd": 0.5, "adam": 1e-4} and config.num_steps == 7
    assert config.learning_rates.rmsprop == config_lib.get_config().learning_rates.rmsprop


@pytest.mark.parametrize("schedule", optim.SCHEDULES)
def test_schedules_start_at_peak_or_warm_up(schedule):
    lr = optim.make_schedule(schedule, learning_rate=0.1, num_steps=30, warmup_steps=10)
    values = np.asarray([lr(t) if callable(lr) else lr for t in (0, 10, 29)], np.float64)
    expected = {
        "constant": [0.1, 0.1, 0.1],
        "cosine": [0.1, 0.5 * 0.1 * (1 + np.cos(np.pi * 10 / 30)), None],
        "step": [0.1, 0.01, 0.001],
        "warmup_cosine": [0.0, 0.1, None],
    }[schedule]
    for got, want in zip(values, expected):
        if want is not None:
            assert got == pytest.approx(want, rel=1e-5)
    assert np.all(values[1:] <= values[0] + 1e-12) or schedule == "warmup_cosine"


# --------------------------------------------------------------------- run measuring
def test_time_to_target_and_seconds_per_step():
    history = {"step": [10, 20, 30, 40], "time": [5.0, 5.2, 5.4, 5.8], "val_accuracy": [0.1, 0.5, float("nan"), 0.7]}
    assert run_lib.time_to_target(history, 0.5) == 20
    assert run_lib.time_to_target(history, 0.6) == 40
    assert run_lib.time_to_target(history, 0.9) == math.inf
    # First interval (compilation) excluded; median of 0.02, 0.02, 0.04 s per step.
    assert run_lib.seconds_per_step(history) == pytest.approx(0.02)


def _fake(model, opt, seed, *, acc, steps, per_step=0.01):
    spec = run_lib.RunSpec(model, opt, 0.1, seed)
    history = {"step": [10, 20], "time": [1.0, 1.1], "train_loss": [1.0, 0.5], "val_accuracy": [acc / 2, acc]}
    return run_lib.RunResult(
        spec, "completed", "", history, 0.1, 0.5, 0.8, acc, acc, steps, per_step, steps * per_step, 1.0
    )


def test_summary_rows_mean_std_over_seeds():
    results = [
        _fake("mlp", "sgd", 0, acc=0.6, steps=20),
        _fake("mlp", "sgd", 1, acc=0.8, steps=math.inf),
        _fake("mlp", "adam", 0, acc=0.7, steps=10),
        _fake("mlp", "adam", 1, acc=0.7, steps=30),
    ]
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
        return run_lib.train_one(
            run_lib.RunSpec("linear", "momentum", 0.03, seed),
            problem=problems["linear"],
            optimizer=opt,
            splits=splits,
            config=config,
        )

    a, b, c = once(0), once(0), once(1)
    assert a.history["train_loss"] == b.history["train_loss"] and a.history["step"] == [6, 12]
    assert (a.final_train_loss, a.test_accuracy) == (b.final_train_loss, b.test_accuracy)
    assert a.final_train_loss != c.final_train_loss  # the seed is data: other init, other order
    assert a.epochs_per_step == pytest.approx(128 / 300)


# ------------------------------------------------------------------------------ --sweep
def test_sweep_groups_one_call_per_optimizer_or_per_lr_with_a_schedule():
    specs = [
        run_lib.RunSpec(m, o, lr, s)
        for m in ("linear", "mlp")
        for o, lr in (("sgd", 0.1), ("sgd", 0.2), ("lbfgs", 1.0))
        for s in (0, 1)
    ]
    # Constant rate: the two rates and two seeds of (model, sgd) share one call; L-BFGS stays in the loop.
    assert sweep_lib.sweep_groups(specs, schedule="constant") == [[0, 1, 2, 3], [6, 7, 8, 9]]
    # A schedule overwrites the swept rate every step: one call per rate (seeds only).
    assert sweep_lib.sweep_groups(specs, schedule="cosine") == [[0, 1], [2, 3], [6, 7], [8, 9]]


@pytest.mark.slow
def test_sweep_gives_the_loop_numbers_and_writes_the_outputs(tmp_path):
    def run(sweep):
        config = config_lib.get_config()
        config.update(
            models="linear",
            optimizers="sgd,lbfgs",
            seeds="0,1",
            num_steps=20,
            eval_every=10,
            lbfgs_steps=4,
            lbfgs_eval_every=2,
            train_size=400,
            test_size=100,
            val_size=100,
            sweep=sweep,
            tune=False,
        )
        workdir = tmp_path / ("sweep" if sweep else "loop")
        workdir.mkdir()
        experiment.run(config, experiment.validate(config), workdir, log=lambda s: None)
        for name in ("summary.md", "summary.csv", "curves_loss.png", "performance_profile_steps.png", "results.json"):
            assert (workdir / name).stat().st_size > 0, name
        return json.loads((workdir / "results.json").read_text())

    loop, sweep = run(False), run(True)
    assert [(r["model"], r["optimizer"], r["seed"], r["status"]) for r in sweep["runs"]] == [
        (r["model"], r["optimizer"], r["seed"], r["status"]) for r in loop["runs"]
    ]
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


# ------------------------------------------------------------------------------ tuning
def test_learning_rate_grid_is_log_spaced_with_both_ends():
    grid = tune.learning_rate_grid(1e-3, 1e-1, 5)
    np.testing.assert_allclose(grid, [1e-3, 10**-2.5, 1e-2, 10**-1.5, 1e-1], rtol=1e-12)
    assert tune.learning_rate_grid(0.3, 0.3, 1).tolist() == [0.3]
    lrs, seeds = tune.grid_members([0.1, 1.0], [0, 1, 2])  # grid-major: member g * S + s
    assert lrs.tolist() == pytest.approx([0.1] * 3 + [1.0] * 3) and seeds.tolist() == [0, 1, 2, 0, 1, 2]
    for args, message in (
        ((1e-3, 1e-1, 0), "num: expected an integer >= 1"),
        ((1e-1, 1e-3, 3), r"\(low, high\): expected finite 0 < low <= high"),
    ):
        with pytest.raises(ValueError, match=message):
            tune.learning_rate_grid(*args)


def test_select_grid_point_mean_val_loss_diverged_never_wins():
    val = np.asarray([[1.0, 1.2], [0.8, 0.9], [0.5, np.nan]])
    diverged = np.asarray([[False, False], [False, False], [False, True]])
    assert tune.select_grid_point(val, diverged) == 1  # point 2 is lower on seed 0 but a seed diverged
    assert tune.select_grid_point(val[:2], diverged[:2]) == 1
    assert tune.select_grid_point([[0.7, 0.9], [0.8, 0.8]], np.zeros((2, 2), bool)) == 0  # tie: smaller lr
    assert tune.select_grid_point([[1.0], [2.0]], [[True], [True]]) == 0  # nothing stable: the first


def test_tuning_picks_the_grid_point_a_brute_force_loop_of_fit_picks():
    config = config_lib.get_config()
    splits = common.load_splits("mnist1d", val_size=100, train_size=300, test_size=100)
    problem = run_lib.build_problems(config, ["linear"], splits.num_classes)["linear"]
    optimizer = optim.build_optimizer("sgd", learning_rate=0.1)
    grid, seeds = [0.03, 0.3, 3.0], [0, 1]
    tuned = tune.tune_learning_rate(
        problem.model,
        optimizer,
        train=splits.train,
        val=splits.val,
        grid=grid,
        seeds=seeds,
        num_steps=20,
        batch_size=128,
        eval_every=10,
    )
    brute = np.zeros((3, 2))
    for g, lr in enumerate(grid):  # the brute force: one fit per (learning rate, seed), same choice rule
        for s, seed in enumerate(seeds):
            result = training.fit(
                problem.model,
                optimizer,
                train=splits.train,
                val=splits.val,
                num_steps=20,
                batch_size=128,
                eval_every=10,
                seed=seed,
                hyperparams={"learning_rate": lr},
            )
            brute[g, s] = np.inf if result.status == "diverged" else result.evaluate(splits.val)["loss"]
    assert tuned.chosen == int(np.argmin(brute.mean(axis=1))) and tuned.learning_rate == pytest.approx(0.3)
    ok = np.isfinite(brute)
    # vmapped members reassociate float32 sums (batched products); over 20 updates <= 1e-5 relative.
    np.testing.assert_allclose(tuned.val_loss[ok], brute[ok], rtol=1e-4)
    assert (~ok == tuned.diverged).all()


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.tuning.update(grid_size=0), "--config.tuning.grid_size: expected an integer >= 1"),
        (
            lambda c: c.tuning.lr_ranges.update(adam=(1e-2, 1e-3)),
            r"--config.tuning.lr_ranges.adam: expected \(low, high\) with 0 < low <= high, got \(0.01, 0.001\)",
        ),
        (lambda c: c.tuning.lr_ranges.update(adam=(0.0, 1e-3)), "--config.tuning.lr_ranges.adam: expected"),
        (
            lambda c: c.tuning.lr_ranges.__delitem__("lion"),
            "--config.tuning.lr_ranges: expected a search space for every tuned optimizer .*got none for 'lion'",
        ),
        (lambda c: c.target_accuracy.update(linear=1.01), r"--config.target_accuracy.linear: expected .* \(0, 1\]"),
        (lambda c: c.update(default_target_accuracy=0.0), "--config.default_target_accuracy: expected"),
        (lambda c: c.update(schedule="cosine"), "--schedule: expected constant while tuning"),
        (lambda c: c.update(optimizers="sgd,adamm"), "--optimizers: expected one of sgd, .*, got 'adamm'"),
    ],
)
def test_validate_rejects_bad_tuning_config(edit, message):
    config = config_lib.get_config()
    edit(config)
    with pytest.raises(common.UsageError, match=message):
        experiment.validate(config)


def test_full_batch_rules_need_no_search_space_and_notune_needs_rates():
    config = config_lib.get_config()
    config.optimizers = "lbfgs,shampoo"
    plan = experiment.validate(config)  # lbfgs: untuned; shampoo: tuned, built at its range's midpoint
    assert plan.learning_rates == {"lbfgs": 1.0, "shampoo": pytest.approx(0.1)}
    config.tune = False
    with pytest.raises(common.UsageError, match="--lr: expected a learning rate for 'shampoo'"):
        experiment.validate(config)


def test_profile_in_steps_equals_a_hand_computation(tmp_path):
    # Made-up steps to target on 2 problems (model, seed): a = (100, 400), b = (200, 200), c = (inf, 100).
    results = [
        _fake("mlp", "a", 0, acc=0.6, steps=100),
        _fake("mlp", "a", 1, acc=0.6, steps=400),
        _fake("mlp", "b", 0, acc=0.6, steps=200),
        _fake("mlp", "b", 1, acc=0.6, steps=200),
        _fake("mlp", "c", 0, acc=0.6, steps=math.inf),
        _fake("mlp", "c", 1, acc=0.6, steps=100),
    ]
    _, rows = report.write_profile(tmp_path, results, cost="steps", tau_max=4.0)
    # By hand: the best per problem is 100 and 100, so the ratios are a (1, 4), b (2, 2), c (inf, 1);
    # rho(tau) = fraction of ratios <= tau; score = mean over problems of (4 - r)^+ / (4 - 1).
    expected = {
        "a": ([0.5, 0.5, 0.5, 1.0], (3 + 0) / 2 / 3),
        "b": ([0.0, 0.0, 1.0, 1.0], (2 + 2) / 2 / 3),
        "c": ([0.5, 0.5, 0.5, 0.5], (0 + 3) / 2 / 3),
    }
    for row in rows:
        rho, score = expected[row["optimizer"]]
        assert [row["rho(1)"], row["rho(1.5)"], row["rho(2)"], row["rho(4)"]] == pytest.approx(rho)
        assert row["score"] == pytest.approx(score, abs=1e-3)  # rows round to 3 digits
    assert (tmp_path / "performance_profile_steps.png").read_bytes()[:4] == b"\x89PNG"
