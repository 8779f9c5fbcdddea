"""The workdir lock and atomic result files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from jax231 import training

_HOLD = textwrap.dedent("""
    import sys, time
    from jax231.training import WorkdirLock
    with WorkdirLock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(60)
""")


def _holder(workdir):
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(workdir)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_run_into_a_locked_workdir_stops_at_once_naming_the_holder(tmp_path):
    proc = _holder(tmp_path)
    try:
        start = time.monotonic()
        with pytest.raises(
            training.WorkdirLockedError,
            match=rf"^workdir: expected no other run writing to .*, got one holding its lock "
            rf"\(pid {proc.pid}, started ",
        ) as e:
            training.WorkdirLock(tmp_path).acquire()
        assert time.monotonic() - start < 5  # refused, not waited for
        assert "\n" not in str(e.value)
    finally:
        proc.kill()
        proc.wait()


def test_lock_of_a_killed_run_is_stale_and_taken_over(tmp_path):
    proc = _holder(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    lock = training.WorkdirLock(tmp_path).acquire()
    try:
        assert lock.stale_pid == proc.pid
        assert (tmp_path / ".lock").read_text().split()[0] == str(os.getpid())
    finally:
        lock.release()


def test_lock_is_reentrant_within_a_process_and_released_after_the_last_exit(tmp_path):
    with training.WorkdirLock(tmp_path):
        with training.WorkdirLock(tmp_path):  # fit inside an experiment that holds the same workdir
            pass
        probe = subprocess.run(
            [sys.executable, "-c", _HOLD.replace("time.sleep(60)", "pass"), str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert probe.returncode != 0 and "WorkdirLockedError" in probe.stderr  # still held by the outer block
    probe = subprocess.run(
        [sys.executable, "-c", _HOLD.replace("time.sleep(60)", "pass"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0 and probe.stdout.strip() == "locked"


def test_atomic_write_replaces_whole_files_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "results.json"
    training.atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with training.atomic_path(target) as tmp:
            tmp.write_text("half-writ")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"  # the failed write never reached the target
    training.atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_atomic_path_keeps_the_suffix_for_format_sniffing_writers(tmp_path):
    with training.atomic_path(tmp_path / "plot.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path and tmp.name.startswith(".plot.tmp-")
        tmp.write_bytes(b"x")
    assert (tmp_path / "plot.png").read_bytes() == b"x"
