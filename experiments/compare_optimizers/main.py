"""Compares the optimizers of CS231n (SGD ... Adam, L-BFGS) on MNIST-1D; see config.py.

    python -m experiments.compare_optimizers.main --workdir=runs/compare_optimizers
    python -m experiments.compare_optimizers.main --workdir=runs/opt2d --mode=2d
    python -m experiments.compare_optimizers.main --workdir=runs/co --optimizers=sgd,adam \\
        --models=mlp --lr=adam:1e-3 --seeds=0 --num_steps=500 --config.batch_size=64
"""

import pathlib

from absl import flags

from experiments import _common as common
from experiments.compare_optimizers import experiment

_CONFIG = common.define_config_file(pathlib.Path(__file__).with_name("config.py"))
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for every output (created).")
_MODE = flags.DEFINE_string("mode", None, "'train' (default) or '2d' (trajectories on 2-D surfaces).")
_DATASET = flags.DEFINE_string("dataset", None, "Dataset name (default mnist1d).")
_MODELS = flags.DEFINE_string("models", None, "Comma-separated model names (default linear,mlp).")
_OPTIMIZERS = flags.DEFINE_string("optimizers", None, "Comma-separated optimizer names, or 'all'.")
_LR = flags.DEFINE_string("lr", None, "Per-optimizer learning rates, e.g. adam:1e-3,sgd:0.1.")
_LR_SEARCH = flags.DEFINE_integer("lr_search", None, "Log-uniform learning rates tried per optimizer.")
_SCHEDULE = flags.DEFINE_string("schedule", None, "constant, cosine, step or warmup_cosine.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", None, "Minibatch size of first-order methods.")
_NUM_STEPS = flags.DEFINE_integer("num_steps", None, "Updates of the first-order methods.")
_SEEDS = flags.DEFINE_string("seeds", None, "Comma-separated seeds, e.g. 0,1,2.")
_SWEEP = flags.DEFINE_bool(
    "sweep", None, "Train all seeds and learning rates of each minibatch optimizer in one vmapped "
    "jax231.parallel.run_sweep program (one per learning rate with a schedule); L-BFGS keeps the loop "
    "(run_sweep has no line search). Times are amortised over the members (see sweep.py).")


def main(argv):
    del argv
    config = experiment.apply_overrides(
        _CONFIG.value, mode=_MODE.value, dataset=_DATASET.value, models=_MODELS.value,
        optimizers=_OPTIMIZERS.value, lr=_LR.value, lr_search=_LR_SEARCH.value,
        schedule=_SCHEDULE.value, batch_size=_BATCH_SIZE.value, num_steps=_NUM_STEPS.value,
        seeds=_SEEDS.value, sweep=_SWEEP.value)
    plan = experiment.validate(config)
    workdir = common.lock_workdir(_WORKDIR.value)
    print(experiment.run(config, plan, workdir))
    print(f"outputs in {workdir}")


if __name__ == "__main__":
    common.run(main)
