"""Command-line plumbing shared by experiments: the one error path of every main.

Bad input (an unknown optimizer, model or dataset, a misspelt ``--config.<field>``,
a non-finite or out-of-range number, a missing or corrupt data file, a bad split
string, a bad model or optimizer keyword, a workdir that cannot be created, a workdir
another run holds) must stop
a run *before* training with one line on stderr naming the field, what was expected
and what came, and exit code 2 — never a traceback. An environment failure (disk
full, permission denied) is one line and exit code 1. ``--verbosity=1`` (or more)
shows the traceback instead.

:func:`define_config_file` defines ``--config`` (overrides parsed with one-line
errors; every numeric field checked by :func:`check_config_numbers` when the value is
read) and :func:`run` is ``absl.app.run`` with that error path. Library code raises
``ValueError`` (the :mod:`jax231._validation` format) or :class:`UsageError`.
"""

from __future__ import annotations

import errno
import logging as pylogging
import math
import numbers
import os
import pathlib
import re
import sys
import tempfile
import threading
from typing import Any, Callable, Collection, Iterable, NoReturn, Sequence

import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

from experiments._common import _lock
from jax231 import _validation

# The flags this module defines for a main (``define_workdir``, ``Shortcuts``) are that main's
# key flags, listed by its ``--helpshort``: absl would otherwise credit them to this module.
flags.disclaim_key_flags()

EXIT_USAGE = 2
"""Exit status for bad command-line input (the POSIX convention, as argparse uses)."""

EXIT_ENVIRONMENT = 1
"""Exit status for a failure of the environment (disk full, permission denied)."""

_ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS})


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


def parse_choices(
    flag: str, value: str | Sequence[str] | None, valid: Iterable[str], *, allow_empty: bool = False
) -> tuple[str, ...]:
    """Parses a comma-separated list of names, each of which must be in ``valid``.

    Args:
      flag: flag name used in the error message (without the leading dashes).
      value: ``'sgd,adam'`` or ``['sgd', 'adam']``; ``'all'`` selects every valid name.
      valid: the accepted names, in the order they should be listed.
      allow_empty: whether an empty selection is accepted.

    Returns:
      The selected names in the given order, duplicates removed.

    Raises:
      UsageError: ``--flag: expected one of a, b, c, got 'x'`` for the first unknown name.
    """
    valid = tuple(valid)
    names = split_list(value)
    if names == ("all",):
        return valid
    for name in names:
        if name not in valid:
            raise UsageError(f"--{flag}: expected one of {', '.join(valid)}, got {name!r}")
    if not names and not allow_empty:
        raise UsageError(f"--{flag}: expected at least one of {', '.join(valid)}, got nothing")
    return tuple(dict.fromkeys(names))


def parse_int_list(flag: str, value: str | Sequence[str] | None, *, minimum: int | None = None) -> tuple[int, ...]:
    """Parses ``'0,1,2'`` into ``(0, 1, 2)``; ``UsageError`` naming the flag otherwise."""
    out = []
    for item in split_list(value):
        try:
            number = int(item)
        except ValueError:
            raise UsageError(f"--{flag}: expected comma-separated integers, got {item!r}") from None
        if minimum is not None and number < minimum:
            raise UsageError(f"--{flag}: expected integers >= {minimum}, got {number}")
        rule = _number_rule(flag)  # e.g. seeds in [0, 2**32 - 1]
        if rule is not None:
            try:
                rule(f"--{flag}", number)
            except ValueError as err:
                raise UsageError(str(err)) from None
        out.append(number)
    if not out:
        raise UsageError(f"--{flag}: expected comma-separated integers, got nothing")
    return tuple(out)


def parse_float_map(
    flag: str, value: str | Sequence[str] | None, valid_keys: Iterable[str], *, positive: bool = True
) -> dict[str, float]:
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
            raise UsageError(f"--{flag}: expected name:value pairs like 'adam:1e-3', got {item!r}")
        if key not in valid_keys:
            raise UsageError(f"--{flag}: expected keys among {', '.join(valid_keys)}, got {key!r}")
        try:
            out[key] = float(number)
        except ValueError:
            raise UsageError(f"--{flag}: expected a number after '{key}:', got {number!r}") from None
        if not math.isfinite(out[key]) or (positive and not out[key] > 0):
            raise UsageError(
                f"--{flag}: expected a finite{' positive' if positive else ''} value for {key!r}, got {out[key]}"
            )
    return out


