"""Visualising and understanding the project's own CNNs (saliency, fooling, style transfer, ...); see config.py.

Example::

    python -m experiments.visualize.main --workdir=/tmp/visualize
"""

from __future__ import annotations

import pathlib

from absl import flags

from experiments import _common
from experiments.visualize import experiment

_CONFIG = _common.define_config_file(
    pathlib.Path(__file__).with_name("config.py"), help_string="Visualize configuration (config.py or config.py:tiny)."
)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Directory for the PNG grids, fooling.md/.csv, results.json, report.md."
)


def main(argv) -> None:
    del argv
    config = _CONFIG.value
    experiment.validate_config(config)
    workdir = _common.lock_workdir(_WORKDIR.value)
    result = experiment.run(config, workdir)
    for name, res in result.results.items():
        if res.skipped:
            print(f"{name}: skipped: {res.skipped}")
            continue
        fooling = res.attacks[0]
        print(
            f"{name}: test_accuracy={res.test_accuracy:.4f} fooling_success={fooling['success_rate']:.3f} "
            f"fooling_mean_linf={fooling['mean_linf']:.4f} pngs={len(res.files)}"
        )
    print(f"seconds={result.seconds:.1f} workdir={workdir}")


if __name__ == "__main__":
    _common.run(main)
