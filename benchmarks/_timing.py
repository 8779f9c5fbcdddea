"""A small median-timing helper shared by the benchmarks.

Speed claims in jax231 are ratios against a peer measured in the same process
(see the benchmark scripts); this module only measures.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import jax


def time_fn(
    fn: Callable[..., Any],
    *args: Any,
    repeats: int = 7,
    warmup: int = 1,
    carry: bool = False,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Median wall time of ``fn(*args)`` in seconds, blocking on its results.

    Args:
      fn: the function to time (usually jitted; the warm-up calls compile it).
      *args: its arguments.
      repeats: timed calls (the median is returned), >= 1.
      warmup: untimed calls made first (compilation, caches), >= 0.
      carry: feed the outputs back as the leading arguments of the next call:
        ``fn`` returns a tuple ``out`` and the next call is
        ``fn(*out, *args[len(out):])``. Use it for functions that donate their
        input buffers (a train step returning ``(params, state)``).
      clock: ``time.perf_counter`` (wall time, the default) or
        ``time.process_time`` (CPU time of all threads: steadier on a shared
        machine, but blind to idle waits).

    Returns:
      The median of ``repeats`` timings, in seconds.

    Raises:
      ValueError: if ``repeats`` < 1 or ``warmup`` < 0.
    """
    if repeats < 1:
        raise ValueError(f"repeats: expected an int >= 1, got {repeats!r}")
    if warmup < 0:
        raise ValueError(f"warmup: expected an int >= 0, got {warmup!r}")

    def call(args: tuple) -> tuple:
        out = jax.block_until_ready(fn(*args))
        if carry:
            out = tuple(out) if isinstance(out, (tuple, list)) else (out,)
            return out + tuple(args[len(out) :])
        return args

    for _ in range(warmup):
        args = call(args)
    times = []
    for _ in range(repeats):
        start = clock()
        args = call(args)
        times.append(clock() - start)
    return statistics.median(times)


def time_interleaved(
    calls: dict[str, tuple[Callable[..., Any], tuple]],
    *,
    repeats: int = 7,
    warmup: int = 1,
    carry: bool = False,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median times of several functions timed in alternation, round by round.

    On a shared machine the load drifts; alternating the contenders within each
    round exposes them to the same drift, so their ratio is steadier than with
    back-to-back :func:`time_fn` calls.

    Args:
      calls: ``name -> (fn, args)``.
      repeats: rounds; each times every function once.
      warmup: untimed rounds first.
      carry: as in :func:`time_fn`.
      clock: as in :func:`time_fn`.

    Returns:
      ``name -> median seconds``.
    """
    if repeats < 1:
        raise ValueError(f"repeats: expected an int >= 1, got {repeats!r}")
    state = {name: args for name, (_, args) in calls.items()}
    times: dict[str, list[float]] = {name: [] for name in calls}
    for r in range(warmup + repeats):
        for name, (fn, _) in calls.items():
            args = state[name]
            start = clock()
            out = jax.block_until_ready(fn(*args))
            elapsed = clock() - start
            if carry:
                out = tuple(out) if isinstance(out, (tuple, list)) else (out,)
                state[name] = out + tuple(args[len(out) :])
            if r >= warmup:
                times[name].append(elapsed)
    return {name: statistics.median(t) for name, t in times.items()}
