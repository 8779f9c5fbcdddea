"""One run per workdir: the workdir locks a main holds until it returns.

Every experiment's ``main`` takes its workdir through
:func:`experiments._common.lock_workdir`, which checks the directory and then
takes :class:`jax231.training.WorkdirLock` (an advisory ``flock`` on
``workdir/.lock`` naming the holder's PID and command). A second run into the
same workdir stops at once: the lock's ``WorkdirLockedError`` is a ``ValueError``,
so the one CLI error path prints it in one line with exit status 2. The lock
is re-entrant within the process, so ``fit`` taking it again inside the run is
free; :func:`release_all` (called by :func:`experiments._common.report_errors`
when ``main`` returns or fails) lets it go, and the kernel drops it if the
process dies (a killed run's lock is stale by construction).
"""

from __future__ import annotations

import os

from jax231.training import WorkdirLock

_HELD: list[WorkdirLock] = []


def hold(workdir: str | os.PathLike) -> WorkdirLock:
    """Takes ``workdir``'s lock for the rest of ``main`` (``WorkdirLockedError`` at once if another run holds it)."""
    lock = WorkdirLock(workdir).acquire()
    _HELD.append(lock)
    return lock


def release_all() -> None:
    """Releases every lock taken by :func:`hold`, newest first."""
    while _HELD:
        _HELD.pop().release()
