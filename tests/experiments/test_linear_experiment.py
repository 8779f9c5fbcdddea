"""Tests of experiments/linear on a tiny digits config.

References: NumPy scores ``x W + b`` of the returned parameters for the reported
accuracies, and ``W[:, c].reshape(image)`` for the templates.
"""

from __future__ import annotations

import json

import ml_collections
import numpy as np
import pytest

from experiments import _common
from experiments.linear import config as linear_config
from experiments.linear import experiment
from experiments.train import experiment as train_lib


def _tiny_config(**overrides):
    config = linear_config.get_config()
    config.dataset = "digits"
    config.val_size = 200
    config.test_size = 0
    config.ranges = ml_collections.ConfigDict(
        {
            "svm": {"learning_rate": (1e-2, 1e0), "l2": (1e-4, 1e-2)},
            "softmax": {"learning_rate": (1e-2, 1e0), "l2": (1e-4, 1e-2)},
        }
    )
    config.num_coarse, config.num_fine = 1, 1
    config.num_steps, config.batch_size, config.eval_every = 60, 64, 30
    for field, value in overrides.items():  # assignment, not update(): update() merges nested dicts
        config[field] = value
    return config


@pytest.mark.slow
def test_svm_and_softmax_search_report_the_returned_models(tmp_path):
    config = _tiny_config()
    results = experiment.run(config, tmp_path, log=lambda line: None)

    assert set(results) == {"svm", "softmax"}
    data_config = ml_collections.ConfigDict(
        {"dataset": "digits", "val_size": 200, "train_size": 0, "test_size": 0, "preprocess": "mean_image"}
    )
    splits = train_lib.build_data(data_config)
    x_val = splits.val["image"].reshape(len(splits.val["label"]), -1).astype(np.float64)
    x_test = splits.test["image"].reshape(len(splits.test["label"]), -1).astype(np.float64)
    for loss, result in results.items():
        assert len(result.trials) == 2
        assert [t.stage for t in result.trials] == ["coarse", "fine"]
        # The winner has the best validation accuracy of all finite trials.
        finite = [t.result["val_accuracy"] for t in result.trials if t.result["status"] != "diverged"]
        assert result.val_accuracy == max(finite)
        # Reported accuracies are those of the returned weights (NumPy scores x W + b).
        w = np.asarray(result.params["w"], np.float64)
        b = np.asarray(result.params["b"], np.float64)
        assert result.val_accuracy == pytest.approx(
            np.mean(np.argmax(x_val @ w + b, 1) == splits.val["label"]), abs=1e-6
        )
        assert result.test_accuracy == pytest.approx(
            np.mean(np.argmax(x_test @ w + b, 1) == splits.test["label"]), abs=1e-6
        )
        assert result.test_accuracy > 0.5  # 10 digit classes, chance 0.1; 60 SGD steps reach ~0.9
        for name in (f"trials_{loss}.md", f"trials_{loss}.csv", f"templates_{loss}.png"):
            assert (tmp_path / name).stat().st_size > 0, name
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [row["loss"] for row in rows] == ["svm", "softmax"]
    assert "| svm |" in (tmp_path / "summary.md").read_text()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"losses": ("svm", "hinge")}, "--config.losses: expected one of svm, softmax, got 'hinge'"),
        ({"num_steps": 0}, "--config.num_steps: expected an integer >= 1; got 0"),
        (
            {
                "ranges": ml_collections.ConfigDict(
                    {
                        "svm": {"learning_rate": (1e-3, 1e-1)},
                        "softmax": {"learning_rate": (1e-3, 1e-1), "l2": (1.0, 2.0)},
                    }
                )
            },
            "--config.ranges.svm: expected keys learning_rate and l2",
        ),
        (
            {
                "ranges": ml_collections.ConfigDict(
                    {
                        "svm": {"learning_rate": (-1.0, 1e-1), "l2": (1.0, 2.0)},
                        "softmax": {"learning_rate": (1e-3, 1e-1), "l2": (1.0, 2.0)},
                    }
                )
            },
            r"--config.ranges.svm.learning_rate: expected 0 < low <= high",
        ),
    ],
)
def test_bad_config_is_a_usage_error(overrides, message):
    with pytest.raises(_common.UsageError, match=message):
        experiment.validate_config(_tiny_config(**overrides))
