r"""Semantic segmentation of digit canvases with a U-Net; mean IoU and pixel accuracy.

Example::

    python -m experiments.segmentation.main --workdir=/tmp/segmentation

Writes ``summary.md``/``.csv`` (per-class IoU), ``results.json``, ``loss.png`` and
``predictions.png`` (true and predicted masks drawn over test images).
"""

from __future__ import annotations

import pathlib

from experiments import _common
from experiments.segmentation import experiment

_CONFIG = _common.define_config_file(pathlib.Path(__file__).with_name("config.py"))
_WORKDIR = _common.define_workdir("Directory for the tables, results.json and the PNGs.")


def main(argv) -> None:
    del argv
    workdir = _common.lock_workdir(_WORKDIR.value)
    out = experiment.run(_CONFIG.value, workdir)
    print(f"seconds={out.seconds:.1f} workdir={workdir}")
    print(f"mean IoU: {out.mean_iou:.4f}, pixel accuracy: {out.pixel_accuracy:.4f}")


if __name__ == "__main__":
    _common.run(main)