def check_workdir(path: str | os.PathLike | None, *, flag: str = "workdir") -> pathlib.Path:
    """Creates ``path`` if needed and proves it writable, before any training starts.

    Returns:
      The directory as a :class:`pathlib.Path`.

    Raises:
      UsageError: when ``path`` is empty, is a file, or cannot be created (exit status 2).
      OSError: disk full, quota exceeded, permission denied or a read-only file
        system (an environment failure: exit status 1).
    """
    if path is None or not str(path).strip():
        raise UsageError(f"--{flag}: expected a directory to write outputs to, got nothing")
    workdir = pathlib.Path(path).expanduser()
    if workdir.exists() and not workdir.is_dir():
        raise UsageError(f"--{flag}: expected a directory; {str(workdir)!r} is a file")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=workdir, prefix=".write_test_"):
            pass
    except OSError as err:
        if _environment_error(err):  # disk full, quota, permission denied: exit status 1
            raise
        reason = err.strerror or str(err)
        raise UsageError(f"--{flag}: cannot write to {str(workdir)!r}: {reason}") from None
    return workdir


def lock_workdir(path: str | os.PathLike | None, *, flag: str = "workdir") -> pathlib.Path:
    """:func:`check_workdir`, then the workdir lock held until ``main`` returns.

    A second run into the same workdir stops here, before anything trains, with
    one line naming the holder (``WorkdirLockedError``: exit status 2).

    Returns:
      The directory as a :class:`pathlib.Path`.
    """
    workdir = check_workdir(path, flag=flag)
    _lock.hold(workdir)
    return workdir


def fail(message: str, *, status: int = EXIT_USAGE) -> NoReturn:
    """Prints ``error: <message>`` (one line) on stderr and exits with ``status`` (2: usage)."""
    one_line = " ".join(str(message).split())
    print(f"error: {one_line}", file=sys.stderr, flush=True)
    sys.exit(status)


def check_keywords(flag: str, given: Collection[str], valid: Sequence[str]) -> None:
    """:func:`jax231._validation.check_keywords` raising :class:`UsageError` (listing the valid ones)."""
    try:
        _validation.check_keywords(flag, given, valid)
    except ValueError as err:
        raise UsageError(str(err)) from None


# ----------------------------------------------------------------------- config numbers
_NON_NEGATIVE = (
    "l1",
    "l2",
    "weight_decay",
    "elastic_net",
    "label_smoothing",
    "l2s",
    "strength",
    "max_seconds",
    "checkpoint_every",
    "early_stopping_patience",
    "epochs",
    "lr_search",
    "warmup_steps",
    "learning_starts",
    "entropy_coef",
    "value_coef",
    "box_weight",
)
_AT_LEAST_ONE = (
    "top_k",
    "num_epochs",
    "num_trials",
    "num_steps",
    "eval_every",
    "num_seeds",
    "num_coarse",
    "num_fine",
    "num_folds",
    "num_evals",
    "members",
    "ensemble_size",
    "rounds",
    "grid_size",
    "num_attempts",
    "num_envs",
    "num_minibatches",
    "repeats",
    "trials",
    "hidden_size",
)
_UNIT_OPEN = ("momentum", "beta1", "beta2", "beta2s", "ema_decay", "smoothing", "gan_beta1", "gan_label_smoothing")
_UNIT_CLOSED = (
    "iou_threshold",
    "score_threshold",
    "discount",
    "gae_lambda",
    "target_accuracy",
    "default_target_accuracy",
)


def _at_least_one(name: str, value: Any) -> int:
    return _validation.check_positive_int(name, value)


def _non_negative(name: str, value: Any) -> float:
    if isinstance(value, numbers.Integral):
        return _validation.check_non_negative_int(name, value)
    return _validation.check_non_negative(name, value)


def _unit_open(name: str, value: Any) -> float:
    return _validation.check_in_range(name, value, low=0.0, high=1.0, high_open=True)


def _unit_closed(name: str, value: Any) -> float:
    return _validation.check_in_range(name, value, low=0.0, high=1.0)


