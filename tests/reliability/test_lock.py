"""One run per workdir: the lock every main and ``fit`` take, its holder named, stale locks taken over.

The CLI table checks every main against a held lock; here the states a lock
file can be in (a table), a real second ``experiments.train.main`` started while
a first one trains, and the release when ``main`` returns.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from experiments import _common
from jax231 import training
from tests import test_utils

_HOLD = (
    "import sys, time; from jax231 import training; "
    "lock = training.WorkdirLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(120)"
)


def _holder(workdir):
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(workdir)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


STATES = [  # the lock file before the second run -> (taken?, stale pid reported?)
    ("held_by_a_live_run", "live", False, False),
    ("left_by_a_killed_run", "killed", True, True),
    ("names_a_dead_pid_unlocked", "dead_pid", True, True),
    ("garbage_content", "garbage", True, False),
    ("empty_file", "empty", True, False),
    ("no_lock_file", "none", True, False),
]


@pytest.mark.parametrize("state, taken, stale", [s[1:] for s in STATES], ids=[s[0] for s in STATES])
def test_lock_workdir_in_every_state_of_the_lock_file(tmp_path, state, taken, stale):
    proc = None
    if state in ("live", "killed"):
        proc = _holder(tmp_path)
        if state == "killed":
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    elif state == "dead_pid":
        (tmp_path / ".lock").write_text(f"{_dead_pid()} 2026-01-01T00:00:00 python -m old.run\n")
    elif state == "garbage":
        (tmp_path / ".lock").write_bytes(b"\xff\xfe not a pid")
    elif state == "empty":
        (tmp_path / ".lock").write_bytes(b"")
    try:
        if not taken:
            with pytest.raises(ValueError, match=rf"holding its lock \(pid {proc.pid}, started ") as info:
                _common.lock_workdir(tmp_path)
            assert "\n" not in str(info.value)
            return
        _common.lock_workdir(tmp_path)
        lock = _common._lock._HELD[-1]
        assert (lock.stale_pid is not None) == stale
        assert (tmp_path / ".lock").read_text().split()[0] == str(os.getpid())
    finally:
        _common._lock.release_all()
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_lock_is_released_when_main_returns_and_reentrant_for_fit(tmp_path):
    def main(argv):
        _common.lock_workdir(tmp_path)
        with training.WorkdirLock(tmp_path):  # fit inside the main takes it again: re-entrant
            pass

    _common.report_errors(main, ["main"])
    assert not _common._lock._HELD
    probe = subprocess.run(
        [sys.executable, "-c", _HOLD.replace("time.sleep(120)", "pass"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0 and probe.stdout.strip() == "locked"


def test_a_second_train_main_into_a_training_workdir_exits_2_naming_the_first(tmp_path):
    argv = [
        sys.executable,
        "-m",
        "experiments.train.main",
        "--config=experiments/train/config.py:tiny",
        "--config.dataset=digits",
        "--config.num_steps=1000000",
        "--config.eval_every=1000",
        f"--workdir={tmp_path}",
    ]
    first = subprocess.Popen(argv, cwd=test_utils.REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not ((tmp_path / ".lock").exists() and (tmp_path / ".lock").read_text().startswith(str(first.pid))):
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        second = subprocess.run(argv, cwd=test_utils.REPO_ROOT, capture_output=True, text=True, timeout=300)
        still_training = first.poll() is None  # the first is never disturbed by the second
    finally:
        first.kill()
        first.communicate()
    lines = second.stderr.strip().splitlines()
    assert second.returncode == 2 and len(lines) == 1, second.stderr
    assert f"holding its lock (pid {first.pid}" in lines[0]
    assert still_training
