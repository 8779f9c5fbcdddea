"""Shape and argument checks shared by the layers.

Every check runs at trace time on static shapes, so a mistake raises a
``ValueError`` naming the argument instead of broadcasting silently or
producing NaN inside a compiled program. Messages follow the one format of
:mod:`jax231._validation` (``name: expected ..., got ...``); the scalar checks
are that module's own.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jax231._validation import check_positive_int, fail

__all__ = [
    "check_min_rank",
    "check_positive_int",
    "check_rank",
    "check_shape",
    "check_static_bool",
    "fail",
    "is_concrete",
    "lookup",
]


def check_rank(name: str, x: Any, ranks: Sequence[int] | int, *, layout: str = "") -> None:
    """Raises ``ValueError`` unless ``x.ndim`` is one of ``ranks``."""
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    if jnp.ndim(x) not in ranks:
        expected = " or ".join(str(r) for r in ranks)
        hint = f" ({layout})" if layout else ""
        fail(name, f"rank {expected}{hint}", None, got_text=f"shape {jnp.shape(x)}")


def check_min_rank(name: str, x: Any, min_rank: int, *, layout: str = "") -> None:
    """Raises ``ValueError`` unless ``x.ndim >= min_rank``."""
    if jnp.ndim(x) < min_rank:
        hint = f" ({layout})" if layout else ""
        fail(name, f"rank >= {min_rank}{hint}", None, got_text=f"shape {jnp.shape(x)}")


def check_shape(name: str, x: Any, expected: tuple[int, ...], *, why: str = "") -> None:
    """Raises ``ValueError`` unless ``x.shape == expected``."""
    if tuple(jnp.shape(x)) != tuple(expected):
        reason = f" ({why})" if why else ""
        fail(name, f"shape {tuple(expected)}{reason}", tuple(jnp.shape(x)))


def check_static_bool(name: str, value: Any) -> bool:
    """Returns ``value`` as a Python bool or raises ``ValueError`` (e.g. for a traced flag)."""
    if not isinstance(value, (bool, np.bool_)):
        fail(
            name,
            "a Python bool (it selects the computation at trace time)",
            None,
            got_text=f"{type(value).__name__} {value!r}",
        )
    return bool(value)


def is_concrete(x: Any) -> bool:
    """Whether ``x`` has a value at trace time (i.e. is not a ``jax.core.Tracer``)."""
    return not isinstance(x, jax.core.Tracer)


def lookup(name: str, value: Any, table: Mapping[str, Any]) -> Any:
    """``table[value]``, or ``value`` itself when it is callable.

    Raises:
      ValueError: naming argument ``name`` and listing ``table``'s keys, for any other value.
    """
    if callable(value):
        return value
    try:
        return table[value]
    except (KeyError, TypeError):
        pass
    fail(name, f"one of {sorted(table)} or a callable", value)
