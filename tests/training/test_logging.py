"""Logs of a run: CSV, JSON lines, TensorBoard event files, the progress bar."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest

from jax231 import training
from tests.training import toy

TRAIN, VAL, MLP, ADAM = toy.TRAIN, toy.VAL, toy.MLP, toy.ADAM  # shared objects share compilations


def test_csv_and_jsonl_hold_the_history(tmp_path):
    result = training.fit(
        MLP, ADAM, train=TRAIN, val=VAL, num_steps=20, batch_size=32, eval_every=10, workdir=str(tmp_path)
    )
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    jsonl = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [int(r["step"]) for r in rows] == [j["step"] for j in jsonl] == result.history["step"] == [10, 20]
    for key in training.HISTORY_KEYS:
        np.testing.assert_allclose([float(r[key]) for r in rows], result.history[key], rtol=1e-15)
        np.testing.assert_allclose([j[key] for j in jsonl], result.history[key], rtol=1e-15)


def test_missing_validation_is_blank_in_csv_and_null_in_json(tmp_path):
    result = training.fit(MLP, ADAM, train=TRAIN, num_steps=10, batch_size=32, eval_every=10, workdir=str(tmp_path))
    assert math.isnan(result.history["val_loss"][0]) and result.best_step == -1
    row = next(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert row["val_loss"] == ""
    assert json.loads((tmp_path / "metrics.jsonl").read_text())["val_loss"] is None


def test_tensorboard_event_files(tmp_path):
    tf = pytest.importorskip("tensorflow", reason="TensorBoard logging needs TensorFlow")
    result = training.fit(
        MLP,
        ADAM,
        train=TRAIN,
        val=VAL,
        num_steps=20,
        batch_size=32,
        eval_every=10,
        workdir=str(tmp_path),
        log_tensorboard=True,
    )
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    seen = {}
    for record in tf.data.TFRecordDataset(str(events[0])):
        event = tf.compat.v1.Event.FromString(record.numpy())
        for value in event.summary.value:
            seen.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    assert [s for s, _ in seen["val_loss"]] == [10, 20]
    np.testing.assert_allclose([v for _, v in seen["val_loss"]], result.history["val_loss"], rtol=1e-6)


def read_tensorboard(logdir):
    """Every scalar and the HParams of a run directory, read with TensorBoard's own reader."""
    tf = pytest.importorskip("tensorflow", reason="TensorBoard logging needs TensorFlow")
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator", reason="reading events needs the tensorboard package"
    )
    plugin = pytest.importorskip(
        "tensorboard.plugins.hparams.plugin_data_pb2", reason="reading HParams needs the tensorboard package"
    )
    ea = accumulator.EventAccumulator(str(logdir), size_guidance={accumulator.TENSORS: 0})
    ea.Reload()
    scalars = {
        tag: [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in ea.Tensors(tag)]
        for tag in ea.Tags()["tensors"]
        if not tag.startswith("_hparams_")
    }
    hparams = {}
    for content in ea.PluginTagToContent("hparams").values():
        data = plugin.HParamsPluginData.FromString(content)
        for name, value in data.session_start_info.hparams.items():
            hparams[name] = value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind"))
    return scalars, hparams


def test_write_tensorboard_scalars_and_hparams_read_back(tmp_path):
    history = {"step": [5, 10], "time": [0.1, 0.2], "train_loss": [1.5, float("nan")], "val_accuracy": [0.5, 0.7]}
    training.write_tensorboard(
        tmp_path / "run",
        history,
        hparams={"learning_rate": 0.1, "optimizer": "sgd"},
        metrics={"final/test_accuracy": 0.65},
    )
    scalars, hparams = read_tensorboard(tmp_path / "run")
    assert scalars["train_loss"] == [(5, 1.5)]  # the NaN is skipped
    assert [s for s, _ in scalars["val_accuracy"]] == [5, 10]
    np.testing.assert_allclose([v for _, v in scalars["val_accuracy"]], [0.5, 0.7], rtol=1e-7)
    assert scalars["final/test_accuracy"] == [(10, pytest.approx(0.65))]
    assert "time" not in scalars and hparams == {"learning_rate": pytest.approx(0.1), "optimizer": "sgd"}


def test_progress_bar_shows_step_loss_and_accuracy():
    stream = io.StringIO()
    bar = training.ProgressBar(100, stream=stream, width=10)
    bar.update(50, {"train_loss": 0.5, "train_accuracy": 0.75, "val_loss": float("nan")})
    bar.close()
    last = stream.getvalue().split("\r")[-1]
    assert last.startswith("step 50/100 [#####.....]")
    assert "loss 0.5000" in last and "acc 0.7500" in last and "val_loss" not in last


def test_fit_progress_writes_to_stderr(capsys):
    training.fit(MLP, ADAM, train=TRAIN, num_steps=10, batch_size=32, eval_every=5, progress=True)
    err = capsys.readouterr().err
    assert "step 10/10" in err and "loss" in err
