"""Tests for experiments._common: flag validation, workdir checks, reports, plots, profiles."""

from __future__ import annotations

import csv
import errno
import json
import math
import subprocess
import sys
import textwrap

import ml_collections
import numpy as np
import pytest

from experiments import _common as common
from tests import test_utils

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------ CLI
@pytest.mark.parametrize(
    "value, expected",
    [
        ("sgd,adam", ("sgd", "adam")),
        (" adam , sgd ,", ("adam", "sgd")),  # spaces and trailing commas tolerated
        (["sgd", "adam,sgd"], ("sgd", "adam")),  # absl list flags; duplicates dropped
        ("all", ("sgd", "adam", "lbfgs")),
    ],
)
def test_parse_choices_accepts(value, expected):
    assert common.parse_choices("optimizers", value, ("sgd", "adam", "lbfgs")) == expected


@pytest.mark.parametrize(
    "value, message",
    [
        ("sgd,adamm", "--optimizers: expected one of sgd, adam, lbfgs, got 'adamm'"),
        ("", "--optimizers: expected at least one of sgd, adam, lbfgs, got nothing"),
    ],
)
def test_parse_choices_rejects_with_valid_list(value, message):
    with pytest.raises(common.UsageError) as err:
        common.parse_choices("optimizers", value, ("sgd", "adam", "lbfgs"))
    assert str(err.value) == message


def test_parse_float_map():
    got = common.parse_float_map("lr", "adam:1e-3, sgd:0.5", ("sgd", "adam"))
    assert got == {"adam": 1e-3, "sgd": 0.5}
    for bad, fragment in [
        ("adam=1e-3", "name:value"),
        ("adamm:1", "expected keys among sgd, adam, got 'adamm'"),
        ("adam:x", "expected a number"),
        ("sgd:-1", "positive"),
    ]:
        with pytest.raises(common.UsageError, match=fragment):
            common.parse_float_map("lr", bad, ("sgd", "adam"))


def test_parse_int_list():
    assert common.parse_int_list("seeds", "0,1, 2") == (0, 1, 2)
    with pytest.raises(common.UsageError, match="--seeds: expected comma-separated integers, got 'a'"):
        common.parse_int_list("seeds", "0,a")
    with pytest.raises(common.UsageError, match=">= 1"):
        common.parse_int_list("num_steps", "0", minimum=1)


def test_workdir_flag_is_the_main_modules_key_flag():
    """``define_workdir`` credits ``--workdir`` to the main that calls it, so ``--helpshort`` lists it."""
    from absl import flags

    from experiments.linear import main as linear_main

    key_flags = {f.name for f in flags.FLAGS.get_key_flags_for_module(linear_main)}
    assert {"config", "workdir"} <= key_flags


def test_check_workdir(tmp_path):
    created = common.check_workdir(tmp_path / "a" / "b")
    assert created.is_dir() and not list(created.iterdir())  # the write probe is cleaned up
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(common.UsageError, match="is a file"):
        common.check_workdir(blocker)
    # A directory below a regular file cannot be created, even as root (chmod would not stop root).
    with pytest.raises(common.UsageError, match=r"--workdir: cannot write to .*file/sub"):
        common.check_workdir(blocker / "sub")
    with pytest.raises(common.UsageError, match="expected a directory"):
        common.check_workdir("")


_SCRIPT = textwrap.dedent(
    """
    from absl import flags
    from experiments import _common as common
    flags.DEFINE_string("optimizers", "sgd", "which")
    def main(argv):
        common.parse_choices("optimizers", flags.FLAGS.optimizers, ("sgd", "adam"))
        print("ok")
    common.run(main)
    """
)


@pytest.mark.parametrize(
    "args, code, stderr",
    [
        (["--optimizers=adam"], 0, ""),
        (["--optimizers=adamm"], 2, "error: --optimizers: expected one of sgd, adam"),
        (["--optimizer=adam"], 2, "error: Unknown command line flag 'optimizer'"),
        (["stray"], 2, "error: unexpected positional arguments: stray"),
    ],
)
def test_run_one_line_error_exit_2(args, code, stderr):
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, *args], capture_output=True, text=True, cwd=test_utils.REPO_ROOT, timeout=120
    )
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    if code == 0:
        assert proc.stdout.strip() == "ok"
    else:
        assert len(lines) == 1 and lines[0].startswith(stderr), proc.stderr
        assert "Traceback" not in proc.stderr


