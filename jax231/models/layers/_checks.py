"""Shape and argument checks shared by the layers.

Every check runs at trace time on static shapes, so a mistake raises a
``ValueError`` naming the argument instead of broadcasting silently or
producing NaN inside a compiled program.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def check_rank(name: str, x: Any, ranks: Sequence[int] | int, *, layout: str = "") -> None:
    """Raises ``ValueError`` unless ``x.ndim`` is one of ``ranks``."""
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    if jnp.ndim(x) not in ranks:
        expected = " or ".join(str(r) for r in ranks)
        hint = f" ({layout})" if layout else ""
        raise ValueError(
            f"`{name}` must have rank {expected}{hint}; got shape {jnp.shape(x)}."
        )


def check_min_rank(name: str, x: Any, min_rank: int, *, layout: str = "") -> None:
    """Raises ``ValueError`` unless ``x.ndim >= min_rank``."""
    if jnp.ndim(x) < min_rank:
        hint = f" ({layout})" if layout else ""
        raise ValueError(
            f"`{name}` must have rank >= {min_rank}{hint}; got shape {jnp.shape(x)}."
        )


def check_shape(name: str, x: Any, expected: tuple[int, ...], *, why: str = "") -> None:
    """Raises ``ValueError`` unless ``x.shape == expected``."""
    if tuple(jnp.shape(x)) != tuple(expected):
        reason = f" ({why})" if why else ""
        raise ValueError(
            f"`{name}` must have shape {tuple(expected)}{reason}; got {tuple(jnp.shape(x))}."
        )


def check_positive_int(name: str, value: Any) -> int:
    """Returns ``value`` as an ``int`` or raises ``ValueError`` unless it is an integer >= 1."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer; got {value!r}.")
    return int(value)


def check_static_bool(name: str, value: Any) -> bool:
    """Returns ``value`` as a Python bool or raises ``ValueError`` (e.g. for a traced flag)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(
            f"`{name}` must be a Python bool (it selects the computation at trace time); "
            f"got {type(value).__name__} {value!r}."
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
        raise ValueError(f"`{name}` must be one of {sorted(table)} (or a callable); got {value!r}.") from None
