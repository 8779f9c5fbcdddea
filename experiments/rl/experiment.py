"""The rl experiment: validate the config, build the agents, run timed training programs.

Every training program is ``jax231.rl.make_train_many`` (one jitted, vmapped
program per algorithm, or per optimizer in the DQN comparison); compilation is
timed apart from the run (``lower().compile()``), so env steps per second are
those of the compiled program.
"""

from __future__ import annotations

import dataclasses
import pathlib
import statistics
import sys
import time
from typing import Any, Callable, Mapping

import jax
import ml_collections
import numpy as np

from experiments import _common as common
from experiments.rl import report
from jax231 import optimizers, rl


def _dqn(env: rl.Env, opt: optimizers.GradientTransformation, options: Mapping[str, Any]) -> rl.Agent:
    return rl.dqn(env, opt, rl.DqnConfig(**options))


def _a2c(env: rl.Env, opt: optimizers.GradientTransformation, options: Mapping[str, Any]) -> rl.Agent:
    return rl.a2c(env, opt, rl.ActorCriticConfig(**options))


def _ppo(env: rl.Env, opt: optimizers.GradientTransformation, options: Mapping[str, Any]) -> rl.Agent:
    return rl.ppo(env, opt, rl.ActorCriticConfig(**options))


def _reinforce(env: rl.Env, opt: optimizers.GradientTransformation, options: Mapping[str, Any]) -> rl.Agent:
    return rl.reinforce(env, opt, rl.ReinforceConfig(**options))


ALGORITHMS = common.Registry("algorithms", {"dqn": _dqn, "a2c": _a2c, "ppo": _ppo, "reinforce": _reinforce})
"""Algorithm name -> ``build(env, optimizer, options) -> Agent``."""


@dataclasses.dataclass(frozen=True)
class Job:
    """One training program: an agent, its seeds and the learning rates vmapped over (if any)."""

    label: str
    agent: rl.Agent
    optimizer: str
    learning_rates: tuple[float, ...]
    num_seeds: int
    swept: bool


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A job's result: ``eval_return`` etc. with axes ``(H, S, E)`` (H = 1 without a sweep)."""

    job: Job
    env_steps: np.ndarray
    eval_return: np.ndarray
    train_return: np.ndarray
    compile_seconds: float
    run_seconds: float

    @property
    def agent_steps_per_second(self) -> float:
        """Environment steps of all agents of the program per second of run time."""
        agents = len(self.job.learning_rates) * self.job.num_seeds
        return agents * float(self.env_steps[-1]) / self.run_seconds


def _build(name: str, env: rl.Env, optimizer: str, lr: float, options: Mapping[str, Any]) -> rl.Agent:
    opt = common.optimizer_registry("optimizer").get(optimizer, learning_rate=lr)
    return ALGORITHMS.get(name, env=env, opt=opt, options=dict(options))


def plan(config: ml_collections.ConfigDict) -> list[Job]:
    """Validates ``config`` and builds every job, before anything trains.

    Raises:
      common.UsageError: one line naming the field, for any bad value (an unknown
        environment lists the valid names).
    """
    try:
        env = rl.make_env(config.env_name)
        jobs = []
        names = ALGORITHMS.parse(config.algorithms) if config.algorithms or not config.compare_optimizers else ()
        for name in names:
            lr, opt = float(config.learning_rates[name]), str(config.optimizers[name])
            agent = _build(name, env, opt, lr, config[name])
            rl.schedule_lengths(agent, config.total_steps, config.num_evals)
            rl.schedule_lengths(agent, config.throughput_steps, 1)
            jobs.append(Job(name, agent, opt, (lr,), int(config.num_seeds), swept=False))
        compare = (
            common.optimizer_registry("compare_optimizers").parse(config.compare_optimizers)
            if config.compare_optimizers
            else ()
        )
        for opt in compare:
            lrs = tuple(float(x) for x in config.compare_learning_rates[opt])
            if not lrs:
                raise common.UsageError(f"--config.compare_learning_rates.{opt}: expected learning rates, got ()")
            agent = _build("dqn", env, opt, lrs[0], config.dqn)
            jobs.append(Job(f"dqn/{opt}", agent, opt, lrs, int(config.compare_seeds), swept=True))
        for field in ("num_seeds", "compare_seeds", "eval_episodes", "throughput_steps", "throughput_rounds"):
            if int(config[field]) < 1:
                raise common.UsageError(f"--config.{field}: expected an integer >= 1, got {config[field]}")
    except (KeyError, AttributeError) as err:
        raise common.UsageError(f"--config: missing field {err}") from None
    except ValueError as err:
        if isinstance(err, common.UsageError):
            raise
        raise common.UsageError(str(err)) from None
    return jobs


def reused_from(job: Job, jobs: list[Job]) -> Job | None:
    """The main DQN job whose result ``job`` can reuse (same optimizer, single same lr, same seeds)."""
    if not job.swept:
        return None
    for other in jobs:
        if (
            other.label == "dqn"
            and other.optimizer == job.optimizer
            and other.learning_rates == job.learning_rates
            and other.num_seeds == job.num_seeds
        ):
            return other
    return None


