"""Files a run writes: atomic replacement of result files and the workdir lock.

Two runs must never clobber each other, and a reader (or a crash) must never see
half a results file:

* :func:`atomic_path` hands out a temporary name in the same directory and
  renames it onto the target only once the writer is done (``os.replace`` is
  atomic on POSIX): a crash leaves the previous file or none, never a torn one;
* :class:`WorkdirLock` is an advisory ``fcntl.flock`` on ``workdir/.lock``
  holding the owner's PID and command line. A second run into the same workdir
  stops at once with one line naming the holder. The kernel drops the lock
  when its process dies, so a lock left by a killed run is stale by
  construction: the next run takes it over (the PID in the file, if no longer
  alive, is reported as stale in the takeover).

Files are created with the user's umask (no ``chmod``): nothing becomes
world-writable that the user's umask does not allow.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pathlib
import sys
import time
from typing import Iterator

LOCK_NAME = ".lock"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[pathlib.Path]:
    """Yields a temporary path next to ``path``; renames it onto ``path`` when the block succeeds.

    The temporary name keeps the suffix (``.report.tmp-<pid>.png``), so writers
    that infer a format from it (matplotlib's ``savefig``) work unchanged.

    Examples:
      >>> with atomic_path(workdir / "curves.png") as tmp:
      ...     fig.savefig(tmp)
    """
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> pathlib.Path:
    """Writes ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return pathlib.Path(path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


class WorkdirLockedError(ValueError):
    """Another live process holds the workdir's lock (a ``ValueError``: one line on the command line)."""


class WorkdirLock:
    """An advisory, re-entrant (per process) lock on a workdir.

    Use as a context manager around everything a run writes::

        with WorkdirLock(workdir):
            ...

    Attributes:
      path: the lock file, ``workdir/.lock``.
      stale_pid: after :meth:`acquire`, the PID of a dead previous holder whose
        lock file was taken over (``None`` if there was none).
    """

    _held: dict[pathlib.Path, list[int]] = {}  # resolved lock path -> [re-entry count, fd], this process

    def __init__(self, workdir: str | os.PathLike):
        self.path = pathlib.Path(workdir).resolve() / LOCK_NAME
        self.stale_pid: int | None = None

    def acquire(self) -> "WorkdirLock":
        """Takes the lock or raises :class:`WorkdirLockedError` at once (never waits)."""
        if self.path in WorkdirLock._held:
            WorkdirLock._held[self.path][0] += 1
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise WorkdirLockedError(
                f"workdir: expected no other run writing to {self.path.parent}, got one holding its lock "
                f"({self._holder()}); wait for it to finish or pass another --workdir"
            ) from None
        previous = os.read(fd, 4096).decode(errors="replace").split(maxsplit=1)
        if previous and previous[0].isdigit() and not _pid_alive(int(previous[0])):
            self.stale_pid = int(previous[0])
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(sys.argv)}\n".encode())
        WorkdirLock._held[self.path] = [1, fd]
        return self

    def _holder(self) -> str:
        try:
            pid, started, *command = self.path.read_text().split(maxsplit=2)
        except (OSError, ValueError):
            return "holder unknown"
        return f"pid {pid}, started {started}" + (f": {command[0].strip()[:120]}" if command else "")

    def release(self) -> None:
        """Releases one acquisition; the lock file stays (its content names the last holder)."""
        held = WorkdirLock._held.get(self.path)
        if held is None:
            return
        held[0] -= 1
        if held[0] == 0:
            del WorkdirLock._held[self.path]
            fcntl.flock(held[1], fcntl.LOCK_UN)
            os.close(held[1])

    def __enter__(self) -> "WorkdirLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
