r"""CIFAR-10 speedrun with the airbench recipe; see config.py for the presets and measured results.

Example::

    python -m experiments.speedrun.main --config=experiments/speedrun/config.py:tiny --workdir=/tmp/speedrun
"""

from __future__ import annotations

import pathlib

from experiments import _common
from experiments.speedrun import experiment

_CONFIG = _common.define_config_file(
    pathlib.Path(__file__).with_name("config.py"), help_string="Speedrun configuration (config.py:<preset>)."
)
_WORKDIR = _common.define_workdir("Directory for runs.md/csv, tta.md/csv, curves.png, tta.png, results.json.")


def main(argv) -> None:
    del argv
    config = experiment.validate(_CONFIG.value)
    workdir = _common.lock_workdir(_WORKDIR.value)
    result = experiment.run(config, workdir)
    print(result.summary)


if __name__ == "__main__":
    _common.run(main)
