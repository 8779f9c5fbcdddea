"""End-to-end smoke test of the captioning experiment on its tiny config, and its bad-input exit code.

Reference: the reported greedy exact match and BLEU-4 are recomputed from the run's own
parameters with the library metrics.
"""

from __future__ import annotations

import json

import pytest

from experiments.captioning import config as cap_config
from experiments.captioning import experiment as cap_experiment
from jax231 import captioning, pipelines
from tests import test_utils
from tests.reliability import cli_worker


@pytest.mark.slow
def test_captioning_tiny_end_to_end(tmp_path):
    config = cap_config.get_config("tiny")
    out = cap_experiment.run(config, tmp_path)
    for name in ("summary.md", "summary.csv", "errors.md", "results.json", "loss.png", "captions.png", "attention.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert [(r["decoder"], r["decoding"]) for r in out.rows] == [
        (d, m) for d in ("plain", "attention") for m in ("greedy", "T=1")
    ]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["rows"][0]["bleu4"] == pytest.approx(out.rows[0]["bleu4"])
    _, test = cap_experiment.load_data(config)
    model = cap_experiment.build(config, "plain")
    tokens, _ = cap_experiment.generate(model, out.params["plain"], test["image"], temperature=None, seed=0)
    hyps = [pipelines.decode_caption(t).split() for t in tokens]
    refs = [pipelines.decode_caption(c).split() for c in test["caption"]]
    assert captioning.exact_match(hyps, refs) == pytest.approx(out.rows[0]["exact_match"])
    assert captioning.corpus_bleu([[r] for r in refs], hyps) == pytest.approx(out.rows[0]["bleu4"])
    # The error breakdown's 'all' row is the same greedy exact match; its rows cover every test canvas.
    errors = results["errors"]["plain"]
    assert errors[-1]["digits"] == "all" and errors[-1]["exact_match"] == pytest.approx(out.rows[0]["exact_match"])
    assert sum(row["canvases"] for row in errors[:-1]) == len(test["image"]) == errors[-1]["canvases"]


@pytest.mark.parametrize(
    "override,flag", [("--config.temperatures=(0.0,)", "temperatures"), ("--config.hidden_dim=0", "hidden_dim")]
)
def test_captioning_bad_config_exits_2(tmp_path, override, flag):
    # In this process (no JAX import per case); the real process boundary is tests/reliability/test_cli.py's.
    out = cli_worker.run_in_process(
        "experiments.captioning.main",
        [f"--config={test_utils.REPO_ROOT}/experiments/captioning/config.py:tiny", override, f"--workdir={tmp_path}"],
    )
    assert out["escaped"] is None and not out["timed_out"], out
    assert out["code"] == 2, out["stderr"]
    lines = out["stderr"].strip().splitlines()
    assert (
        len(lines) == 1 and "Traceback" not in out["stderr"] and f"--config.{flag}" in lines[0]
    )  # e.g. '--config.temperatures[0]: ...'