def _fraction(name: str, value: Any) -> float:
    return _validation.check_in_range(name, value, low=0.0, high=1.0, low_open=True)


def _number_rule(field: str) -> Callable[[str, Any], Any] | None:
    """The check a numeric config field gets from its name (``None``: finiteness only).

    Names are read leaf first (``a.b[2]`` -> ``b``); a field inside ``learning_rates``
    (``learning_rates.adam``) is a learning rate.
    """
    parts = [re.sub(r"(\[\d+\])+$", "", part) for part in field.split(".")]
    leaf = parts[-1]
    if leaf in ("seed", "seeds") or leaf.endswith("_seed"):
        return _validation.check_seed
    if (
        leaf in ("learning_rate", "lr", "learning_rates", "temperature", "temperatures", "max_grad_norm")
        or leaf.endswith(("_learning_rate", "_lr", "_learning_rates"))
        or "learning_rates" in parts[:-1]
        or "trajectory_lrs" in parts[:-1]
    ):
        return _validation.check_positive
    if leaf in _NON_NEGATIVE:
        return _non_negative
    if leaf.endswith(("drop_rate", "depth_rate", "connect_rate")) or leaf in _UNIT_OPEN:
        return _unit_open
    if leaf in _UNIT_CLOSED:
        return _unit_closed
    if leaf == "shrink":
        return _fraction
    if leaf == "explosion_factor":
        return lambda name, value: _validation.check_in_range(name, value, low=1.0, low_open=True)
    if leaf in _AT_LEAST_ONE or (leaf.endswith("_steps") and leaf not in _NON_NEGATIVE):
        return _at_least_one
    return None


