"""End-to-end smoke tests of the segmentation, localization and detection experiments on tiny configs.

References: the reported metrics are recomputed from the written predictions' definitions
(mean IoU from the confusion matrix, COCO mAP from ``coco_map`` on the run's own detections).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments import _common
from experiments.detection import config as det_config
from experiments.detection import experiment as det_experiment
from experiments.localization import config as loc_config
from experiments.localization import experiment as loc_experiment
from experiments.segmentation import config as seg_config
from experiments.segmentation import experiment as seg_experiment
from jax231 import detection
from tests import test_utils
from tests.reliability import cli_worker


def _outputs_exist(path, names=("summary.md", "summary.csv", "results.json", "loss.png", "predictions.png")):
    for name in names:
        assert (path / name).stat().st_size > 0, name


@pytest.mark.slow
def test_detection_tiny_end_to_end(tmp_path):
    config = det_config.get_config("tiny")
    out = det_experiment.run(config, tmp_path)
    _outputs_exist(tmp_path)
    assert out.train.history["step"] == [2, 4]
    assert 0.0 <= out.coco.map <= out.coco.ap50 <= 1.0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["coco_map"] == pytest.approx(out.coco.map)
    # The same state's detections, evaluated again, give the reported figure.
    test = det_experiment.load_split(config, "test", config.test_size)
    dets = det_experiment.predict(det_experiment.build(config, 48)[0], out.train.state, test["image"], config)
    assert detection.coco_map(dets, det_experiment.ground_truths(test)).map == pytest.approx(out.coco.map)


@pytest.mark.slow
def test_two_stage_detection_tiny_end_to_end(tmp_path):
    config = det_config.get_config("two_stage_tiny")
    out = det_experiment.run(config, tmp_path)
    _outputs_exist(tmp_path)
    _outputs_exist(tmp_path, ("proposals.png",))
    history = out.train.history
    assert history["step"] == [2, 4]
    # The four terms of the multi-task loss reach fit's history and sum to the loss.
    terms = ("rpn_objectness", "rpn_box", "roi_class", "roi_box")
    np.testing.assert_allclose(np.sum([history[t] for t in terms], axis=0), history["loss"], rtol=1e-5)
    assert 0.0 <= out.coco.map <= out.coco.ap50 <= 1.0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["coco_map"] == pytest.approx(out.coco.map) and results["config"]["model"] == "two_stage"


def test_two_stage_bad_iou_threshold_is_a_usage_error_naming_the_field():
    config = det_config.get_config("two_stage_tiny")
    config.two_stage.rpn_nms_iou = 1.5
    with pytest.raises(_common.UsageError, match=r"^--config\.two_stage\.rpn_nms_iou: expected an IoU threshold"):
        det_experiment.build(config, 48)


@pytest.mark.slow
def test_segmentation_tiny_end_to_end(tmp_path):
    config = seg_config.get_config("tiny")
    out = seg_experiment.run(config, tmp_path)
    _outputs_exist(tmp_path)
    assert out.fit.status == "completed" and int(out.fit.state.step) == config.num_steps
    test = det_experiment.load_split(config, "test", config.test_size)
    model = seg_experiment.build(config)[0]
    pred = seg_experiment.predict_masks(model, out.fit.state, test["image"])
    assert out.pixel_accuracy == pytest.approx(float(np.mean(pred == test["label"])))
    assert out.mean_iou == pytest.approx(detection.mean_iou(pred, test["label"], num_classes=11)[0])
    # The loss is the pixel cross-entropy plus the weighted Dice term, both reported by fit.
    h = out.fit.history
    np.testing.assert_allclose(
        h["train_loss"],
        np.add(h["train_loss/cross_entropy"], config.dice_weight * np.asarray(h["train_loss/dice"])),
        rtol=1e-5,
    )


@pytest.mark.slow
def test_localization_tiny_end_to_end(tmp_path):
    out = loc_experiment.run(loc_config.get_config("tiny"), tmp_path)
    _outputs_exist(tmp_path)
    assert 0.0 <= out.mean_iou <= 1.0 and 0.0 <= out.accuracy <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize(
    "module,override,flag",
    [
        ("experiments.detection.main", "--config.iou_threshold=1.5", "iou_threshold"),
        ("experiments.localization.main", "--config.box_loss=l3", "box_loss"),
        ("experiments.segmentation.main", "--config.dataset=digits", "dataset"),
        ("experiments.segmentation.main", "--config.skip=max", "skip"),
    ],
)
def test_bad_config_values_exit_2_with_one_line(tmp_path, module, override, flag):
    # In this process (no JAX import per case); the real process boundary is tests/reliability/test_cli.py's.
    preset = module.split(".")[1]
    out = cli_worker.run_in_process(
        module,
        [f"--config={test_utils.REPO_ROOT}/experiments/{preset}/config.py:tiny", override, f"--workdir={tmp_path}"],
    )
    assert out["escaped"] is None and not out["timed_out"], out
    assert out["code"] == 2, out["stderr"]
    lines = out["stderr"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and flag in lines[0], out["stderr"]
