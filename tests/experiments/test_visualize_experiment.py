"""End-to-end smoke test of experiments/visualize on digits (tiny config), and its bad input."""

from __future__ import annotations

import json

import pytest

from experiments.visualize import config as visualize_config
from experiments.visualize import experiment
from tests import test_utils
from tests.reliability import cli_worker

PNGS = (
    "filters.png",
    "saliency.png",
    "fooling.png",
    "fgsm.png",
    "class_visualization.png",
    "occlusion.png",
    "tsne.png",
    "style_transfer.png",
    "deepdream.png",
)


@pytest.mark.slow
def test_tiny_run_draws_every_grid_and_fools_the_digits_cnn(tmp_path):
    result = experiment.run(visualize_config.get_config("tiny"), tmp_path)
    digits = result.results["digits"]
    for name in PNGS:
        assert (tmp_path / "digits" / name).stat().st_size > 0, name
    assert tuple(digits.files) == PNGS
    assert digits.test_accuracy > 0.5  # 150 steps on digits; chance is 0.1
    fooling = digits.attacks[0]
    assert fooling["attack"].startswith("fooling") and fooling["attempts"] == 20
    # The target (>= 95% of attempts reach the target class), with the perturbation reported.
    assert fooling["success_rate"] >= 0.95 and 0 < fooling["mean_linf"] <= 1
    fgsm = [row for row in digits.attacks if row["attack"].startswith("FGSM")]
    assert [row["mean_linf"] for row in fgsm] == pytest.approx([0.004, 0.016, 0.063], abs=1e-6)
    assert all(ratio < 1 for ratio in digits.style_loss_ratio)  # style transfer lowered its loss
    report = (tmp_path / "report.md").read_text()
    assert (
        experiment.CAVEAT in report
        and "| fooling (iterated, targeted, log_prob) |" in (tmp_path / "fooling.md").read_text()
    )
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["digits"]["attacks"][0]["success_rate"] == pytest.approx(fooling["success_rate"])


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "--config.fooling_target=10",
            "error: --config.fooling_target: targets: expected class indices in [0, 10), got 10..10",
        ),
        (
            "--config.fooling_objective=hinge",
            "error: --config.fooling_objective: expected one of ('score', 'log_prob', 'margin'), got 'hinge'",
        ),
        (
            "--config.per_dataset.digits.style_size=10",
            (
                "error: --config.per_dataset.digits.style_size: images: expected (N, H, W, 1) with H and W divisible by 4, "
                "got shape (1, 10, 10, 1)"
            ),
        ),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path, override, message):
    # In this process (no JAX import per case): the exit status and the one stderr line are the
    # contract; the real process boundary is tests/reliability/test_cli.py's.
    out = cli_worker.run_in_process(
        "experiments.visualize.main",
        [f"--workdir={tmp_path}", f"--config={test_utils.REPO_ROOT}/experiments/visualize/config.py:tiny", override],
    )
    assert out["escaped"] is None and not out["timed_out"], out
    assert out["code"] == 2, out["stderr"]
    assert out["stderr"].strip().splitlines() == [message]
