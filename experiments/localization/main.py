r"""Classification + localization of one digit: softmax + box regression, box mean IoU, accuracy.

Example::

    python -m experiments.localization.main --workdir=/tmp/localization

Writes ``summary.md``/``.csv``, ``results.json``, ``loss.png`` and ``predictions.png``.
"""

from __future__ import annotations

import pathlib

from experiments import _common
from experiments.localization import experiment

_CONFIG = _common.define_config_file(pathlib.Path(__file__).with_name("config.py"))
_WORKDIR = _common.define_workdir("Directory for the tables, results.json and the PNGs.")


def main(argv) -> None:
    del argv
    workdir = _common.lock_workdir(_WORKDIR.value)
    out = experiment.run(_CONFIG.value, workdir)
    print(f"seconds={out.seconds:.1f} workdir={workdir}")
    print(f"box mean IoU: {out.mean_iou:.4f}, class accuracy: {out.accuracy:.4f}")


if __name__ == "__main__":
    _common.run(main)
