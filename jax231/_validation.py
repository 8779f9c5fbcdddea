"""Argument checks with one message format: ``name: expected ..., got ...``.

Every check of a library argument (layers, models, losses, optimizers, schedules,
pipelines, experiments) goes through this module, so a bad value reads the same
wherever it is caught and a command-line front end can print it as one line.
Checks run on concrete Python / NumPy values at trace time; they never touch a
traced array (a traced hyperparameter passes unchecked, as it must under ``vmap``).

Every ``check_*`` returns the value in its canonical Python type (``int``,
``float``, ``bool``), so ``n = check_positive_int("n", n)`` both validates and
normalises.

Examples:
  >>> check_positive_int("batch_size", 0)
  Traceback (most recent call last):
  ValueError: batch_size: expected an int >= 1, got 0
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Collection, Iterable, NoReturn, Optional, Sequence

import jax
import numpy as np

__all__ = [
    "MAX_SEED",
    "check_values",
    "is_traced",
    "check_bool",
    "check_choice",
    "check_finite",
    "check_in_range",
    "check_int",
    "check_keywords",
    "check_non_negative",
    "check_non_negative_int",
    "check_positive",
    "check_positive_int",
    "check_rate",
    "check_seed",
    "error",
    "fail",
]

MAX_SEED = 2**32 - 1
"""Largest seed accepted by :func:`check_seed` (NumPy's and ``jax.random.key``'s common range)."""


def error(name: str, expected: str, got: Any, *, got_text: Optional[str] = None) -> ValueError:
    """The one-line ``ValueError`` ``f"{name}: expected {expected}, got {got!r}"``.

    Args:
      name: the argument (or config field) at fault, e.g. ``'learning_rate'``.
      expected: what a valid value looks like, e.g. ``'a finite float > 0'``.
      got: the value received (shown with ``repr``).
      got_text: shown verbatim instead of ``repr(got)`` (e.g. ``'shape (3, 4)'``).
    """
    shown = got_text if got_text is not None else repr(got)
    return ValueError(f"{name}: expected {expected}, got {shown}")


def fail(name: str, expected: str, got: Any, *, got_text: Optional[str] = None) -> NoReturn:
    """Raises :func:`error` ``(name, expected, got)``."""
    raise error(name, expected, got, got_text=got_text)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_int(name: str, value: Any, *, low: Optional[int] = None, high: Optional[int] = None) -> int:
    """``int(value)`` for an integer (not a bool) in ``[low, high]`` (either bound optional)."""
    ok = _is_int(value) and (low is None or value >= low) and (high is None or value <= high)
    if not ok:
        if low is not None and high is not None:
            expected = f"an int in [{low}, {high}]"
        elif low is not None:
            expected = f"an int >= {low}"
        elif high is not None:
            expected = f"an int <= {high}"
        else:
            expected = "an int"
        fail(name, expected, value)
    return int(value)


def check_positive_int(name: str, value: Any) -> int:
    """``int(value)`` for an integer >= 1."""
    return check_int(name, value, low=1)


def check_non_negative_int(name: str, value: Any) -> int:
    """``int(value)`` for an integer >= 0."""
    return check_int(name, value, low=0)


def check_seed(name: str, value: Any) -> int:
    """``int(value)`` for a seed in ``[0, MAX_SEED]`` (huge or negative seeds are refused here,
    not deep inside NumPy or ``jax.random``)."""
    return check_int(name, value, low=0, high=MAX_SEED)


def check_finite(name: str, value: Any) -> float:
    """``float(value)`` for a finite real number (not NaN, not +-inf, not a bool)."""
    if not _is_real(value) or not math.isfinite(float(value)):
        fail(name, "a finite number", value)
    return float(value)


def check_in_range(
    name: str,
    value: Any,
    *,
    low: Optional[float] = None,
    high: Optional[float] = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``float(value)`` for a finite number in the interval given by ``low``/``high``.

    Args:
      name: argument name for the message.
      value: the number.
      low, high: the bounds (``None``: unbounded on that side).
      low_open, high_open: exclude the bound itself (``(0, 1]`` is ``low_open=True``).
    """
    ok = _is_real(value) and math.isfinite(float(value))
    if ok:
        v = float(value)
        ok = (low is None or (v > low if low_open else v >= low)) and (
            high is None or (v < high if high_open else v <= high))
    if not ok:
        fail(name, f"a finite number {_interval(low, high, low_open, high_open)}", value)
    return float(value)


def _interval(low: Optional[float], high: Optional[float], low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return ""


def check_positive(name: str, value: Any) -> float:
    """``float(value)`` for a finite number > 0."""
    return check_in_range(name, value, low=0.0, low_open=True)


def check_non_negative(name: str, value: Any) -> float:
    """``float(value)`` for a finite number >= 0."""
    return check_in_range(name, value, low=0.0)


def check_rate(name: str, value: Any) -> float:
    """``float(value)`` for a probability in ``[0, 1)`` (a drop rate)."""
    return check_in_range(name, value, low=0.0, high=1.0, high_open=True)


def check_bool(name: str, value: Any) -> bool:
    """``bool(value)`` for a Python or NumPy bool (not a traced flag, not an int)."""
    if not isinstance(value, (bool, np.bool_)):
        fail(name, "a Python bool", value)
    return bool(value)


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``; the message lists them."""
    options = tuple(choices)
    try:
        ok = value in options
    except TypeError:  # unhashable / incomparable value
        ok = False
    if not ok:
        fail(name, f"one of {', '.join(map(repr, options))}", value)
    return value


def check_keywords(name: str, given: Collection[str], valid: Sequence[str]) -> None:
    """Raises unless every keyword in ``given`` is in ``valid`` (listing the valid ones).

    Args:
      name: what takes the keywords, e.g. ``'mlp'`` or ``'--config.model_kwargs'``.
      given: the keyword names received.
      valid: the keyword names accepted.
    """
    unknown = sorted(set(given) - set(valid))
    if unknown:
        fail(f"{name} keyword arguments",
             f"some of ({', '.join(valid)})" if valid else "none",
             None, got_text=f"unknown {', '.join(unknown)}")


def is_traced(value: Any) -> bool:
    """Whether ``value`` is a tracer (no value at trace time: under ``jit``/``vmap``/``grad``)."""
    return isinstance(value, jax.core.Tracer)


def check_values(
    name: str,
    value: Any,
    *,
    low: Optional[float] = None,
    high: Optional[float] = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Checks a number or array that may be traced: every concrete element finite and in range.

    A traced ``value`` passes (its value is unknown at trace time, as in a vmapped
    sweep); a callable (a schedule) passes too. Use it for hyperparameters and
    strengths that are data, not configuration.
    """
    if callable(value) or is_traced(value):
        return
    try:
        v = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        fail(name, "a number or a numeric array", value)
    ok = bool(np.all(np.isfinite(v)))
    if ok and low is not None:
        ok = bool(np.all(v > low if low_open else v >= low))
    if ok and high is not None:
        ok = bool(np.all(v < high if high_open else v <= high))
    if not ok:
        interval = _interval(low, high, low_open, high_open)
        fail(name, f"finite values {interval}".rstrip(), value)
