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
    "check_examples",
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
            high is None or (v < high if high_open else v <= high)
        )
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
        fail(
            f"{name} keyword arguments",
            f"some of ({', '.join(valid)})" if valid else "none",
            None,
            got_text=f"unknown {', '.join(unknown)}",
        )


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


def _first(mask: np.ndarray) -> int:
    """Index of the first example (axis 0) where ``mask`` holds anywhere."""
    return int(np.argmax(mask.reshape(mask.shape[0], -1).any(axis=1)))


def check_examples(
    name: str,
    images: Any,
    labels: Any,
    *,
    num_classes: Optional[int] = None,
    finite: bool = True,
    class_labels: bool = True,
) -> np.ndarray:
    """Checks a split at the door: numeric images, finite pixels, integer labels in ``[0, C)``.

    Bad data must never train silently: a NaN pixel, a label ``-1`` (which
    indexing would wrap to class ``C - 1``), a label ``>= C``, fractional float
    labels (which ``astype`` would truncate) or one-hot labels are refused here,
    in one line naming the split, the index of the first bad example and what
    was wrong.

    Args:
      name: the split, e.g. ``'train'`` or ``"npz:data.npz split 'test'"``.
      images: ``(N, ...)`` numeric array.
      labels: ``(N,)`` class indices (integer dtype, or floats holding integers).
      num_classes: ``C`` when known (the model's outputs, the dataset's metadata).
      finite: refuse NaN/inf pixels (``False``: the explicit opt-out).
      class_labels: check ``labels`` as class indices (``False``: any targets,
        e.g. for a custom loss; only the images are checked).

    Returns:
      The labels (as int32 when they are class indices).

    Raises:
      ValueError: ``name: expected ..., got ... at index i``.
    """
    x = np.asarray(images)
    y = np.asarray(labels)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        fail(f"{name} images", "a numeric array", None, got_text=f"dtype {x.dtype}")
    if finite and np.issubdtype(x.dtype, np.floating) and x.size and not np.isfinite(x).all():
        i = _first(~np.isfinite(x))
        value = x[i].reshape(-1)[np.argmax(~np.isfinite(x[i].reshape(-1)))]
        fail(f"{name} images", "finite pixels", None, got_text=f"{value.item()!r} in example {i}")
    if y.dtype == object or not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_):
        fail(f"{name} labels", "a numeric array", None, got_text=f"dtype {y.dtype}")
    if not class_labels:
        return y
    if y.ndim == 2 and y.shape[1] > 1:
        fail(
            f"{name} labels",
            "class indices of shape (N,)",
            None,
            got_text=f"shape {y.shape} (one-hot labels? pass labels.argmax(-1))",
        )
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        fail(f"{name} labels", f"shape ({x.shape[0]},), one per image", None, got_text=f"shape {y.shape}")
    if y.dtype == np.bool_ or not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        fail(f"{name} labels", "integer class indices", None, got_text=f"dtype {y.dtype}")
    if np.issubdtype(y.dtype, np.floating):
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.argmax(bad))
            fail(f"{name} labels", "integer class indices", None, got_text=f"{y[i].item()!r} at index {i}")
    if y.size and (y < 0).any():
        i = int(np.argmax(y < 0))
        fail(f"{name} labels", "class indices >= 0", None, got_text=f"{y[i].item()!r} at index {i}")
    if num_classes is not None and y.size and (y >= num_classes).any():
        i = int(np.argmax(y >= num_classes))
        fail(f"{name} labels", f"class indices in [0, {num_classes})", None, got_text=f"{y[i].item()!r} at index {i}")
    return y.astype(np.int32)
