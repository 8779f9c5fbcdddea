r"""Digit detection, single-stage (YOLO-style) or two-stage (RPN + RoI align), with NMS and COCO/VOC mAP.

Example::

    python -m experiments.detection.main --workdir=/tmp/detection
    python -m experiments.detection.main --config=experiments/detection/config.py:two_stage --workdir=/tmp/two_stage

Ends by printing ``COCO mAP@[.5:.95]: 0.xx, AP@0.5: 0.xx``; writes ``summary.md``/``.csv``,
``results.json``, ``loss.png`` and ``predictions.png`` (boxes drawn on test images); the two-stage
model also ``proposals.png`` (its region proposals).
"""

from __future__ import annotations

import pathlib

from experiments import _common
from experiments.detection import experiment

_CONFIG = _common.define_config_file(pathlib.Path(__file__).with_name("config.py"))
_WORKDIR = _common.define_workdir("Directory for the tables, results.json and the PNGs.")


def main(argv) -> None:
    del argv
    workdir = _common.lock_workdir(_WORKDIR.value)
    out = experiment.run(_CONFIG.value, workdir)
    print(f"seconds={out.seconds:.1f} workdir={workdir}")
    print(f"COCO mAP@[.5:.95]: {out.coco.map:.2f}, AP@0.5: {out.coco.ap50:.2f}")


if __name__ == "__main__":
    _common.run(main)
