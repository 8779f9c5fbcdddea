"""Deep RL on gymnax (DQN, A2C, PPO, REINFORCE), many seeds per jitted program; see config.py.

python -m experiments.rl.main --workdir=runs/rl
python -m experiments.rl.main --workdir=runs/rl_tiny --config=experiments/rl/config.py:tiny
python -m experiments.rl.main --workdir=runs/rl_dqn --algorithms=dqn --seeds=4 --total_steps=50000
"""

import pathlib

from absl import flags

from experiments import _common as common
from experiments.rl import experiment

_CONFIG = common.define_config_file(pathlib.Path(__file__).with_name("config.py"))
_WORKDIR = common.define_workdir("Directory for every output (created).")
_OVERRIDES = {
    "algorithms": flags.DEFINE_string("algorithms", None, "Comma-separated: dqn, a2c, ppo, reinforce."),
    "env_name": flags.DEFINE_string("env", None, "gymnax environment name (jax231.rl.ENV_NAMES)."),
    "num_seeds": flags.DEFINE_integer("seeds", None, "Seeds per algorithm (one vmapped program)."),
    "total_steps": flags.DEFINE_integer("total_steps", None, "Environment steps per agent."),
}


def main(argv):
    del argv
    config = _CONFIG.value
    for field, flag in _OVERRIDES.items():
        if flag.value is not None:
            config[field] = flag.value
    jobs = experiment.plan(config)
    workdir = common.lock_workdir(_WORKDIR.value)
    for line in experiment.run(config, jobs, workdir):
        print(line)


if __name__ == "__main__":
    common.run(main)