class ProgressBar:
    """Prints ``label [#####.....] k/n evaluations`` once per new evaluation index (vmap-safe)."""

    def __init__(self, label: str, total: int, *, enabled: bool) -> None:
        self.label, self.total, self.enabled, self.seen = label, total, enabled, -1

    def __call__(self, index: Any) -> None:
        index = int(np.max(np.asarray(index)))
        if not self.enabled or index <= self.seen:
            return
        self.seen = index
        done = index + 1
        bar = "#" * (20 * done // self.total)
        end = "\n" if done == self.total else ""
        print(f"\r{self.label:<14} [{bar:<20}] {done}/{self.total} evaluations", end=end, file=sys.stderr, flush=True)


def _program(job: Job, config: ml_collections.ConfigDict, throughput_seeds: int | None):
    """``(compiled program, keys, values, compile seconds, num_seeds)`` of a job (or of its throughput run)."""
    timing = throughput_seeds is not None
    num_seeds = throughput_seeds if timing else job.num_seeds
    num_evals = 1 if timing else int(config.num_evals)
    bar = ProgressBar(job.label, num_evals, enabled=bool(config.progress) and not timing)
    program = rl.make_train_many(
        job.agent,
        total_steps=int(config.throughput_steps if timing else config.total_steps),
        num_evals=num_evals,
        eval_episodes=1 if timing else int(config.eval_episodes),
        swept=job.swept,
        on_evaluation=bar,
    )
    keys = rl.seed_keys(np.arange(num_seeds))
    values = rl.check_hyperparams({"learning_rate": job.learning_rates}) if job.swept else {}
    start = time.perf_counter()
    compiled = program.lower(keys, values).compile()
    return compiled, keys, values, time.perf_counter() - start, num_seeds


def _timed(compiled, keys, values) -> tuple[Any, float]:
    start = time.perf_counter()
    result = jax.block_until_ready(compiled(keys, values))
    return result, time.perf_counter() - start


def _outcome(job: Job, num_seeds: int, result: rl.TrainResult, compile_seconds: float, run_seconds: float) -> Outcome:
    expand = (lambda x: np.asarray(x)) if job.swept else (lambda x: np.asarray(x)[None])
    return Outcome(
        dataclasses.replace(job, num_seeds=num_seeds),
        np.asarray(result.env_steps).reshape(-1, result.env_steps.shape[-1])[0],
        expand(result.eval_return),
        expand(result.train_return),
        compile_seconds,
        run_seconds,
    )


def run_job(job: Job, config: ml_collections.ConfigDict) -> Outcome:
    """Compiles and runs one job's program; times both."""
    compiled, keys, values, compile_seconds, num_seeds = _program(job, config, None)
    result, seconds = _timed(compiled, keys, values)
    return _outcome(job, num_seeds, result, compile_seconds, seconds)


def run_throughput(job: Job, config: ml_collections.ConfigDict) -> tuple[Outcome, Outcome]:
    """The job's agent as 1 and as ``job.num_seeds`` vmapped agents, ``config.throughput_steps`` each.

    Both programs are compiled first, run once untimed, then timed in alternation for
    ``config.throughput_rounds`` rounds (medians), so that both see the same load on a shared machine.
    """
    programs = [_program(job, config, seeds) for seeds in (1, job.num_seeds)]
    times: list[list[float]] = [[], []]
    results = [None, None]
    for r in range(1 + int(config.throughput_rounds)):  # round 0 is an untimed warm-up (first-call costs)
        for i, (compiled, keys, values, _, _) in enumerate(programs):
            results[i], seconds = _timed(compiled, keys, values)
            if r > 0:
                times[i].append(seconds)
    one, many = (_outcome(job, p[4], r, p[3], statistics.median(t)) for p, r, t in zip(programs, results, times))
    return one, many


def run(
    config: ml_collections.ConfigDict, jobs: list[Job], workdir: pathlib.Path, log: Callable[[str], None] = print
) -> list[str]:
    """Trains every job, measures one-agent throughput, writes the report; returns the summary lines."""
    outcomes: dict[str, Outcome] = {}
    throughput: dict[str, tuple[Outcome, Outcome]] = {}
    for job in jobs:
        source = reused_from(job, jobs)
        if source is not None:
            outcomes[job.label] = dataclasses.replace(outcomes[source.label], job=job)
            log(f"{job.label}: reusing the {source.label} run (same optimizer, learning rate and seeds)")
            continue
        outcome = run_job(job, config)
        outcomes[job.label] = outcome
        log(
            f"{job.label}: {len(job.learning_rates) * job.num_seeds} agents x {int(outcome.env_steps[-1]):,} steps "
            f"in {outcome.run_seconds:.1f} s (+{outcome.compile_seconds:.1f} s compile)"
        )
        if not job.swept:
            throughput[job.label] = run_throughput(job, config)
        report.write_report(workdir, config, outcomes, throughput)  # after every job: partial results survive
    return report.write_report(workdir, config, outcomes, throughput)
