"""Runs many command lines of the experiments' mains in ONE process (JAX imported once).

``python -m tests.reliability.cli_worker cases.json results.json``: each case is
``{"id", "module", "argv", "inject"}``. For every case the main module is imported
afresh with ``sys.argv`` set (ml_collections reads ``--config.<field>`` overrides at
flag definition), the flags it defined are deleted afterwards, and
``experiments._common.run(main)`` runs with stdout/stderr captured. Recorded: the
exit status, stderr, whether an exception escaped (a traceback), and whether the
case ran past its alarm (validation missed it and training started).

:func:`run_in_process` runs one command line the same way inside the calling process
(a test's): the exit-status and one-line contract without paying a JAX import per case.

``inject``: ``"enospc"`` makes the workdir's write probe fail with ``ENOSPC``
(disk full); ``"locked"`` holds the workdir's lock from another open file (as a
second process would) while the main runs.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import importlib
import io
import json
import logging as std_logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Sequence

from absl import flags
from absl import logging

from experiments import _common
from experiments._common import _cli

ALARM_S = 60


class RanPastValidation(BaseException):
    """The alarm fired: the main was still running (it started training on bad input)."""


def _alarm(signum, frame):
    raise RanPastValidation()


class _FullDisk:
    """Stands in for ``tempfile`` in ``_cli``: the write probe fails as on a full disk."""

    @staticmethod
    def NamedTemporaryFile(*args, **kwargs):  # noqa: N802  the tempfile name
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), kwargs.get("dir", ""))


@contextlib.contextmanager
def _injected(kind: str | None, argv: list[str]):
    if kind == "enospc":
        real = _cli.tempfile
        _cli.tempfile = _FullDisk
        try:
            yield
        finally:
            _cli.tempfile = real
    elif kind == "locked":
        workdir = next(a.split("=", 1)[1] for a in argv if a.startswith("--workdir="))
        os.makedirs(workdir, exist_ok=True)
        path = os.path.join(workdir, ".lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} 2026-12-01T00:00:00 python -m other.run --workdir={workdir}\n".encode())
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
    else:
        yield


def run_case(case: dict, baseline: set[str]) -> dict:
    module_name = case["module"]
    sys.modules.pop(module_name, None)
    for name in set(flags.FLAGS) - baseline:
        delattr(flags.FLAGS, name)
    flags.FLAGS.unparse_flags()
    sys.argv = ["main.py", *case["argv"]]
    out, err = io.StringIO(), io.StringIO()
    record = {"id": case["id"], "code": None, "escaped": None, "timed_out": False}
    signal.alarm(case.get("alarm", ALARM_S))
    start = time.monotonic()
    try:
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            _injected(case.get("inject"), case["argv"]),
        ):
            try:
                module = importlib.import_module(module_name)
                _common.run(module.main)
                record["code"] = 0
            except SystemExit as exc:
                record["code"] = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except RanPastValidation:
        record["timed_out"] = True
    except Exception:  # noqa: BLE001  what the user would have seen as a traceback
        record["escaped"] = traceback.format_exc()
    finally:
        signal.alarm(0)
        _common._lock.release_all()
        record["seconds"] = round(time.monotonic() - start, 2)
    record["stderr"], record["stdout"] = err.getvalue(), out.getvalue()[-2000:]
    return record


_BASELINE: set[str] = set()  # the flags defined before the first in-process main (absl's own)


def run_in_process(module: str, argv: Sequence[str], *, alarm: int = 120) -> dict:
    """``python -m module *argv`` run in THIS process: the record of :func:`run_case`.

    For a test of a main's exit status and one stderr line where the process boundary is
    not the point. What ``experiments._common.run`` changes in the process is put back
    afterwards: ``sys.argv``, the thread and unraisable-exception hooks, absl's verbosity
    and the root logger's handlers; the main's module and flags are dropped.
    """
    if not _BASELINE:
        _BASELINE.update(flags.FLAGS)
    saved = (sys.argv, threading.excepthook, sys.unraisablehook, logging.get_verbosity())
    handlers = list(std_logging.getLogger().handlers)
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        return run_case({"id": module, "module": module, "argv": list(argv), "alarm": alarm}, _BASELINE)
    finally:
        signal.signal(signal.SIGALRM, previous)
        sys.argv, threading.excepthook, sys.unraisablehook = saved[:3]
        logging.set_verbosity(saved[3])
        std_logging.getLogger().handlers[:] = handlers
        sys.modules.pop(module, None)
        for name in set(flags.FLAGS) - _BASELINE:
            delattr(flags.FLAGS, name)
        flags.FLAGS.unparse_flags()


def main() -> None:
    cases = json.loads(open(sys.argv[1]).read())
    signal.signal(signal.SIGALRM, _alarm)
    baseline = set(flags.FLAGS)
    with open(sys.argv[2], "w") as f:  # one JSON line per case, written as it ends
        for case in cases:
            f.write(json.dumps(run_case(case, baseline)) + "\n")
            f.flush()


if __name__ == "__main__":
    main()
