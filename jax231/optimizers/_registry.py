"""Optimizers by name: one :class:`jax231._registry.Registry` over the update rules.

Names are those of the factories (``sgd``, ``adam``, ...). ``get`` checks the name
and the keyword arguments against the factory's signature before building.
Capabilities are attributes of the built object (``get('lbfgs').needs_objective``),
never of its name.
"""

from __future__ import annotations

from typing import Any

from jax231._registry import Registry
from jax231.optimizers._adam import adam, adamw
from jax231.optimizers._adaptive import adagrad, rmsprop
from jax231.optimizers._base import GradientTransformation
from jax231.optimizers._lbfgs import lbfgs
from jax231.optimizers._lion import lion
from jax231.optimizers._muon import muon
from jax231.optimizers._nadam import nadam, nadamw
from jax231.optimizers._schedule_free import schedule_free_adamw, schedule_free_sgd
from jax231.optimizers._second_order import bfgs, newton
from jax231.optimizers._sgd import momentum, nesterov, sgd
from jax231.optimizers._shampoo import shampoo

__all__ = ["NAMES", "REGISTRY", "get", "needs_value_fn"]

REGISTRY: Registry[GradientTransformation] = Registry("optimizer")
"""Every update rule of the notes, in the notes' order."""

for _factory in (
    sgd,
    momentum,
    nesterov,
    adagrad,
    rmsprop,
    adam,
    adamw,
    lbfgs,
    newton,
    bfgs,
    # The modern baselines (AlgoPerf's NAdamW; Lion; schedule-free; Muon; Shampoo).
    nadam,
    nadamw,
    lion,
    schedule_free_sgd,
    schedule_free_adamw,
    muon,
    shampoo,
):
    REGISTRY.register(_factory)

NAMES: tuple[str, ...] = REGISTRY.names
"""Valid names for :func:`get`."""


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
    return REGISTRY.get(name, **hyperparams)


def needs_value_fn(name: str) -> bool:
    """Whether ``update`` of optimizer ``name`` needs ``value_fn`` (and reads ``value``, ``grad``).

    Kept for callers that hold only a name; it reads the capability of the built
    object (``GradientTransformation.needs_objective``, every factory's defaults),
    so the answer is never a list of names. Prefer ``opt.needs_objective``.
    """
    return bool(get(name).needs_objective)
