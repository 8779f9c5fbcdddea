"""End-to-end smoke test of experiments/features on scikit-learn digits, and its bad input."""

from __future__ import annotations

import json

import pytest

from experiments.features import config as features_config
from experiments.features import experiment
from tests import test_utils
from tests.reliability import cli_worker


@pytest.mark.slow
def test_tiny_run_writes_tables_and_beats_chance(tmp_path):
    config = features_config.get_config("tiny")
    result = experiment.run(config, tmp_path)
    for name in ("features.md", "features.csv", "results.json", "curves.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert result.num_features == 2 * 2 * 9  # 8x8 digits, 4x4 cells, 1x1 blocks, 9 bins; no hue for grey
    assert {row["model"] for row in result.rows} == {"linear SVM", "two-layer net"}
    # 60 SGD steps of an SVM on HOG of digits: well above the 10% of chance.
    assert result.best["linear SVM"]["val_accuracy"] > 0.4
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["best"]["linear SVM"]["test_accuracy"] == pytest.approx(result.best["linear SVM"]["test_accuracy"])


def test_absent_cifar_copy_is_skipped_with_a_message(tmp_path, monkeypatch):
    monkeypatch.setenv("JAX231_CIFAR10_ARCHIVE", str(tmp_path / "absent.tar.gz"))
    monkeypatch.setenv("JAX231_DATA_DIR", str(tmp_path / "cache"))
    result = experiment.run(features_config.get_config(), tmp_path)
    assert result.skipped and "absent" in result.skipped and not result.rows


@pytest.mark.parametrize(
    "override, message",
    [
        ("--config.pixels_per_cell=3", "--config.pixels_per_cell: expected a size dividing the image"),
        ("--config.block_norm=L3", "--config.block_norm: expected one of"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path, override, message):
    # In this process (no JAX import per case); tests/reliability/test_cli.py keeps real-process exits.
    out = cli_worker.run_in_process(
        "experiments.features.main",
        [f"--workdir={tmp_path}", f"--config={test_utils.REPO_ROOT}/experiments/features/config.py:tiny", override],
    )
    assert out["escaped"] is None and not out["timed_out"], out
    assert out["code"] == 2, out["stderr"]
    lines = out["stderr"].strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out["stderr"]
