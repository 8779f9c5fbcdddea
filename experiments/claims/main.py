"""Checks the notes' empirical claims, one small experiment each; see config.py.

python -m experiments.claims.main --workdir=runs/claims
python -m experiments.claims.main --workdir=runs/claims --config.claims=relu_vs_tanh,dead_relu
"""

import pathlib

from experiments import _common as common
from experiments.claims import experiment

_CONFIG = common.define_config_file(pathlib.Path(__file__).with_name("config.py"))
_WORKDIR = common.define_workdir("Directory for claims.md and the plots (created).")


def main(argv):
    del argv
    config = _CONFIG.value
    experiment.validate(config)
    workdir = common.lock_workdir(_WORKDIR.value)
    experiment.run(config, workdir)
    print(f"report: {workdir / 'claims.md'}")


if __name__ == "__main__":
    common.run(main)
