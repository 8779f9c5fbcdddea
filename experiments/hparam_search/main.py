"""Coarse-to-fine random hyperparameter search that aborts exploding trials; see config.py."""

from __future__ import annotations

import pathlib

from absl import flags
from ml_collections import config_flags

from experiments import _common
from experiments.hparam_search import experiment
from experiments.hparam_search import search

_CONFIG = config_flags.DEFINE_config_file(
    "config", str(pathlib.Path(__file__).with_name("config.py")), "Search configuration.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for trials.md/.csv, trials.png and results.json.")
_SWEEP = flags.DEFINE_bool("sweep", None, "Run each stage (coarse, fine) as one vmapped jax231.parallel.run_sweep "
                           "over its points (same as --config.sweep).")


def main(argv) -> None:
    del argv
    config = _CONFIG.value
    if _SWEEP.value is not None:
        config.sweep = _SWEEP.value
    experiment.validate_config(config)
    workdir = _common.check_workdir(_WORKDIR.value)
    trials = experiment.run(config, workdir)
    best = search.rank(trials)[0]
    shown = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.hparams.items())
    diverged = sum(t.result["status"] == "diverged" for t in trials)
    print(f"best: {shown} val_accuracy={best.result['val_accuracy']:.4f} "
          f"({len(trials)} trials, {diverged} diverged) workdir={workdir}")


if __name__ == "__main__":
    _common.run(main)
