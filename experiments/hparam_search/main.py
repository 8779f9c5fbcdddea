"""Coarse-to-fine random hyperparameter search that aborts exploding trials; see config.py."""

from __future__ import annotations

import pathlib

from experiments import _common
from experiments.hparam_search import experiment, search

_CONFIG = _common.define_config_file(pathlib.Path(__file__).with_name("config.py"), help_string="Search configuration.")
_WORKDIR = _common.define_workdir("Directory for trials.md/.csv, trials.png and results.json.")
_SHORTCUTS = _common.Shortcuts(
    {
        "sweep": ("sweep", "bool", "Run each stage (coarse, fine) as one vmapped jax231.parallel.run_sweep"),
    }
)


def main(argv) -> None:
    del argv
    config = _SHORTCUTS.apply(_CONFIG.value)
    experiment.validate_config(config)  # a one-line UsageError naming the field
    workdir = _common.lock_workdir(_WORKDIR.value)
    trials = experiment.run(config, workdir)
    best = search.rank(trials)[0]
    shown = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.hparams.items())
    diverged = sum(t.result["status"] == "diverged" for t in trials)
    print(
        f"best: {shown} val_accuracy={best.result['val_accuracy']:.4f} "
        f"({len(trials)} trials, {diverged} diverged) workdir={workdir}"
    )


if __name__ == "__main__":
    _common.run(main)
