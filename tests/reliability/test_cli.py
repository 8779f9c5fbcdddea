"""Every command-line mistake, for every experiment main: one line on stderr, the promised exit status.

The table (:mod:`tests.reliability.cli_cases`) runs in ONE subprocess
(:mod:`tests.reliability.cli_worker`: JAX imported once, each main re-imported per
case), so hundreds of command lines cost seconds. A case passes when the main
ended with the promised status (2: usage, 1: environment), wrote exactly one
line to stderr, ``error: ...`` naming the field, no traceback escaped, and it
did not run on into training (the worker's alarm). A few end-to-end exits in a
real process each are at the bottom.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from tests import test_utils
from tests.reliability import cli_cases

# One xdist worker runs this whole module (`--dist loadgroup`, pyproject.toml), so that
# the `outcomes` fixture (one worker subprocess over the whole table) runs once, not once per worker.
pytestmark = pytest.mark.xdist_group("reliability_cli")

_ROOT = tempfile.mkdtemp(prefix="jax231-reliability-cli-")  # made at collection: the cases name its paths
CASES = cli_cases.cases(_ROOT)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    cli_cases.make_data_files(_ROOT)
    scratch = tmp_path_factory.mktemp("cli")
    (scratch / "cases.json").write_text(json.dumps([c.as_json() for c in CASES]))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.reliability.cli_worker",
            str(scratch / "cases.json"),
            str(scratch / "results.jsonl"),
        ],
        cwd=test_utils.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = (scratch / "results.jsonl").read_text().splitlines() if (scratch / "results.jsonl").exists() else []
    assert proc.returncode == 0, proc.stderr[-3000:]
    yield {r["id"]: r for r in map(json.loads, lines)}
    shutil.rmtree(_ROOT, ignore_errors=True)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_one_line_and_exit_status(outcomes, case):
    out = outcomes[case.id]
    assert not out["timed_out"], f"{case.id}: ran past validation into training"
    assert out["escaped"] is None, f"{case.id}: traceback\n{out['escaped']}"
    if case.code == 0:  # a run that must go through (the first of a resume pair, an explicit override)
        assert out["code"] == 0 and "error:" not in out["stderr"] and "Traceback" not in out["stderr"], out
        return
    lines = out["stderr"].strip().splitlines()
    assert len(lines) == 1, f"{case.id}: expected one line on stderr, got {len(lines)}:\n{out['stderr'][-2000:]}"
    assert lines[0].startswith("error: ") and "Traceback" not in out["stderr"], lines[0]
    assert out["code"] == case.code, f"{case.id}: exit {out['code']}, expected {case.code}: {lines[0]}"
    assert case.expect.lower() in lines[0].lower(), f"{case.id}: {lines[0]!r} does not name {case.expect!r}"


def test_the_table_covers_every_main_and_kind():
    mains = {name.name for name in cli_cases.MAINS}
    on_disk = {
        p
        for p in os.listdir(os.path.join(test_utils.REPO_ROOT, "experiments"))
        if os.path.isfile(os.path.join(test_utils.REPO_ROOT, "experiments", p, "main.py"))
    }
    assert mains == on_disk
    covered = {c.module.split(".")[1] for c in CASES if c.kind == "disk_full"}
    assert covered == mains
    assert len(CASES) >= 150


# ------------------------------------------------------------------ end to end, one real process each
@pytest.mark.parametrize(
    "argv, code, expect",
    [
        (["-m", "experiments.train.main", "--config.learning_ratee=0.1"], 2, "learning_ratee"),
        (["-m", "experiments.knn.main", "--workdir={tmp}", "--config.num_folds=-2"], 2, "num_folds"),
    ],
    ids=["train-misspelt_field", "knn-negative_folds"],
)
def test_exit_status_end_to_end(tmp_path, argv, code, expect):
    argv = [a.format(tmp=tmp_path) for a in argv]
    proc = subprocess.run(
        [sys.executable, *argv], cwd=test_utils.REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code and len(lines) == 1 and expect in lines[0], proc.stderr[-2000:]