def _raiser(error):
    def main(argv):
        raise error

    return main


@pytest.mark.parametrize(
    "error, code, line",
    [
        (common.UsageError("--config.x: expected 1, got 2"), 2, "error: --config.x: expected 1, got 2"),
        (
            ValueError("learning_rate: expected a finite number, got inf"),
            2,
            "error: learning_rate: expected a finite number, got inf",
        ),
        (
            FileNotFoundError("name: expected an existing .npz file, got 'x.npz'"),
            2,
            "error: name: expected an existing .npz file, got 'x.npz'",
        ),
        (
            OSError(errno.ENOSPC, "No space left on device", "/full/ckpt"),
            1,
            "error: No space left on device (/full/ckpt)",
        ),
        (PermissionError(errno.EACCES, "Permission denied", "/ro/out"), 1, "error: Permission denied (/ro/out)"),
    ],
)
def test_report_errors_one_line_and_exit_status(capsys, error, code, line):
    with pytest.raises(SystemExit) as info:
        common.report_errors(_raiser(error), [])
    assert info.value.code == code
    assert capsys.readouterr().err.strip().splitlines() == [line]


def test_report_errors_lets_other_errors_through():
    with pytest.raises(RuntimeError):  # a bug, not bad input: its traceback is wanted
        common.report_errors(_raiser(RuntimeError("bug")), [])


def test_config_numbers_are_checked_by_name():
    config = ml_collections.ConfigDict(
        {"learning_rate": 0.1, "seed": 0, "l2": 0.0, "top_k": 3, "ranges": {"learning_rate": (1e-3, 1.0)}, "name": "x"}
    )
    assert common.check_config_numbers(config) is config
    for field, value, message in [
        ("learning_rate", float("inf"), "--config.learning_rate: expected a finite number, got inf"),
        ("learning_rate", 0.0, "--config.learning_rate: expected a finite number > 0, got 0.0"),
        ("seed", -1, r"--config.seed: expected an int in \[0, 4294967295\], got -1"),
        ("l2", -0.5, "--config.l2: expected a finite number >= 0, got -0.5"),
        ("top_k", 0, "--config.top_k: expected an int >= 1, got 0"),
    ]:
        bad = ml_collections.ConfigDict(config.to_dict())
        bad[field] = value
        with pytest.raises(common.UsageError, match=f"^{message}$"):
            common.check_config_numbers(bad)
    bad = ml_collections.ConfigDict(config.to_dict())
    bad.ranges.learning_rate = (1e-3, float("nan"))
    with pytest.raises(common.UsageError, match=r"^--config.ranges.learning_rate\[1\]: expected a finite number"):
        common.check_config_numbers(bad)


_LOG_SCRIPT = textwrap.dedent(
    """
    from absl import logging
    from experiments import _common as common
    def main(argv):
        logging.info("info-line")  # what orbax writes per checkpoint
        logging.warning("warning-line")
    common.run(main)
    """
)


