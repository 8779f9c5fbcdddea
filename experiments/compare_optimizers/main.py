"""Compares the optimizers of CS231n and AlgoPerf's baselines on MNIST-1D, each tuned; see config.py.

    python -m experiments.compare_optimizers.main --workdir=runs/compare_optimizers
    python -m experiments.compare_optimizers.main --workdir=runs/opt2d --mode=2d
    python -m experiments.compare_optimizers.main --workdir=runs/co --optimizers=sgd,adam \\
        --models=mlp --seeds=0 --num_steps=500 --config.tuning.grid_size=3
    python -m experiments.compare_optimizers.main --workdir=runs/co --notune --lr=adam:1e-3
"""

import pathlib
import shlex
import sys

from absl import flags

from experiments import _common as common
from experiments.compare_optimizers import algoperf, algoperf_config, experiment

_CONFIG = common.define_config_file(pathlib.Path(__file__).with_name("config.py"))
_WORKDIR = common.define_workdir("Directory for every output (created).")
_MODE = flags.DEFINE_string("mode", None, "'train' (default) or '2d' (trajectories on 2-D surfaces).")
_DATASET = flags.DEFINE_string("dataset", None, "Dataset name (default mnist1d).")
_MODELS = flags.DEFINE_string("models", None, "Comma-separated model names (default linear,mlp).")
_OPTIMIZERS = flags.DEFINE_string("optimizers", None, "Comma-separated optimizer names, or 'all'.")
_LR = flags.DEFINE_string("lr", None, "Per-optimizer learning rates, e.g. adam:1e-3,sgd:0.1.")
_TUNE = flags.DEFINE_bool(
    "tune",
    None,
    "Tune each minibatch optimizer's learning rate on a log grid (default on; --notune uses config.learning_rates).",
)
_SCHEDULE = flags.DEFINE_string("schedule", None, "constant, cosine, step or warmup_cosine.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", None, "Minibatch size of first-order methods.")
_NUM_STEPS = flags.DEFINE_integer("num_steps", None, "Updates of the first-order methods.")
_SEEDS = flags.DEFINE_string("seeds", None, "Comma-separated seeds, e.g. 0,1,2.")
_SWEEP = flags.DEFINE_bool(
    "sweep",
    None,
    "With --notune: train all seeds of each minibatch optimizer in one vmapped "
    "jax231.parallel.run_sweep program (one per learning rate with a schedule); L-BFGS keeps the loop "
    "(run_sweep has no line search). Times are amortised over the members (see sweep.py).",
)


def main(argv):
    del argv
    try:  # ml_collections defers a config file's OSError (e.g. config.py:<unknown name>) to first use
        mode = _CONFIG.value.get("mode")
    except OSError as err:
        raise common.UsageError(str(err.__cause__ or err)) from None
    if mode == algoperf_config.MODE:  # config.py:algoperf_mini
        config = experiment.apply_overrides(_CONFIG.value, sweep=_SWEEP.value)
        algoperf.validate(config)
        workdir = common.lock_workdir(_WORKDIR.value)
        print(algoperf.run(config, workdir))
        print(f"outputs in {workdir}")
        return
    config = experiment.apply_overrides(
        _CONFIG.value,
        mode=_MODE.value,
        dataset=_DATASET.value,
        models=_MODELS.value,
        optimizers=_OPTIMIZERS.value,
        lr=_LR.value,
        tune=_TUNE.value,
        schedule=_SCHEDULE.value,
        batch_size=_BATCH_SIZE.value,
        num_steps=_NUM_STEPS.value,
        seeds=_SEEDS.value,
        sweep=_SWEEP.value,
    )
    plan = experiment.validate(config)
    workdir = common.lock_workdir(_WORKDIR.value)
    command = shlex.join(["python", "-m", "experiments.compare_optimizers.main", *sys.argv[1:]])
    print(experiment.run(config, plan, workdir, command=command))
    print(f"outputs in {workdir}")


if __name__ == "__main__":
    common.run(main)
