"""Tests for experiments.claims: the verdicts, real tiny runs, the report, and bad input.

Every claim's verdict (``experiments.claims.experiment.VERDICTS``, the direction the
notes state) is checked on made-up numbers of the shape the claim measures: one set
where the effect goes the notes' way and, for each condition of the verdict, one set
where only that condition fails. The measurements themselves run for real on
``config.get_config('tiny')`` for the cheapest claims of each module (two of them
train: ``dead_relu`` and ``polyak``), and must reach the notes' verdict; the full-size
measurements of all 19 claims are ``python -m experiments.claims.main`` (its config
docstring). The other claims' tiny runs take 5-25 s of CPU each, which the suite's
budget cannot hold for all 19; ``python -m experiments.claims.main
--config=experiments/claims/config.py:tiny`` runs them all (a few minutes).
"""

from __future__ import annotations


import pytest

from experiments.claims import config as config_lib
from experiments.claims import experiment
from tests import test_utils
from tests.reliability import cli_worker

MAIN = "experiments.claims.main"
TINY = config_lib.get_config("tiny")

REAL_TINY_RUNS = (
    "dead_relu",
    "init_scale",
    "batch_norm_identity",
    "polyak",
    "adam_bias_correction",
    "sgd_zigzag",
    "lstm_vs_rnn",
)
"""Claims measured for real here: at least one per claim module, 1-8 s of CPU each (22 s together)."""


def _sat(saturated, grad_ratio, same_sign):
    return {"saturated": saturated, "grad_ratio": grad_ratio, "same_sign_layer2": same_sign}


def _init_stats(small_last, large_saturated, xavier_last):
    return {
        "std 0.01": {"std": [1.0, small_last], "saturated": [0.0, 0.0]},
        "std 1.0": {"std": [1.0, 0.9], "saturated": [0.9, large_saturated]},
        "xavier": {"std": [1.0, xavier_last], "saturated": [0.0, 0.0]},
    }


def _gaps(none, dropout, l2):
    return {"none": {"gap": none}, "dropout 0.2": {"gap": dropout}, "L2 0.01": {"gap": l2}}


# claim -> (numbers where the notes' effect shows, [numbers where one condition of it fails, ...]).
CASES = {
    "relu_vs_tanh": (
        {"factor": {"tanh": 1.4, "sigmoid": float("inf")}},
        [{"factor": {"tanh": 0.9, "sigmoid": 2.0}}, {"factor": {"tanh": 1.4, "sigmoid": 1.0}}],
    ),
    "sigmoid_saturation": (
        {
            "sigmoid, xavier": _sat(0.0, float("nan"), 1.0),
            "sigmoid, std 1.0": _sat(0.4, 0.02, 1.0),
            "tanh, xavier": _sat(0.0, float("nan"), 0.0),
        },
        [
            {
                "sigmoid, xavier": _sat(0.5, float("nan"), 1.0),
                "sigmoid, std 1.0": _sat(0.4, 0.02, 1.0),
                "tanh, xavier": _sat(0.0, float("nan"), 0.0),
            },
            {
                "sigmoid, xavier": _sat(0.0, float("nan"), 1.0),
                "sigmoid, std 1.0": _sat(0.4, 0.5, 1.0),
                "tanh, xavier": _sat(0.0, float("nan"), 0.0),
            },
            {
                "sigmoid, xavier": _sat(0.0, float("nan"), 0.9),
                "sigmoid, std 1.0": _sat(0.4, 0.02, 1.0),
                "tanh, xavier": _sat(0.0, float("nan"), 0.0),
            },
            {
                "sigmoid, xavier": _sat(0.0, float("nan"), 1.0),
                "sigmoid, std 1.0": _sat(0.4, 0.02, 1.0),
                "tanh, xavier": _sat(0.0, float("nan"), 0.8),
            },
        ],
    ),
    "dead_relu": (
        {"at init": 0.05, "lr 0.05": 0.02, "lr 2.0": 0.84},
        [{"at init": 0.05, "lr 0.05": 0.02, "lr 2.0": 0.06}],
    ),
    "constant_init_symmetry": (
        {"spread": {"zero": 0.0, "constant 0.01": 1e-6, "random (He)": 2.0}},
        [
            {"spread": {"zero": 1e-3, "constant 0.01": 0.0, "random (He)": 2.0}},
            {"spread": {"zero": 0.0, "constant 0.01": 1e-3, "random (He)": 2.0}},
            {"spread": {"zero": 0.0, "constant 0.01": 0.0, "random (He)": 0.05}},
        ],
    ),
    "init_scale": (
        _init_stats(1e-6, 0.7, 0.4),
        [_init_stats(1e-2, 0.7, 0.4), _init_stats(1e-6, 0.3, 0.4), _init_stats(1e-6, 0.7, 0.01)],
    ),
    "batch_norm": (
        {
            "val_accuracy_by_lr": {"plain": [0.7, 0.1], "batch norm": [0.9, 0.9]},
            "small_init": {"plain": 0.1, "batch norm": 0.9},
        },
        [
            {
                "val_accuracy_by_lr": {"plain": [0.7, 0.88], "batch norm": [0.9, 0.9]},
                "small_init": {"plain": 0.1, "batch norm": 0.9},
            },
            {
                "val_accuracy_by_lr": {"plain": [0.7, 0.1], "batch norm": [0.9, 0.9]},
                "small_init": {"plain": 0.88, "batch norm": 0.9},
            },
        ],
    ),
    "batch_norm_identity": ({"relative_error": 8e-8}, [{"relative_error": 1e-3}]),
    "dropout_l2_gap": (_gaps(0.35, 0.16, 0.06), [_gaps(0.35, 0.4, 0.06), _gaps(0.35, 0.16, 0.35)]),
    "l1_vs_l2": ({"L1": 0.6, "L2": 0.04}, [{"L1": 0.2, "L2": 0.04}]),
    "ensemble": (
        {"ensemble": 0.64, "members": [0.57, 0.59, 0.55]},
        [{"ensemble": 0.57, "members": [0.57, 0.59, 0.55]}],
    ),
    "polyak": ({"last": 0.39, "average": 0.35}, [{"last": 0.35, "average": 0.39}]),
    "random_vs_grid": (
        {"grid_best": 0.90, "random_best": [0.91, 0.90]},
        [{"grid_best": 0.90, "random_best": [0.91, 0.85]}],
    ),
    "sgd_zigzag": (
        {"flips": {"sgd": 1.0}, "steps_to_1e-3": {"sgd": float("inf"), "momentum 0.9": 73.0}},
        [
            {"flips": {"sgd": 0.5}, "steps_to_1e-3": {"sgd": float("inf"), "momentum 0.9": 73.0}},
            {"flips": {"sgd": 1.0}, "steps_to_1e-3": {"sgd": 50.0, "momentum 0.9": 73.0}},
        ],
    ),
    "adam_bias_correction": ({"beta2 0.999": 3.2, "beta2 0.9999": 10.0}, [{"beta2 0.999": 1.0, "beta2 0.9999": 10.0}]),
    "adam_rotation": (
        {"adam": {"aligned": 1e-12, "rotated": 1e-3}, "sgd": {"aligned": 1e-3, "rotated": 1e-3}},
        [
            {"adam": {"aligned": 1e-3, "rotated": 2e-3}, "sgd": {"aligned": 1e-3, "rotated": 1e-3}},
            {"adam": {"aligned": 1e-12, "rotated": 1e-3}, "sgd": {"aligned": 1e-5, "rotated": 1e-3}},
        ],
    ),
    "lbfgs_batch": (
        {"L-BFGS full batch": 1e-9, "L-BFGS batch 32": 0.09, "SGD batch 32": 0.4},
        [{"L-BFGS full batch": 0.06, "L-BFGS batch 32": 0.09, "SGD batch 32": 0.4}],
    ),
    "svm_vs_softmax": (
        {"svm": {"grad_norm": 0.0}, "softmax": {"grad_norm": 0.015}},
        [
            {"svm": {"grad_norm": 1e-3}, "softmax": {"grad_norm": 0.015}},
            {"svm": {"grad_norm": 0.0}, "softmax": {"grad_norm": 0.0}},
        ],
    ),
    "rnn_spectral": (
        {"sigma Q 0.9": [1.0, 1e-3, 3e-5], "sigma Q 1.1": [1.0, 17.0, 5.0]},
        [
            {"sigma Q 0.9": [1.0, 0.5, 0.1], "sigma Q 1.1": [1.0, 17.0, 5.0]},
            {"sigma Q 0.9": [1.0, 1e-3, 3e-5], "sigma Q 1.1": [1.0, 2.0, 1.5]},
        ],
    ),
    "lstm_vs_rnn": (
        {"vanilla RNN": [1.0, 1e-20, 0.0], "LSTM (forget bias 1.0)": [1.0, 1e-5, 1e-8]},
        [{"vanilla RNN": [1.0, 1e-5, 1e-8], "LSTM (forget bias 1.0)": [1.0, 1e-5, 1e-8]}],
    ),
}


