"""Type aliases shared by every jax231 module.

One place for the names that appear in signatures, so that a reader sees the
same vocabulary in layers, losses, optimizers and training code.
"""

from __future__ import annotations

from typing import Any, Callable, Union

import jax
from jax.typing import ArrayLike

Array = jax.Array
"""A JAX array (what functions return)."""

PyTree = Any
"""A nested structure of dicts, lists, tuples and NamedTuples with array leaves."""

Params = PyTree
"""Model parameters: nested dicts with readable string keys."""

Updates = PyTree
"""Parameter updates (same structure as :data:`Params`)."""

OptState = PyTree
"""An optimizer state: a NamedTuple (or tuple of NamedTuples for chains)."""

ModelState = PyTree
"""Non-trainable model state such as BatchNorm running statistics."""

PRNGKey = jax.Array
"""A JAX random key (``jax.random.key`` or ``jax.random.PRNGKey``)."""

Shape = tuple[int, ...]

Schedule = Callable[[ArrayLike], ArrayLike]
"""A learning-rate schedule: ``step -> learning rate``."""

ScalarOrSchedule = Union[float, ArrayLike, Schedule]
"""A hyperparameter given as a constant, an array, or a schedule of the step."""

__all__ = [
    "Array",
    "ArrayLike",
    "ModelState",
    "OptState",
    "Params",
    "PRNGKey",
    "PyTree",
    "ScalarOrSchedule",
    "Schedule",
    "Shape",
    "Updates",
]
