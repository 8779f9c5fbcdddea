"""The one compile cache of the training core.

``fit`` and ``run_sweep`` build their jitted programs through :func:`cached`,
keyed on what really changes the program: the kind of program, the model and
optimizer objects (their functions are the program; reuse the objects to reuse
the compilation), the loss, the penalty, the batch size, the hooks and the
static model configuration. Hyperparameters (learning rate, momentum, weight
decay, L2 strength, ...) are data: they live in the optimizer state or are
arguments of the program, so a search over them compiles once. Array shapes
are handled by ``jax.jit`` itself (one compilation per shape).
"""

from __future__ import annotations

import collections
from typing import Any, Callable, TypeVar

T = TypeVar("T")

MAX_ENTRIES = 64
_entries: collections.OrderedDict[tuple, Any] = collections.OrderedDict()


def cached(key: tuple, build: Callable[[], T]) -> T:
    """``build()`` once per ``key`` (least recently used first out, at most :data:`MAX_ENTRIES`).

    An unhashable key (e.g. an array among the static configuration) builds anew.
    """
    try:
        hash(key)
    except TypeError:
        return build()
    if key in _entries:
        _entries.move_to_end(key)
        return _entries[key]
    value = _entries[key] = build()
    if len(_entries) > MAX_ENTRIES:
        _entries.popitem(last=False)
    return value


def entries(kind: str) -> list[Any]:
    """The cached programs of one kind (``'fit'``, ``'sweep'``), for tests counting compilations."""
    return [value for key, value in _entries.items() if key[0] == kind]
