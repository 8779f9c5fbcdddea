"""``python -m tests.reliability.disk_full_worker WHERE WORKDIR``: the train main (tiny preset, digits)
with ``ENOSPC`` injected at one write, as on a full disk without mounting one.

``WHERE``: ``checkpoint`` (orbax's background rename of a finished checkpoint),
``metrics`` (the metrics CSV/JSONL rows), ``results`` (the atomic rename of
``results.json``), ``plot`` (matplotlib's PNG), ``probe`` (fit's workdir write probe),
``none`` (a tmpfs run: the disk really is full).
"""

from __future__ import annotations

import builtins
import errno
import os
import pathlib
import sys

from orbax.checkpoint._src.path import async_path

from experiments import _common
from jax231.training import _logging

_open = builtins.open
_replace = os.replace


def _full(path: object = "") -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


async def _rename(src, dst):
    raise _full(dst)


def _open_metrics(file, *args, **kwargs):
    if str(file).endswith(("metrics.csv", "metrics.jsonl")) and args and "a" in args[0]:
        raise _full(file)
    return _open(file, *args, **kwargs)


def _replace_results(src, dst, *args, **kwargs):
    if str(dst).endswith(("results.json", ".png")):
        raise _full(dst)
    return _replace(src, dst, *args, **kwargs)


def _probe_write(self, *args, **kwargs):
    raise _full(self)


def inject(where: str) -> None:
    if where == "checkpoint":
        async_path.rename = _rename
    elif where == "metrics":
        builtins.open = _open_metrics
    elif where in ("results", "plot"):
        os.replace = _replace_results
    elif where == "probe":
        _logging.pathlib.Path.write_text = _probe_write  # type: ignore[method-assign]
    elif where != "none":
        raise SystemExit(f"unknown WHERE {where!r}")


if __name__ == "__main__":
    inject(sys.argv[1])
    sys.argv = [
        "main.py",
        "--config=experiments/train/config.py:tiny",
        "--config.dataset=digits",
        "--config.num_steps=10",
        "--config.eval_every=5",
        f"--workdir={sys.argv[2]}",
    ]
    from experiments.train import main  # noqa: E402  flags read sys.argv at definition

    assert pathlib.Path(main.__file__).exists()
    _common.run(main.main)
