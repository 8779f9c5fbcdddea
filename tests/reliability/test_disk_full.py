"""A full disk is one line on stderr and exit status 1, wherever the write fails.

Two ways: a real small tmpfs (``mount -t tmpfs``; skipped with the reason when
this machine refuses the mount), filled so that the run's first writes fail; and
``ENOSPC`` injected at each kind of write (the checkpoint, the metrics rows,
``results.json``, the workdir probe) in a real process, which works everywhere.
The CLI table (``test_cli.py``) also runs every main's workdir probe on a "full disk".
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests import test_utils


def _run(where: str, workdir) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tests.reliability.disk_full_worker", where, str(workdir)],
        cwd=test_utils.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _assert_one_line_exit_1(proc):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "No space left on device" in lines[0], proc.stderr[
        -3000:
    ]


@pytest.mark.parametrize("where", ["checkpoint", "metrics", "results", "probe"])
def test_enospc_injected_at_each_write_is_one_line_exit_1(tmp_path, where):
    _assert_one_line_exit_1(_run(where, tmp_path / "run"))


@pytest.fixture
def small_tmpfs(tmp_path):
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({proc.stderr.strip() or 'mount refused'}); "
            "ENOSPC injection covers the exit-1 path instead"
        )
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


@pytest.mark.parametrize("free_kib", [4, 48], ids=["full_before_start", "full_during_run"])
def test_a_really_full_tmpfs_is_one_line_exit_1(small_tmpfs, free_kib):
    total = os.statvfs(small_tmpfs)
    fill = total.f_bavail * total.f_frsize - free_kib * 1024
    with open(small_tmpfs / "filler", "wb") as f:
        f.write(b"\0" * fill)
    _assert_one_line_exit_1(_run("none", small_tmpfs / "run"))