@pytest.mark.parametrize("args, info_shown", [([], False), (["--verbosity=0"], True)])
def test_run_sets_absl_logging_to_warning_unless_verbosity_given(args, info_shown):
    proc = subprocess.run(
        [sys.executable, "-c", _LOG_SCRIPT, *args],
        capture_output=True,
        text=True,
        cwd=test_utils.REPO_ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "warning-line" in proc.stderr
    assert ("info-line" in proc.stderr) == info_shown, proc.stderr


# ------------------------------------------------------------------------- registry
def test_registry_get_and_errors():
    registry = common.Registry("models", {"double": lambda x: 2 * x, "neg": lambda x: -x})
    assert registry.names == ("double", "neg")
    assert registry.get("double", x=3) == 6
    assert registry.parse("neg,double") == ("neg", "double")
    with pytest.raises(common.UsageError, match="^--models: expected one of double, neg, got 'triple'$"):
        registry.get("triple", x=3)


def test_model_registry_lists_contract_names():
    registry = common.model_registry()
    assert {"linear", "mlp"} <= set(registry.names)
    with pytest.raises(common.UsageError, match="--models: expected one of .*mlp.*, got 'mlpp'"):
        registry.check("mlpp")


# -------------------------------------------------------------------------- reports
def test_mean_std_matches_numpy_population_std():
    values = [0.5, 0.75, 1.25, float("nan"), float("inf")]  # non-finite values are dropped
    mean, std = common.mean_std(values)
    finite = np.array([0.5, 0.75, 1.25])
    assert mean == pytest.approx(finite.mean(), rel=1e-12)
    assert std == pytest.approx(finite.std(ddof=0), rel=1e-12)
    assert all(math.isnan(v) for v in common.mean_std([float("inf")]))
    assert common.format_mean_std([0.9, 0.8]) == "0.850 ± 0.050"
    assert common.format_mean_std([120.0], digits=0) == "120"
    assert common.format_mean_std([None, float("nan")]) == "—"


def test_aggregate_and_tables(tmp_path):
    records = [
        {"model": "mlp", "optimizer": "sgd", "seed": 0, "acc": 0.5},
        {"model": "mlp", "optimizer": "adam", "seed": 0, "acc": 0.9},
        {"model": "mlp", "optimizer": "sgd", "seed": 1, "acc": 0.7},
    ]
    rows = common.aggregate(
        records,
        by=("model", "optimizer"),
        columns={
            "acc": lambda g: common.format_mean_std(r["acc"] for r in g),
            "seeds": len,
        },
    )
    assert rows == [
        {"model": "mlp", "optimizer": "sgd", "acc": "0.600 ± 0.100", "seeds": 2},
        {"model": "mlp", "optimizer": "adam", "acc": "0.900", "seeds": 1},
    ]
    text = common.write_tables(tmp_path, "summary", rows, title="Summary")
    assert text == (tmp_path / "summary.md").read_text()
    assert text.splitlines()[2:4] == ["| model | optimizer | acc | seeds |", "|---|---|---|---|"]
    assert "| mlp | sgd | 0.600 ± 0.100 | 2 |" in text
    with (tmp_path / "summary.csv").open() as f:
        parsed = list(csv.DictReader(f))
    assert [r["optimizer"] for r in parsed] == ["sgd", "adam"] and parsed[0]["acc"] == "0.600 ± 0.100"


def test_write_json_handles_numpy_and_nonfinite(tmp_path):
    path = common.write_json(
        tmp_path / "r.json", {"a": np.arange(3), "b": float("inf"), "c": np.float32(0.5), "d": (1, np.int64(2))}
    )
    assert json.loads(path.read_text()) == {"a": [0, 1, 2], "b": None, "c": 0.5, "d": [1, 2]}


# ------------------------------------------------------------------------- profiles
def _reference_rho(costs: np.ndarray, tau: float) -> np.ndarray:
    """Dolan & Moré's definition transcribed with loops, float64."""
    solvers, problems = costs.shape
    rho = np.zeros(solvers)
    for p in range(problems):
        best = min(costs[s, p] for s in range(solvers))
        for s in range(solvers):
            if np.isfinite(costs[s, p]) and costs[s, p] / best <= tau:
                rho[s] += 1.0 / problems
    return rho


def test_performance_profile_matches_definition():
    rng = np.random.default_rng(0)
    costs = rng.uniform(1.0, 10.0, size=(4, 7))
    costs[rng.uniform(size=costs.shape) < 0.25] = np.inf  # some runs never reach the target
    costs[:, 3] = np.inf  # a problem no solver solves counts as unsolved for everyone
    names = ["a", "b", "c", "d"]
    profile = common.performance_profile(dict(zip(names, costs)), tau_max=4.0, num_taus=400)
    for j in range(0, 400, 37):
        np.testing.assert_allclose(profile.rho[:, j], _reference_rho(costs, profile.taus[j]), atol=1e-12)
    # The score is the exact area; a fine trapezoid of the reference step function agrees to
    # within its discretisation error (grid step 3e-5 × at most 7 jumps per solver).
    fine = np.linspace(1.0, 4.0, 100_001)
    area = np.trapezoid(np.stack([_reference_rho(costs, t) for t in fine[::100]]).T, fine[::100], axis=1)
    np.testing.assert_allclose(profile.scores, area / 3.0, atol=5e-3)  # coarse grid: 3e-3 per jump/P
    rows = common.profile_rows(profile, at=(1.0, 2.0))
    assert [r["optimizer"] for r in rows] == names
    np.testing.assert_allclose([r["rho(2)"] for r in rows], _reference_rho(costs, 2.0), atol=1e-3)


def test_performance_profile_hand_example():
    profile = common.performance_profile({"a": [1.0, 2.0, np.inf], "b": [2.0, 1.0, 3.0]}, tau_max=4.0)
    np.testing.assert_allclose(profile.ratios, [[1, 2, np.inf], [2, 1, 1]])
    np.testing.assert_allclose(profile.rho[:, 0], [1 / 3, 2 / 3])  # tau = 1: who is fastest
    np.testing.assert_allclose(profile.rho[:, -1], [2 / 3, 1.0])  # tau = 4: who reaches at all
    np.testing.assert_allclose(profile.scores, [(3 + 2) / 9, (2 + 3 + 3) / 9])  # mean_p (4 - r)^+ / 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"costs": {"a": [1.0], "b": [1.0, 2.0]}}, "same .*number of problems"),
        ({"costs": {"a": [0.0]}}, "positive"),
        ({"costs": {"a": [1.0]}, "tau_max": 1.0}, "tau_max: expected a value > 1"),
        ({"costs": {}}, "at least one solver"),
    ],
)
def test_performance_profile_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        common.performance_profile(**kwargs)


