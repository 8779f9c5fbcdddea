"""Argument checks shared by the generative models, in the project's one message format.

Every check raises a one-line ``ValueError`` ``name: expected ..., got ...`` naming
the argument, at trace time (on Python values, never on traced arrays).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import jax

__all__ = ["check_choice", "check_levels", "check_positive_int", "check_temperature"]


def check_positive_int(name: str, value: Any) -> int:
    """Returns ``value`` as an int, or raises unless it is an integer >= 1 (a bool is not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    return int(value)


def check_levels(value: Any) -> int:
    """``levels``, the number of intensity values of a discrete image: an int >= 2."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 2:
        raise ValueError(f"levels: expected an int >= 2 (intensity values per pixel), got {value!r}")
    return int(value)


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """Returns ``value`` unless it is not one of ``choices``."""
    if value not in tuple(choices):
        raise ValueError(f"{name}: expected one of {list(choices)}, got {value!r}")
    return value


def check_temperature(value: Any) -> None:
    """Raises unless a concrete ``temperature`` is > 0; a traced one (a vmapped sweep) passes."""
    try:
        concrete = float(value)
    except (TypeError, jax.errors.ConcretizationTypeError):
        return
    if not concrete > 0:
        raise ValueError(f"temperature: expected a float > 0, got {value!r}")
