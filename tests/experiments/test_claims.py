"""Tests for experiments.claims: each claim's direction on a tiny config, the report, and bad input.

Each claim runs on ``config.get_config('tiny')`` (a few hundred examples, tens of
steps, small widths) and must reach the verdict the notes state; the full-size
measurements are in the config docstring. The tiny values were chosen so that
the effect is already visible at that size, with the seed fixed.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from experiments.claims import config as config_lib
from experiments.claims import experiment
from tests import test_utils

MAIN = "experiments.claims.main"
TINY = config_lib.get_config("tiny")


@pytest.mark.parametrize("name", list(experiment.CLAIMS))
def test_claim_direction_on_tiny_config(name, tmp_path):
    result = experiment.run_claim(name, TINY, tmp_path)
    assert result.name == name
    assert (tmp_path / result.figure).is_file()
    assert result.holds, f"{name}: {result.measurement}"


def test_report_lists_every_claim_with_verdict_and_figure(tmp_path):
    config = config_lib.get_config("tiny")
    config.claims = "batch_norm_identity,adam_bias_correction"
    text = experiment.run(config, tmp_path, log=lambda _: None)
    assert (tmp_path / "claims.md").read_text() == text
    for name in ("batch_norm_identity", "adam_bias_correction"):
        assert f"## {name}: holds" in text and f"({name}.png)" in text
    assert (tmp_path / "claims.csv").read_text().count("\n") == 3  # header + 2 rows


def _main(*args):
    env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", MAIN, *args], capture_output=True, text=True,
                          cwd=test_utils.REPO_ROOT, env=env, timeout=300)


def test_cli_end_to_end_and_unknown_claim_exits_2(tmp_path):
    ok = _main(f"--workdir={tmp_path}", "--config.claims=batch_norm_identity")
    assert ok.returncode == 0, ok.stderr
    assert "batch_norm_identity: holds" in ok.stdout and (tmp_path / "claims.md").is_file()
    bad = _main(f"--workdir={tmp_path}", "--config.claims=relu_vs_tanh,not_a_claim")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "not_a_claim" in bad.stderr and "relu_vs_tanh" in bad.stderr
