"""algoperf_mini: the scoring against hand computations, the workloads end to end, bad input.

The profile/score and the median-over-studies rule are checked on made-up tables whose
answers are worked out by hand in the comments; each workload trains a few steps through
``algoperf.run_workload`` (one group per ruleset); the command line refuses bad input in
one line with exit status 2 before training.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import subprocess
import sys
import types

import numpy as np
import pytest

from experiments.compare_optimizers import algoperf, algoperf_config, algoperf_report, scoring, workloads

ROOT = pathlib.Path(__file__).resolve().parents[2]
INF = math.inf


# ----------------------------------------------------------------------------- scoring by hand
def test_profile_and_score_equal_a_hand_computation():
    # Three optimizers on four workloads (seconds to target; inf = never reached).
    times = {"a": [10.0, 20.0, INF, 40.0], "b": [20.0, 10.0, 30.0, INF], "c": [50.0, 30.0, 60.0, 10.0]}
    profile = scoring.benchmark(times, tau_max=4.0)
    # Best per workload: 10, 10, 30, 10.  Ratios:
    #   a: 1, 2, inf, 4      b: 2, 1, 1, inf      c: 5, 3, 2, 1
    np.testing.assert_array_equal(profile.ratios, [[1, 2, INF, 4], [2, 1, 1, INF], [5, 3, 2, 1]])
    # rho(tau) = fraction of workloads with r <= tau.  At tau = 1, 2, 3, 4:
    #   a: 1/4, 2/4, 2/4, 3/4    b: 2/4, 3/4, 3/4, 3/4    c: 1/4, 2/4, 3/4, 3/4
    for tau, expected in (
        (1.0, [0.25, 0.5, 0.25]),
        (2.0, [0.5, 0.75, 0.5]),
        (3.0, [0.5, 0.75, 0.75]),
        (4.0, [0.75, 0.75, 0.75]),
    ):
        np.testing.assert_allclose(np.mean(profile.ratios <= tau, axis=1), expected)
    # Score = (1/3) * integral_1^4 rho = (1/3) * mean over workloads of (4 - r)^+:
    #   a: (3 + 2 + 0 + 0) / 4 / 3 = 5/12;  b: (2 + 3 + 3 + 0) / 4 / 3 = 8/12;  c: (0 + 1 + 2 + 3) / 4 / 3 = 6/12.
    np.testing.assert_allclose(profile.scores, [5 / 12, 8 / 12, 6 / 12], rtol=1e-12)
    # The grid rho agrees with the step function (trapezoid on a fine grid approaches the exact area).
    taus = np.linspace(1, 4, 30001)
    rho = (profile.ratios[:, :, None] <= taus).mean(axis=1)
    np.testing.assert_allclose(np.trapezoid(rho, taus, axis=1) / 3, profile.scores, atol=1e-3)
    rows = scoring.ranking_rows({"external, seconds": profile})
    assert [r["optimizer"] for r in rows] == ["b", "c", "a"]
    assert rows[0]["reached (external, seconds)"] == "3/4"


def test_time_to_target_and_median_over_studies_by_hand():
    steps = [50, 100, 150, 200]
    assert scoring.time_to_target(steps, [0.2, 0.5, 0.61, 0.7], target=0.6, mode="max") == 150
    assert scoring.time_to_target(steps, [0.2, np.nan, 0.5, 0.59], target=0.6, mode="max") == INF
    assert scoring.time_to_target(steps, [300, 120, 96, 90], target=95, mode="min") == 200
    # Two studies of three trials (steps to target):
    table = np.array(
        [
            [400.0, INF, 250.0],  # study 0: fastest 250
            [INF, 300.0, 350.0],
        ]
    )  # study 1: fastest 300
    np.testing.assert_array_equal(scoring.study_times(table), [250, 300])
    assert scoring.external_tuning_time(table) == 275.0  # median of two = their mean
    # Five studies, one failing entirely: median of (250, 300, 100, inf, 500) = 300.
    five = np.array([[250.0], [300.0], [100.0], [INF], [500.0]])
    assert scoring.external_tuning_time(five) == 300.0
    # One failed study of two makes the median infinite (AlgoPerf: a failed study counts as inf).
    assert scoring.external_tuning_time(np.array([[100.0, INF], [INF, INF]])) == INF
    assert scoring.self_tuning_time([120.0, INF, 80.0]) == 120.0
    with pytest.raises(ValueError, match="mode"):
        scoring.time_to_target(steps, [0.1] * 4, target=0.5, mode="up")


def test_trials_split_into_studies_and_scored_per_member():
    studies = algoperf.split_studies(3, 2, seed=0)
    assert sorted(studies.ravel().tolist()) == list(range(6))
    group = algoperf.Group(
        steps=np.array([10.0, 20.0]),
        metric=np.array([[0.1, 0.7], [0.8, 0.9], [0.1, 0.2], [0.1, 0.1], [0.5, 0.6], [0.7, 0.8]]),
        status=["completed"] * 6,
        seconds_per_step=np.full(6, 0.5),
        wall_seconds=1.0,
    )
    trials = algoperf.score_group(
        group,
        optimizer="o",
        ruleset="external",
        seeds=np.arange(6),
        hyperparams={"learning_rate": np.arange(6, dtype=np.float32)},
        studies=studies,
        target=0.6,
        mode="max",
    )
    assert [t.steps_to_target for t in trials] == [20, 10, INF, INF, 20, 10]
    assert trials[1].seconds_to_target == 5.0
    per_study = [min(trials[k].steps_to_target for k in row) for row in studies]
    assert algoperf.ruleset_times(trials)["steps"] == float(np.median(per_study))
    # Rescoring from the stored curve against another target needs no training.
    assert algoperf.retarget(trials[0], 0.05, "max").steps_to_target == 10


def test_quasirandom_trials_lie_in_the_search_space():
    space = {"learning_rate": (1e-4, 1e-1, "log"), "weight_decay": (0.0, 0.5, "linear")}
    draws = algoperf.sample_trials(space, 64, seed=3)
    assert draws["learning_rate"].min() >= 1e-4 and draws["learning_rate"].max() <= 1e-1
    assert draws["weight_decay"].min() >= 0 and draws["weight_decay"].max() <= 0.5
    # Log-uniform: about half of the draws below the geometric midpoint 10**-2.5.
    assert 24 <= int(np.sum(draws["learning_rate"] < 10**-2.5)) <= 40
    again = algoperf.sample_trials(space, 64, seed=3)
    np.testing.assert_array_equal(draws["learning_rate"], again["learning_rate"])


# ----------------------------------------------------------------------------- data
def test_the_text_loader_is_deterministic_and_windows_are_next_characters():
    text = workloads.pydoc_text()
    assert text == workloads.pydoc_text() and len(text) > 100_000
    assert workloads.text_fingerprint(text) == workloads.text_fingerprint(workloads.pydoc_text())
    tokens, labels, vocab = workloads.char_windows(text[:1000], context=8, stride=3)
    again = workloads.char_windows(text[:1000], context=8, stride=3)
    np.testing.assert_array_equal(tokens, again[0])
    for i in (0, 5, len(labels) - 1):
        assert "".join(vocab[t] for t in tokens[i]) == text[3 * i : 3 * i + 8]
        assert vocab[labels[i]] == text[3 * i + 8]
    with pytest.raises(ValueError, match="vocab"):
        workloads.char_windows("abc!", context=2, stride=1, vocab="abc")


# ----------------------------------------------------------------------------- end to end
def _tiny_config(names: str, optimizers: str = "nadamw,lion", num_trials: int = 2):
    c = algoperf_config.get_algoperf_mini_config()
    c.workloads, c.optimizers = names, optimizers
    c.num_trials, c.num_studies = num_trials, 2
    for w in c.workload_configs.values():
        w.num_steps, w.eval_every, w.val_size = 6, 3, min(w.val_size, 64)
        w.batch_size = min(w.batch_size, 32)
        if "train_size" in w and w.train_size:
            w.train_size = 256
    cifar = c.workload_configs.cifar10_cnn  # a vmapped conv is the slowest program here: smallest sizes
    cifar.train_size, cifar.val_size, cifar.batch_size = 64, 32, 16
    cifar.model.num_filters, cifar.model.hidden_dim = 4, 8
    return c


@pytest.mark.parametrize("name", workloads.NAMES)
def test_each_workload_runs_end_to_end_on_a_tiny_config(name):
    config = _tiny_config(name, "nadamw", num_trials=1)  # one program: 1 x 2 external + 2 self-tuning members
    plan = algoperf.validate(config)
    result = algoperf.run_workload(config, plan, name, log=lambda line: None)
    if result.skipped:
        pytest.skip(f"{name}: data absent here: {result.skipped}")
    assert len(result.trials) == 2 + 2
    assert result.steps == [3.0, 6.0]  # external budget 6; self-tuning trains on to 9
    for ruleset in algoperf.RULESETS:
        assert set(result.times[ruleset]["nadamw"]) == {"steps", "seconds"}
    assert all(len(t.curve) == (2 if t.ruleset == "external" else 3) for t in result.trials)
    defaults = algoperf.default_hyperparams("nadamw", ["learning_rate", "weight_decay"])
    assert all(t.hyperparams == pytest.approx(defaults) for t in result.trials if t.ruleset == "self-tuning")
    assert all(math.isfinite(t.best_metric) for t in result.trials if t.status == "completed")


def test_benchmark_writes_tables_profiles_and_json_and_rescores(tmp_path):
    config = _tiny_config("quadratic_deep", "momentum,nadamw")
    config.workload_configs.quadratic_deep.target = 330.0  # reachable in 6 steps: a finite profile
    text = algoperf.run(config, tmp_path, log=lambda line: None)
    before = algoperf.load_results(tmp_path / "results.json")[0]
    assert any(math.isfinite(t.steps_to_target) for t in before.trials)
    for stem in ("workload_quadratic_deep", "ranking"):
        assert (tmp_path / f"{stem}.md").exists() and (tmp_path / f"{stem}.csv").exists()
    for png in (
        "profile_external_steps",
        "profile_external_seconds",
        "profile_self_tuning_steps",
        "profile_self_tuning_seconds",
        "curves",
    ):
        assert (tmp_path / f"{png}.png").stat().st_size > 1000
    assert "score (external, steps)" in text and (tmp_path / "results.json").exists()
    # Rescoring against a target nobody reaches (loss 1) needs no training and finds no time to target.
    config.algoperf_mode = "rescore"
    config.workload_configs.quadratic_deep.target = 1.0
    algoperf.run(config, tmp_path, log=lambda line: None)
    after = algoperf.load_results(tmp_path / "results.json")[0]
    assert all(t.steps_to_target == INF for t in after.trials)
    assert [t.curve for t in after.trials] == [t.curve for t in before.trials]
    ranking = (tmp_path / "ranking.md").read_text()
    assert "| momentum |" in ranking and "| nadamw |" in ranking  # every scored optimizer, not the target setters


def test_the_loop_path_equals_the_sweep_path_on_the_quadratic():
    config = _tiny_config("quadratic_deep", "momentum")
    work = workloads.build("quadratic_deep", config.workload_configs.quadratic_deep)
    hps = {"learning_rate": np.array([1e-3, 3e-3], np.float32)}
    seeds = np.array([0, 1], np.int32)
    wcfg = config.workload_configs.quadratic_deep
    swept = algoperf.train_group(work, wcfg, "momentum", seeds, hps, 6, sweep=True)
    looped = algoperf.train_group(work, wcfg, "momentum", seeds, hps, 6, sweep=False)
    np.testing.assert_array_equal(swept.steps, looped.steps)
    # float32, batched products reassociated under vmap: losses of ~300 agree to ~1e-5 relative.
    np.testing.assert_allclose(swept.metric, looped.metric, rtol=2e-5)


_TWO_DEVICE_GROUP = """
import json, sys
import numpy as np
import jax
sys.path.insert(0, {root!r})
from tests.experiments.test_algoperf import _tiny_config
from experiments.compare_optimizers import algoperf, workloads
assert jax.device_count() == 2, jax.devices()
config = _tiny_config("quadratic_deep", "momentum")
wcfg = config.workload_configs.quadratic_deep
work = workloads.build("quadratic_deep", wcfg)
hps = {{"learning_rate": np.array([1e-3, 3e-3, 1e-2], np.float32)}}
group = algoperf.train_group(work, wcfg, "momentum", np.array([0, 1, 2], np.int32), hps, 6, sweep=True)
print(json.dumps({{"steps": np.asarray(group.steps).tolist(), "metric": np.asarray(group.metric).tolist()}}))
"""


def test_trials_are_sharded_over_devices_when_there_are_several():
    """With 2 (emulated) devices, train_members shards the 3 trials over a members mesh.

    K = 3 does not divide 2 devices, so the mesh pads a member (run_sweep drops it);
    the results equal the one-device sweep's up to float32 reassociation (the sharded
    program is fused differently: 1-2 ulp, see tests/parallel/test_sweep_mesh.py).
    """
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
    }
    out = subprocess.run(
        [sys.executable, "-c", _TWO_DEVICE_GROUP.format(root=str(ROOT))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    sharded = json.loads(out.stdout.strip().splitlines()[-1])
    config = _tiny_config("quadratic_deep", "momentum")
    wcfg = config.workload_configs.quadratic_deep
    work = workloads.build("quadratic_deep", wcfg)
    hps = {"learning_rate": np.array([1e-3, 3e-3, 1e-2], np.float32)}
    single = algoperf.train_group(work, wcfg, "momentum", np.array([0, 1, 2], np.int32), hps, 6, sweep=True)
    np.testing.assert_array_equal(sharded["steps"], np.asarray(single.steps))
    np.testing.assert_allclose(sharded["metric"], np.asarray(single.metric), rtol=1e-5)


def test_set_targets_writes_the_protocol(tmp_path):
    config = _tiny_config("quadratic_deep")
    config.algoperf_mode = "set_targets"
    config.target_setting_optimizers = "momentum"
    config.target_setting_trials, config.target_setting_seeds = 3, 2
    text = algoperf.run(config, tmp_path, log=lambda line: None)
    assert "quadratic_deep" in text and (tmp_path / "targets.json").exists()


# ----------------------------------------------------------------------------- bad input
def _main(*args: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "experiments.compare_optimizers.main",
        "--config=experiments/compare_optimizers/config.py:algoperf_mini",
        "--workdir=/nonexistent/never",
        *args,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("--config.search_spaces.adamw={}", "--config.search_spaces.adamw: expected at least one hyperparameter"),
        (
            "--config.workload_configs.digits_mlp.target=1.5",
            "--config.workload_configs.digits_mlp.target: expected a val_accuracy in (0, 1]",
        ),
        ("--config.optimizers=adamw,muon,sgd,adagrad", "--config.search_spaces: expected an entry for every optimizer"),
        ("--config.workloads=mnist1d_mlp,imagenet", "--config.workloads: expected one of mnist1d_mlp, mnist1d_cnn"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_training(override, expected):
    out = _main(override)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], out.stderr
    assert out.stdout == ""  # nothing trained, nothing printed


def test_an_unknown_named_config_lists_the_valid_names():
    cmd = [
        sys.executable,
        "-m",
        "experiments.compare_optimizers.main",
        "--config=experiments/compare_optimizers/config.py:algoperf_big",
        "--workdir=/tmp/never",
    ]
    out = subprocess.run(
        cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "error: --config: expected config.py or config.py:<name> with name one of algoperf_mini, got 'algoperf_big'"
    )


def test_reading_names_the_leader_and_the_unsolved_workloads():
    """The report's paragraph, on a made-up table: 3 workloads, 'c' is reached by nobody."""
    inf = math.inf
    external = scoring.benchmark({"sgd": [10.0, 40.0, inf], "adam": [20.0, 20.0, inf]}, tau_max=4.0)
    self_tuning = scoring.benchmark({"sgd": [inf, inf, inf], "adam": [30.0, inf, inf]}, tau_max=4.0)
    results = [types.SimpleNamespace(name=n, skipped=None) for n in ("a", "b", "c")]
    text = algoperf_report.reading(results, {"external, steps": external, "self-tuning, steps": self_tuning})
    sgd, adam = (float(s) for s in external.scores)
    leader, runner = ("sgd", "adam") if sgd > adam else ("adam", "sgd")
    top, second = max(sgd, adam), min(sgd, adam)
    assert f"In the external, steps ranking {leader} scores highest ({top:.3f}, reaching the target on 2/3" in text
    assert f"then {runner} ({second:.3f})" in text
    assert "In the self-tuning, steps ranking adam scores highest" in text
    assert "4 of 6 (optimizer, workload) pairs reached the target" in text
    assert text.endswith("no optimizer reached it on c.")
    assert algoperf_report.reading([], {}) == "No workload ran to the end, so there is nothing to rank."
