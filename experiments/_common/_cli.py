"""Command-line plumbing shared by experiments: one-line errors, exit code 2.

Bad input (an unknown optimizer, model or dataset, a malformed learning rate, a
workdir that cannot be written) must stop a run *before* training with one line on
stderr naming the flag, what was expected and what came, and exit code 2 — never a
traceback. Library code raises :class:`UsageError`; :func:`run` turns it (and absl's
own flag-parsing errors) into that line.
"""

from __future__ import annotations

import os
import pathlib
import sys
import tempfile
from typing import Any, Callable, Iterable, Sequence

from absl import app
from absl import logging
from absl import flags

EXIT_USAGE = 2
"""Exit status for bad command-line input (the POSIX convention, as argparse uses)."""


class UsageError(ValueError):
    """Bad user input to an experiment; its message is printed as ``error: <message>``."""


def split_list(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Splits ``'a,b, c'`` (or a list of such strings) into ``('a', 'b', 'c')``; empty items dropped."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    items = []
    for chunk in value:
        items.extend(part.strip() for part in str(chunk).split(","))
    return tuple(item for item in items if item)


def parse_choices(flag: str, value: str | Sequence[str] | None, valid: Iterable[str], *,
                  allow_empty: bool = False) -> tuple[str, ...]:
    """Parses a comma-separated list of names, each of which must be in ``valid``.

    Args:
      flag: flag name used in the error message (without the leading dashes).
      value: ``'sgd,adam'`` or ``['sgd', 'adam']``; ``'all'`` selects every valid name.
      valid: the accepted names, in the order they should be listed.
      allow_empty: whether an empty selection is accepted.

    Returns:
      The selected names in the given order, duplicates removed.

    Raises:
      UsageError: ``--flag: unknown 'x'; valid: a, b, c`` for the first unknown name.
    """
    valid = tuple(valid)
    names = split_list(value)
    if names == ("all",):
        return valid
    for name in names:
        if name not in valid:
            raise UsageError(f"--{flag}: unknown {name!r}; valid: {', '.join(valid)}")
    if not names and not allow_empty:
        raise UsageError(f"--{flag}: expected at least one of: {', '.join(valid)}; got nothing")
    return tuple(dict.fromkeys(names))


def parse_int_list(flag: str, value: str | Sequence[str] | None, *, minimum: int | None = None
                   ) -> tuple[int, ...]:
    """Parses ``'0,1,2'`` into ``(0, 1, 2)``; ``UsageError`` naming the flag otherwise."""
    out = []
    for item in split_list(value):
        try:
            number = int(item)
        except ValueError:
            raise UsageError(f"--{flag}: expected comma-separated integers; got {item!r}") from None
        if minimum is not None and number < minimum:
            raise UsageError(f"--{flag}: expected integers >= {minimum}; got {number}")
        out.append(number)
    if not out:
        raise UsageError(f"--{flag}: expected comma-separated integers; got nothing")
    return tuple(out)


def parse_float_map(flag: str, value: str | Sequence[str] | None, valid_keys: Iterable[str], *,
                    positive: bool = True) -> dict[str, float]:
    """Parses ``'adam:1e-3,sgd:0.1'`` into ``{'adam': 1e-3, 'sgd': 0.1}``.

    Raises:
      UsageError: on an unknown key, a missing ``:``, a non-number or (when
        ``positive``) a value <= 0.
    """
    valid_keys = tuple(valid_keys)
    out: dict[str, float] = {}
    for item in split_list(value):
        key, sep, number = item.partition(":")
        key = key.strip()
        if not sep:
            raise UsageError(f"--{flag}: expected name:value pairs like 'adam:1e-3'; got {item!r}")
        if key not in valid_keys:
            raise UsageError(f"--{flag}: unknown {key!r}; valid: {', '.join(valid_keys)}")
        try:
            out[key] = float(number)
        except ValueError:
            raise UsageError(f"--{flag}: expected a number after '{key}:'; got {number!r}") from None
        if positive and not out[key] > 0:
            raise UsageError(f"--{flag}: expected a positive value for {key!r}; got {out[key]}")
    return out


def check_workdir(path: str | os.PathLike | None, *, flag: str = "workdir") -> pathlib.Path:
    """Creates ``path`` if needed and proves it writable, before any training starts.

    Returns:
      The directory as a :class:`pathlib.Path`.

    Raises:
      UsageError: when ``path`` is empty, is a file, or cannot be created or written.
    """
    if path is None or not str(path).strip():
        raise UsageError(f"--{flag}: expected a directory to write outputs to; got nothing")
    workdir = pathlib.Path(path).expanduser()
    if workdir.exists() and not workdir.is_dir():
        raise UsageError(f"--{flag}: expected a directory; {str(workdir)!r} is a file")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=workdir, prefix=".write_test_"):
            pass
    except OSError as err:
        reason = err.strerror or str(err)
        raise UsageError(f"--{flag}: cannot write to {str(workdir)!r}: {reason}") from None
    return workdir


def fail(message: str) -> None:
    """Prints ``error: <message>`` (one line) on stderr and exits with status 2."""
    one_line = " ".join(str(message).split())
    print(f"error: {one_line}", file=sys.stderr, flush=True)
    sys.exit(EXIT_USAGE)


def define_config_file(path: str | os.PathLike, *, name: str = "config",
                       help_string: str = "Experiment config (an ml_collections config file).") -> Any:
    """``ml_collections.config_flags.DEFINE_config_file`` with one-line errors.

    ml_collections applies ``--config.<field>=value`` overrides from ``sys.argv`` when
    the flag is *defined* (at import of ``main.py``), before :func:`run` can catch
    anything; a misspelt field would otherwise print a traceback.

    Returns:
      The flag holder (``.value`` is the ``ConfigDict``).
    """
    from ml_collections import config_flags  # pylint: disable=import-outside-toplevel

    try:
        return config_flags.DEFINE_config_file(name, str(path), help_string)
    except (AttributeError, KeyError, TypeError, ValueError, flags.Error) as err:
        text = str(err.args[0]) if err.args else str(err)
        text = " ".join(text.replace("\\n", " ").replace("\\", "").replace("'", "").split())
        kind = "unknown field " if isinstance(err, (AttributeError, KeyError)) else ""
        fail(f"--{name}: bad override: {kind}{text}")
    return None  # unreachable


def _flags_parser(argv: list[str]) -> list[str]:
    """absl's default parser, but errors become one line and exit status 2."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as err:
        fail(str(err))
    return []  # unreachable


def run(main: Callable[[Sequence[str]], None]) -> None:
    """``absl.app.run(main)`` with one-line errors and exit status 2 for bad input.

    absl logging is set to WARNING before ``main`` runs (``--verbosity`` overrides it).

    Args:
      main: the experiment's ``main(argv)``; it may raise :class:`UsageError` for bad
        flag values (it is caught and printed as ``error: ...``) and should check its
        workdir with :func:`check_workdir` before training.
    """

    def wrapped(argv: Sequence[str]) -> None:
        # absl WARNING for every experiment (unless --verbosity is given): keeps JAX's INFO
        # lines (backend probing) and orbax's line per checkpoint off stderr.
        if not flags.FLAGS["verbosity"].present:
            logging.set_verbosity(logging.WARNING)
        extra = [arg for arg in argv[1:]]
        if extra:
            fail(f"unexpected positional arguments: {' '.join(extra)}")
        try:
            main(argv)
        except UsageError as err:
            fail(str(err))

    app.run(wrapped, flags_parser=_flags_parser)
