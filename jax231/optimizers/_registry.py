"""A small typed registry: optimizers by name, for experiment configs.

Names map to real factories (go-to-definition works); an unknown name raises a
``ValueError`` that lists the valid ones.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from jax231.optimizers._adam import adam, adamw
from jax231.optimizers._adaptive import adagrad, rmsprop
from jax231.optimizers._base import GradientTransformation
from jax231.optimizers._lbfgs import lbfgs
from jax231.optimizers._lion import lion
from jax231.optimizers._muon import muon
from jax231.optimizers._nadam import nadam, nadamw
from jax231.optimizers._schedule_free import schedule_free_adamw, schedule_free_sgd
from jax231.optimizers._shampoo import shampoo
from jax231.optimizers._sgd import momentum, nesterov, sgd

_FACTORIES: dict[str, Callable[..., GradientTransformation]] = {
    "sgd": sgd,
    "momentum": momentum,
    "nesterov": nesterov,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adam": adam,
    "adamw": adamw,
    "lbfgs": lbfgs,
    "nadam": nadam,
    "nadamw": nadamw,
    "lion": lion,
    "schedule_free_sgd": schedule_free_sgd,
    "schedule_free_adamw": schedule_free_adamw,
    "muon": muon,
    "shampoo": shampoo,
}

NAMES: tuple[str, ...] = tuple(_FACTORIES)
"""Valid names for :func:`get`."""

_NEEDS_VALUE_FN = frozenset({"lbfgs"})


def _check_name(name: str) -> None:
    if name not in _FACTORIES:
        raise ValueError(f"name: unknown optimizer {name!r}; valid names are {', '.join(NAMES)}")


def get(name: str, **hyperparams: Any) -> GradientTransformation:
    """The optimizer called ``name``, built with ``hyperparams``.

    Examples:
      >>> opt = get("momentum", learning_rate=0.1, momentum=0.9)

    Args:
      name: one of :data:`NAMES`.
      **hyperparams: keyword arguments of that factory (e.g. ``learning_rate``).

    Returns:
      The :class:`GradientTransformation`.

    Raises:
      ValueError: for an unknown name (listing the valid names), an argument
        the factory does not take (listing those it takes), or a bad value.
    """
    _check_name(name)
    factory = _FACTORIES[name]
    params = inspect.signature(factory).parameters
    unknown = sorted(set(hyperparams) - set(params))
    if unknown:
        raise ValueError(
            f"hyperparams: {name} takes {', '.join(params)}; got unknown {', '.join(unknown)}"
        )
    return factory(**hyperparams)


def needs_value_fn(name: str) -> bool:
    """Whether ``update`` of optimizer ``name`` needs ``value_fn`` (and reads ``value``, ``grad``).

    A training loop uses this to pass ``value_fn=`` (L-BFGS); every other rule
    ignores such extras, so passing them always is also fine.
    """
    _check_name(name)
    return name in _NEEDS_VALUE_FN