# ---------------------------------------------------------------------------- plots
def test_plots_write_png(tmp_path):
    x = np.arange(5)
    panels = {"linear": {"sgd": (x, [x + 1.0, x + 2.0]), "adam": (x, [np.exp(-x)])}, "mlp": {"sgd": (x, [x * 0.5 + 1])}}
    curves = common.plot_curves(tmp_path / "c.png", panels, ylabel="loss", logy=True)
    profile = common.performance_profile({"a": [1.0, 2.0], "b": [2.0, 1.0]})
    prof = common.plot_profile(tmp_path / "p.png", profile)
    many = common.plot_curves(
        tmp_path / "m.png", {f"panel {i}": {"sgd": (x, [x + i])} for i in range(5)}, ylabel="acc", max_cols=2
    )  # wraps onto 3 rows
    import matplotlib.image

    assert matplotlib.image.imread(many).shape[0] > matplotlib.image.imread(curves).shape[0] * 2
    for path in (curves, prof, many):
        assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5000


# ----------------------------------------------------------------------------- data
def test_load_splits_carves_val_from_the_end_of_train():
    splits = common.load_splits("digits", val_size=100, train_size=50, test_size=30)
    from jax231 import pipelines

    full = pipelines.load_arrays("digits", "train")
    np.testing.assert_array_equal(splits.val["image"], full["image"][-100:])
    np.testing.assert_array_equal(splits.train["label"], full["label"][:50])
    assert len(splits.test["label"]) == 30 and splits.num_classes == 10 and splits.input_shape == (8, 8, 1)
    with pytest.raises(common.UsageError, match="--config.val_size: expected 0 < val_size <"):
        common.load_splits("digits", val_size=0)
    with pytest.raises(
        common.UsageError,
        match="--dataset: expected one of mnist1d, digits, "
        "cifar10_shared, digit_canvas, .*tfds:<...>, npz:<...>, imagefolder:<...>",
    ):
        common.load_splits("mnist", val_size=10)


def test_load_splits_tfds_prefix_under_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")  # installed with the package; TF import is slow
    with tfds.testing.mock_data(num_examples=24):
        splits = common.load_splits("tfds:mnist", val_size=4)
    assert splits.train["image"].shape == (20, 28, 28, 1) and splits.val["label"].shape == (4,)
    assert splits.num_classes == 10 and splits.train["image"].dtype == np.float32
