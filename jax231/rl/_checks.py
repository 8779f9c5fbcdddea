"""Argument checks of the RL package, in the project's one message format.

Every check raises a one-line ``ValueError`` ``name: expected ..., got ...``
naming the argument, before anything is traced or compiled.
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence


def check_discount(name: str, value: Any) -> float:
    """Returns ``value`` as a float; ``ValueError`` unless it lies in [0, 1)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name}: expected a discount in [0, 1), got {value!r}")
    return float(value)


def check_probability(name: str, value: Any) -> float:
    """Returns ``value`` as a float; ``ValueError`` unless it lies in [0, 1]."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name}: expected a probability in [0, 1], got {value!r}")
    return float(value)


def check_positive_int(name: str, value: Any) -> int:
    """Returns ``value`` as an int; ``ValueError`` unless it is an integer >= 1."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    return int(value)


def check_non_negative_int(name: str, value: Any) -> int:
    """Returns ``value`` as an int; ``ValueError`` unless it is an integer >= 0."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name}: expected an integer >= 0, got {value!r}")
    return int(value)


def check_positive(name: str, value: Any) -> float:
    """Returns ``value`` as a float; ``ValueError`` unless it is a number > 0."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not float(value) > 0.0:
        raise ValueError(f"{name}: expected a number > 0, got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """Returns ``value``; ``ValueError`` listing ``choices`` unless it is one of them."""
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
    return value
