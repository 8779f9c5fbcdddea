"""End-to-end and unit tests of experiments/knn against scikit-learn."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from experiments import _common
from experiments.knn import config as knn_config
from experiments.knn import experiment
from jax231 import pipelines
from tests.reliability import cli_worker


def _tiny_config(**overrides):
    config = knn_config.get_config()
    config.dataset = "mnist1d"
    config.num_train = 300
    config.num_test = 60
    config.num_folds = 3
    config.ks = (1, 3, 7)
    config.update(overrides)
    return config


@pytest.mark.slow
def test_run_matches_sklearn_and_writes_outputs(tmp_path):
    config = _tiny_config()
    result = experiment.run(config, tmp_path)

    for name in ("accuracy_vs_k.png", "cv_accuracy.csv", "results.json", "report.md"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert set(result.cv_accuracy) == {"l1", "l2"}
    for accuracies in result.cv_accuracy.values():
        assert accuracies.shape == (3, 3)

    # Reference: scikit-learn on the same contiguous folds (np.array_split, as the course).
    # MNIST-1D signals are real-valued, so there are no distance ties and predictions
    # must agree exactly: fold accuracies are compared to float32 rounding (1e-6).
    train = pipelines.load_arrays("mnist1d", "train")
    test = pipelines.load_arrays("mnist1d", "test")
    x = train["image"][:300].reshape(300, -1).astype(np.float64)
    y = train["label"][:300]
    folds = np.array_split(np.arange(300), 3)
    for metric, sk_metric in (("l1", "manhattan"), ("l2", "euclidean")):
        for i, k in enumerate(config.ks):
            for f, fold in enumerate(folds):
                rest = np.setdiff1d(np.arange(300), fold)
                clf = KNeighborsClassifier(n_neighbors=k, metric=sk_metric, algorithm="brute").fit(x[rest], y[rest])
                expected = np.mean(clf.predict(x[fold]) == y[fold])
                np.testing.assert_allclose(result.cv_accuracy[metric][i, f], expected, atol=1e-6)

    # The choice maximises the mean CV accuracy, and the test accuracy is sklearn's at that choice.
    means = {m: a.mean(axis=1) for m, a in result.cv_accuracy.items()}
    assert result.best_cv_accuracy == pytest.approx(max(v.max() for v in means.values()), abs=1e-6)
    sk_metric = {"l1": "manhattan", "l2": "euclidean"}[result.best_metric]
    clf = KNeighborsClassifier(n_neighbors=result.best_k, metric=sk_metric, algorithm="brute").fit(x, y)
    x_test = test["image"][:60].reshape(60, -1).astype(np.float64)
    assert result.test_accuracy == pytest.approx(np.mean(clf.predict(x_test) == test["label"][:60]), abs=1e-6)

    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["best_k"] == result.best_k and saved["best_metric"] == result.best_metric


@pytest.mark.parametrize(
    "cv, expected",
    [
        # (metric -> fold accuracies per k) for ks = (1, 3, 5); expected (metric, k, mean)
        ({"l1": [[0.5, 0.5], [0.7, 0.7], [0.6, 0.6]], "l2": [[0.6, 0.6], [0.6, 0.6], [0.6, 0.6]]}, ("l1", 3, 0.7)),
        # A tie between k=3 and k=5 goes to the smaller k.
        ({"l1": [[0.1, 0.1], [0.8, 0.6], [0.6, 0.8]]}, ("l1", 3, 0.7)),
        # A tie between metrics goes to the first metric listed.
        ({"l2": [[0.9, 0.9], [0.1, 0.1], [0.1, 0.1]], "l1": [[0.9, 0.9], [0.1, 0.1], [0.1, 0.1]]}, ("l2", 1, 0.9)),
    ],
)
def test_best_choice(cv, expected):
    metric, k, mean = experiment.best_choice((1, 3, 5), {m: np.asarray(v) for m, v in cv.items()})
    assert (metric, k) == expected[:2]
    assert mean == pytest.approx(expected[2])


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("metrics", ("l3",), "--config.metrics: expected one of l1, l2, got 'l3'"),
        ("num_folds", 1, "--config.num_folds: expected an integer >= 2, got 1"),
        ("ks", (0, 3), "--config.ks: expected positive integers"),
        ("dataset", "imagenette_nope", "--config.dataset: expected one of mnist1d, .*, got 'imagenette_nope'"),
    ],
)
def test_bad_config_raises_usage_error(field, value, message):
    with pytest.raises(_common.UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        experiment.validate_config(_tiny_config(**{field: value}))


def test_k_larger_than_a_fold_split_is_a_usage_error(tmp_path):
    with pytest.raises(_common.UsageError, match="--config.ks: largest k must be <= the 200"):
        experiment.run(_tiny_config(ks=(1, 201)), tmp_path)


@pytest.mark.slow
def test_main_unknown_dataset_exits_2_with_one_line(tmp_path):
    # In this process (no JAX import); tests/reliability/test_cli.py keeps a real-process knn exit.
    out = cli_worker.run_in_process("experiments.knn.main", [f"--workdir={tmp_path}", "--config.dataset=nope"])
    assert out["escaped"] is None and not out["timed_out"], out
    assert out["code"] == 2, out["stderr"]
    lines = [line for line in out["stderr"].splitlines() if line.strip()]
    assert len(lines) == 1, out["stderr"]
    assert lines[0].startswith("error: --config.dataset: expected one of mnist1d, digits, cifar10_shared")