def test_every_claim_has_a_verdict_and_cases():
    assert list(experiment.VERDICTS) == list(experiment.CLAIMS) == list(CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_verdict_follows_the_direction_of_the_effect(name):
    holds, fails = CASES[name]
    verdict = experiment.VERDICTS[name]
    assert verdict(holds, TINY[name])
    for numbers in fails:
        assert not verdict(numbers, TINY[name]), numbers


@pytest.mark.parametrize("name", REAL_TINY_RUNS)
def test_claim_direction_on_tiny_config(name, tmp_path):
    result = experiment.run_claim(name, TINY, tmp_path)
    assert result.name == name
    assert (tmp_path / result.figure).is_file()
    assert result.holds == experiment.VERDICTS[name](result.numbers, TINY[name])  # the reported verdict is it
    assert result.holds, f"{name}: {result.measurement}"


def test_report_lists_every_claim_with_verdict_and_figure(tmp_path):
    config = config_lib.get_config("tiny")
    config.claims = "batch_norm_identity,adam_bias_correction"
    text = experiment.run(config, tmp_path, log=lambda _: None)
    assert (tmp_path / "claims.md").read_text() == text
    for name in ("batch_norm_identity", "adam_bias_correction"):
        assert f"## {name}: holds" in text and f"({name}.png)" in text
    assert (tmp_path / "claims.csv").read_text().count("\n") == 3  # header + 2 rows


def test_cli_end_to_end_and_unknown_claim_exits_2(tmp_path):
    ok = test_utils.run_module(MAIN, f"--workdir={tmp_path}", "--config.claims=batch_norm_identity")
    assert ok.returncode == 0, ok.stderr
    assert "batch_norm_identity: holds" in ok.stdout and (tmp_path / "claims.md").is_file()
    # The bad line in this process (no second JAX import): the same exit status and one line.
    bad = cli_worker.run_in_process(MAIN, [f"--workdir={tmp_path}", "--config.claims=relu_vs_tanh,not_a_claim"])
    assert bad["escaped"] is None and not bad["timed_out"] and bad["code"] == 2, bad
    assert bad["stderr"].strip().count("\n") == 0 and "not_a_claim" in bad["stderr"] and "relu_vs_tanh" in bad["stderr"]
