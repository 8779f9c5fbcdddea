"""Learning-rate range test: loss against an exponentially growing learning rate; see config.py."""

from __future__ import annotations

import pathlib

from experiments import _common
from experiments.lr_find import experiment

_CONFIG = _common.define_config_file(
    pathlib.Path(__file__).with_name("config.py"), help_string="Range-test configuration."
)
_WORKDIR = _common.define_workdir("Directory for lr_find.png, lr_find.csv and results.json.")


def main(argv) -> None:
    del argv
    config = _CONFIG.value
    experiment.validate_config(config)  # a one-line UsageError naming the field
    workdir = _common.lock_workdir(_WORKDIR.value)
    result = experiment.run(config, workdir)
    exploded = "never" if result.exploded_at is None else f"{result.exploded_at:.3g}"
    print(
        f"steps={len(result.losses)} exploded_at={exploded} min_loss_lr={result.min_loss_lr:.3g} "
        f"steepest_lr={result.steepest_lr:.3g} suggested_lr={result.suggested_lr:.3g} workdir={workdir}"
    )


if __name__ == "__main__":
    _common.run(main)
