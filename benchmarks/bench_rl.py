"""Environment steps per second of whole RL training programs: 1 agent vs K vmapped agents.

Run from the repo root::

    python -m benchmarks.bench_rl [--algorithms dqn,a2c] [--ks 1,16] [--steps 20000] [--repeats 3]

Each contender is one compiled ``jax231.rl.make_train_many`` program (gymnax
CartPole-v1 stepped, replay buffer written, networks updated, one one-episode
evaluation at the end; all inside one ``lax.scan``) that trains K agents
(seeds) for ``--steps`` environment steps each. The programs of one algorithm
are timed in alternation, round by round (medians, compilation excluded), so all
see the same load; the table reports agent-steps per second (K x steps /
seconds) and the ratio against K = 1, the number PureJaxRL is about: how much
vmapping many agents into one program buys over running one.

:func:`device_check` is the hook for a GPU run (no TensorFlow needed: gymnax
environments live on the device); ``benchmarks/gpu/run.sh`` calls it with larger K.
"""

from __future__ import annotations

import argparse
from typing import Callable, Sequence

import jax
import numpy as np

from benchmarks._timing import time_interleaved
from jax231 import optimizers, rl

AGENTS: dict[str, Callable[[rl.Env], rl.Agent]] = {
    "dqn": lambda env: rl.dqn(env, optimizers.adam(1e-3)),
    "a2c": lambda env: rl.a2c(env, optimizers.adam(7e-4)),
    "ppo": lambda env: rl.ppo(env, optimizers.adam(2.5e-3)),
}
"""The agents timed, with the experiment's default configurations."""


def make_call(agent: rl.Agent, k: int, steps: int):
    """``(compiled program, args)`` training ``k`` agents for ``steps`` env steps each."""
    program = rl.make_train_many(agent, total_steps=steps, num_evals=1, eval_episodes=1)
    keys = rl.seed_keys(np.arange(k))
    return program.lower(keys, {}).compile(), (keys, {})


def measure(
    algorithms: Sequence[str], ks: Sequence[int], steps: int, repeats: int, env_name: str = "CartPole-v1"
) -> list[dict]:
    """Rows ``{algorithm, k, seconds, steps_per_second, ratio}`` (ratio against the first K)."""
    env = rl.make_env(env_name)
    rows = []
    for name in algorithms:
        agent = AGENTS[name](env)
        calls = {k: make_call(agent, k, steps) for k in ks}
        times = time_interleaved({str(k): call for k, call in calls.items()}, repeats=repeats, warmup=1)
        base = ks[0] * steps / times[str(ks[0])]
        for k in ks:
            rate = k * steps / times[str(k)]
            rows.append(
                {"algorithm": name, "k": k, "seconds": times[str(k)], "steps_per_second": rate, "ratio": rate / base}
            )
    return rows


def print_table(rows: Sequence[dict], steps: int) -> None:
    """Prints the markdown table of :func:`measure`."""
    print(
        f"backend: {jax.default_backend()}, devices: {jax.device_count()}; {steps:,} env steps per agent, "
        "medians of interleaved rounds, compilation excluded"
    )
    print("| algorithm | agents K | s / program | env steps/s (all agents) | ratio vs K=1 |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['algorithm']} | {r['k']} | {r['seconds']:.2f} | {r['steps_per_second']:,.0f} | {r['ratio']:.1f}x |"
        )


def device_check(
    ks: Sequence[int] = (1, 16, 256, 2048),
    steps: int = 20_000,
    repeats: int = 3,
    algorithms: Sequence[str] = ("dqn", "a2c"),
) -> list[dict]:
    """The GPU hook: the same table with larger K on the default device (no TensorFlow)."""
    rows = measure(algorithms, ks, steps, repeats)
    print_table(rows, steps)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithms", default="dqn,a2c", help="comma-separated: " + ", ".join(AGENTS))
    parser.add_argument("--ks", default="1,16", help="comma-separated numbers of vmapped agents")
    parser.add_argument("--steps", type=int, default=20_000, help="env steps per agent")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds")
    args = parser.parse_args(argv)
    algorithms = [a for a in args.algorithms.split(",") if a]
    unknown = [a for a in algorithms if a not in AGENTS]
    if unknown:
        parser.error(f"--algorithms: unknown {unknown[0]!r}; valid: {', '.join(AGENTS)}")
    ks = [int(k) for k in args.ks.split(",") if k]
    print_table(measure(algorithms, ks, args.steps, args.repeats), args.steps)


if __name__ == "__main__":
    main()
