"""Smoke test of experiments/multihost on a tiny config, in one process."""

from __future__ import annotations

import json

import numpy as np

from experiments.multihost import experiment


def test_multihost_experiment_single_process_smoke(tmp_path):
    results = experiment.run(workdir=str(tmp_path), num_steps=3, global_batch=16, hidden_sizes=(8,))
    assert results["process_count"] == 1 and results["num_steps"] == 3
    assert np.isfinite(results["test_loss"]) and 0.0 <= results["test_accuracy"] <= 1.0
    assert json.loads((tmp_path / "results.json").read_text()) == results
    with np.load(tmp_path / "params.npz") as params:
        assert params["['dense_0']['w']"].shape == (40, 8)
