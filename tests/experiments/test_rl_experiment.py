"""experiments.rl end to end on the tiny preset, bad input (one line, exit 2), report logic."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from experiments.rl import report
from tests import test_utils
from tests.reliability import cli_worker

MAIN = "experiments.rl.main"
TINY = f"--config={test_utils.REPO_ROOT}/experiments/rl/config.py:tiny"


def test_main_end_to_end_tiny(tmp_path):
    proc = test_utils.run_module(MAIN, f"--workdir={tmp_path}", TINY, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in (
        "returns.md",
        "returns.csv",
        "throughput.md",
        "throughput.csv",
        "dqn_optimizers.md",
        "dqn_optimizers.csv",
        "curves_eval_return.png",
        "curves_train_return.png",
        "dqn_optimizers.png",
        "results.json",
    ):
        assert (tmp_path / name).stat().st_size > 0, name
    with (tmp_path / "returns.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["algorithm"] for r in rows] == ["dqn"] and rows[0]["solved"].endswith("/2")
    with (tmp_path / "dqn_optimizers.csv").open() as f:
        compared = [(r["algorithm"], r["optimizer"], r["lr"]) for r in csv.DictReader(f)]
    assert compared == [("dqn", "rmsprop", "0.001"), ("dqn", "rmsprop", "0.003"), ("dqn", "adam", "0.001")]
    with (tmp_path / "throughput.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    assert row["algorithm"] == "dqn" and row["agents"] == "2" and row["ratio"].endswith("x")
    results = json.loads((tmp_path / "results.json").read_text())
    dqn = results["runs"]["dqn"]
    assert dqn["env_steps"] == [1024, 2048]  # 2 evaluations over 2,048 steps
    returns = np.asarray(dqn["eval_return"])
    assert returns.shape == (1, 2, 2) and np.all((returns >= 1) & (returns <= 500))
    assert np.asarray(results["runs"]["dqn/rmsprop"]["eval_return"]).shape == (2, 2, 2)  # (lrs, seeds, evals)
    # The run ends with one summary line per algorithm, then one per compared (optimizer, lr).
    lines = proc.stdout.strip().splitlines()[-4:]
    assert [line.split(":")[0] for line in lines] == [
        "dqn",
        "dqn/rmsprop lr=0.001",
        "dqn/rmsprop lr=0.003",
        "dqn/adam lr=0.001",
    ]
    assert all(" seeds (mean evaluation return >= 475) " in line for line in lines)
    assert results["summary"] == lines


@pytest.mark.parametrize(
    "args, message",
    [
        (["--env=CartPole-v9"], "error: env_name: expected one of CartPole-v1, Acrobot-v1,"),
        (["--algorithms=dqn,sarsa"], "error: --algorithms: expected one of dqn, a2c, ppo, reinforce, got 'sarsa'"),
        (["--config.dqn.discount=1.0"], "error: discount: expected a discount in [0, 1), got 1.0"),
        (["--config.dqn.epsilon_end=1.5"], "error: epsilon_end: expected a probability in [0, 1], got 1.5"),
        (["--config.dqn.buffer_size=8"], "error: buffer_size: expected a buffer at least as large as batch_size=64"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, args, message):
    # In this process (no JAX import per case): the exit status and the one stderr line are the
    # contract; the real process boundary is test_main_end_to_end_tiny's (and tests/reliability's).
    out = cli_worker.run_in_process(MAIN, [f"--workdir={tmp_path / 'out'}", TINY, *args])
    assert out["escaped"] is None and not out["timed_out"], out
    assert out["code"] == 2, out["stderr"][-2000:]
    lines = out["stderr"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), out["stderr"]
    assert not (tmp_path / "out").exists()  # nothing is created before the input is valid


def test_steps_to_solve_and_summary_line():
    steps = np.array([10_000, 20_000, 30_000])
    returns = np.array([[100, 480, 200], [100, 200, 300], [475, 500, 500]])
    solve = report.steps_to_solve(steps, returns, 475.0)
    np.testing.assert_array_equal(solve, [20_000, np.inf, 10_000])
    assert report.summary_line("dqn", solve, 475.0, 30_000) == (
        "dqn: solved 2/3 seeds (mean evaluation return >= 475) in 20,000 env steps"
    )
    assert report.summary_line("a2c", np.full(2, np.inf), 475.0, 30_000) == (
        "a2c: solved 0/2 seeds (mean evaluation return >= 475) within 30,000 env steps"
    )