def _check_number(field: str, value: Any, rule: Callable[[str, Any], Any] | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return
    if isinstance(value, float) and not math.isfinite(value):
        _validation.fail(field, "a finite number", value)
    rule = rule or _number_rule(field)
    if rule is not None:
        rule(field, value)


def check_config_numbers(config: ml_collections.ConfigDict, *, prefix: str = "--config") -> ml_collections.ConfigDict:
    """Checks every numeric field of ``config`` (nested too) before anything trains.

    Every float must be finite (``--config.learning_rate=inf`` and ``nan`` are refused);
    fields get a range from their name (:func:`_number_rule`): ``seed``/``*_seed`` in
    ``[0, 2**32 - 1]``; learning rates (``learning_rate``, ``lr``, ``*_lr``, anything in
    ``learning_rates``) and temperatures > 0; ``l1``/``l2``/``weight_decay``/``epochs``/
    ``max_seconds``/``checkpoint_every`` >= 0; drop rates, momenta, betas and decays in
    ``[0, 1)``; thresholds, discounts and target accuracies in ``[0, 1]``; ``shrink`` in
    ``(0, 1]``; ``explosion_factor`` > 1; ``num_steps``/``*_steps``/``eval_every``/``top_k``
    and the other counts integers >= 1. Tuples and lists are checked element by element.

    Returns:
      ``config`` itself.

    Raises:
      UsageError: ``--config.<field>: expected ..., got ...`` for the first bad field.
    """
    try:
        _check_tree(config, prefix)
    except ValueError as err:
        raise UsageError(str(err)) from None
    return config


def _check_tree(node: Any, field: str, rule: Callable[[str, Any], Any] | None = None) -> None:
    if isinstance(node, (ml_collections.ConfigDict, dict)):
        for key, value in node.items():
            # num_steps is unused (0) when a sibling epochs > 0 sets the length.
            by_epochs = key == "num_steps" and isinstance(node.get("epochs"), int) and node["epochs"] > 0
            _check_tree(value, f"{field}.{key}", _non_negative if by_epochs else None)
    elif isinstance(node, (tuple, list)):
        for i, value in enumerate(node):
            _check_tree(value, f"{field}[{i}]", rule)
    else:
        _check_number(field, node, rule)


_OVERRIDE_ERRORS = (AttributeError, KeyError, TypeError, ValueError, flags.Error)
"""What ml_collections raises for a bad ``--config.<field>`` override (at definition or parse time)."""


def _override_message(err: BaseException, name: str = "config") -> str:
    """``--config: bad override: unknown field ...`` from ml_collections' error (one line)."""
    text = str(err.args[0]) if err.args else str(err)
    text = " ".join(text.replace("\\n", " ").replace("\\", "").replace("'", "").split())
    kind = "unknown field " if isinstance(err, (AttributeError, KeyError)) else ""
    return f"--{name}: bad override: {kind}{text}"


def define_config_file(
    path: str | os.PathLike,
    *,
    name: str = "config",
    help_string: str = "Experiment config (an ml_collections config file).",
) -> Any:
    """``ml_collections.config_flags.DEFINE_config_file`` with one-line errors.

    ml_collections applies ``--config.<field>=value`` overrides from ``sys.argv`` when
    the flag is *defined* (at import of ``main.py``), before :func:`run` can catch
    anything; a misspelt field would otherwise print a traceback.

    Returns:
      A holder whose ``.value`` is the ``ConfigDict``, its numbers checked by
      :func:`check_config_numbers` (a :class:`UsageError`, caught by :func:`run`).
    """
    try:
        return _CheckedConfig(config_flags.DEFINE_config_file(name, str(path), help_string), name)
    except _OVERRIDE_ERRORS as err:
        fail(_override_message(err, name))
    return None  # unreachable


def define_workdir(help_string: str = "Directory for every output (created if needed).") -> Any:
    """``--workdir``, the one other flag of every main (checked by :func:`check_workdir`)."""
    return flags.DEFINE_string("workdir", None, help_string)


_DEFINE = {
    "string": flags.DEFINE_string,
    "float": flags.DEFINE_float,
    "integer": flags.DEFINE_integer,
    "bool": flags.DEFINE_bool,
}


class Shortcuts:
    """A few documented short flags, each setting one config field (``--lr`` -> ``learning_rate``).

    Args:
      spec: ``flag -> (config field, kind, help)`` with ``kind`` one of ``'string'``,
        ``'float'``, ``'integer'``, ``'bool'``. Every flag defaults to ``None``: keep the
        config's value.
    """

    def __init__(self, spec: dict[str, tuple[str, str, str]]) -> None:
        self._holders = {
            flag: (field, _DEFINE[kind](flag, None, f"{text} (sets config.{field})"))
            for flag, (field, kind, text) in spec.items()
        }

    def apply(self, config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
        """``config`` with the given shortcuts written into it, its numbers re-checked."""
        for field, holder in self._holders.values():
            if holder.value is not None:
                config[field] = holder.value
        return check_config_numbers(config)


class _CheckedConfig:
    """The ``--config`` flag holder; reading ``.value`` checks the config's numbers."""

    def __init__(self, holder: Any, name: str) -> None:
        self._holder = holder
        self._name = name

    @property
    def value(self) -> ml_collections.ConfigDict:
        return check_config_numbers(self._holder.value, prefix=f"--{self._name}")


def _without_traceback(text: str) -> str:
    """``'flag --config=...: Error whilst parsing config file: <the exception's last line>'``.

    ml_collections puts the whole traceback of a failing ``get_config`` into its
    flag error; the user needs the last line (the exception), not the frames.
    """
    head, sep, trace = text.partition("Traceback (most recent call last):")
    if not sep:
        return text
    last = [line for line in trace.strip().splitlines() if line.strip()][-1:]
    return f"{head.strip()} {last[0].strip() if last else ''}".strip()


def _flags_parser(argv: list[str]) -> list[str]:
    """absl's default parser, but errors become one line and exit status 2."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as err:
        fail(_without_traceback(str(err)))
    except _OVERRIDE_ERRORS as err:  # ml_collections parses --config.<field> here
        fail(_override_message(err))


def _verbose() -> bool:
    holder = flags.FLAGS["verbosity"]
    return bool(holder.present and holder.value >= 1)


def _environment_error(err: OSError) -> bool:
    return err.errno in _ENVIRONMENT_ERRNOS or isinstance(err, PermissionError)


_OS_ERROR_CODE = re.compile(r"os_error_code='?(\d+)")
_LOCAL_FILE = re.compile(r'local file "([^"]+)"')


def _wrapped_errno(err: BaseException) -> int | None:
    """The environment errno of an error that is not an ``OSError`` but wraps one (tensorstore's
    ``RESOURCE_EXHAUSTED: ... [os_error_code='28']``), else ``None``."""
    if isinstance(err, OSError):
        return None
    match = _OS_ERROR_CODE.search(str(err))
    code = int(match.group(1)) if match else None
    return code if code in _ENVIRONMENT_ERRNOS else None


def _wrapped_path(err: BaseException) -> str:
    match = _LOCAL_FILE.search(str(err))
    return match.group(1) if match else type(err).__name__


def report_errors(main: Callable[[Sequence[str]], None], argv: Sequence[str]) -> None:
    """Runs ``main(argv)``; its errors become one line on stderr and an exit status.

    * :class:`UsageError`, ``ValueError`` (the library's bad-input error), a missing
      file or folder (``FileNotFoundError``, ``NotADirectoryError``,
      ``IsADirectoryError``): exit status 2;
    * an environment ``OSError`` (disk full, quota, permission denied, read-only),
      or an error wrapping one (tensorstore, orbax's writer, says ``RESOURCE_EXHAUSTED
      ... [os_error_code='28']`` in a ``ValueError``): exit status 1.

    With ``--verbosity=1`` (or more) the exception propagates with its traceback.
    """
    try:
        main(argv)
    except UsageError as err:
        fail(str(err))
    except Exception as err:  # noqa: BLE001  sorted below; anything else propagates unchanged
        if _verbose():
            raise
        code = _wrapped_errno(err)  # tensorstore (orbax's writer) reports ENOSPC as ValueError/RuntimeError
        if code is not None:
            fail(f"{os.strerror(code)} ({_wrapped_path(err)})", status=EXIT_ENVIRONMENT)
        if isinstance(err, (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError)):
            fail(str(err))
        if isinstance(err, OSError) and _environment_error(err):
            where = f" ({err.filename})" if err.filename else ""
            fail(f"{err.strerror or err}{where}", status=EXIT_ENVIRONMENT)
        raise
    finally:
        _lock.release_all()  # the workdir locks of lock_workdir


def _no_tracebacks(record: pylogging.LogRecord) -> bool:
    """Drops log records that carry a traceback (the error itself is reported in one line)."""
    return record.exc_info is None and not record.exc_text


def _quiet(args: Any) -> None:
    """``threading.excepthook`` / ``sys.unraisablehook`` that prints nothing (the run's own error
    is already one line; ``--verbosity=1`` keeps Python's hooks)."""
    del args


def _add_filter_once(target: pylogging.Filterer, log_filter: Callable[[pylogging.LogRecord], bool]) -> None:
    if log_filter not in target.filters:
        target.addFilter(log_filter)


def run(main: Callable[[Sequence[str]], None]) -> None:
    """``absl.app.run(main)`` with the one error path of :func:`report_errors`.

    absl logging is set to WARNING before ``main`` runs (``--verbosity`` overrides it).

    Args:
      main: the experiment's ``main(argv)``; it may raise :class:`UsageError` or
        ``ValueError`` for bad input (printed as ``error: ...``, exit 2) and should
        check its workdir with :func:`check_workdir` before training.
    """

    def wrapped(argv: Sequence[str]) -> None:
        # absl WARNING for every experiment (unless --verbosity is given): keeps JAX's INFO
        # lines (backend probing) and orbax's line per checkpoint off stderr; and no logged
        # traceback (orbax logs one when a background checkpoint write fails, e.g. on a full
        # disk, before the error reaches report_errors, which says it in one line).
        if not flags.FLAGS["verbosity"].present:
            logging.set_verbosity(logging.WARNING)
            _add_filter_once(logging.get_absl_handler(), _no_tracebacks)  # every logger's records
            _add_filter_once(logging.get_absl_logger(), _no_tracebacks)
            # Background threads (orbax's async writer) that fail after the error was reported,
            # e.g. "Event loop is closed" at exit after a full disk: no traceback either.
            threading.excepthook = _quiet
            sys.unraisablehook = _quiet
        extra = [arg for arg in argv[1:]]
        if extra:
            fail(f"unexpected positional arguments: {' '.join(extra)}")
        report_errors(main, argv)

    app.run(wrapped, flags_parser=_flags_parser)
