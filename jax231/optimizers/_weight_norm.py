"""Fixed-norm weights: every matrix rescaled to a set Frobenius norm before the step lands.

airbench94_muon's Muon does ``p *= sqrt(len(p)) / ||p||`` before ``p -= lr * update``: with
orthogonalised updates of a fixed size, holding the weight's norm fixed makes the learning
rate an angle (no weight decay needed on those weights).

References:
  K. Jordan, cifar10-airbench, ``airbench94_muon.py`` (2024).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jax231.optimizers._base import GradientTransformation, check_params_given
from jax231.types import Array, Params, Updates


class NormalizeWeightsState(NamedTuple):
    """State of :func:`normalize_weights`: ``step``, the number of updates made."""

    step: Array


def normalize_weights() -> GradientTransformation:
    """Rescales each weight of rank >= 2 to norm ``sqrt(fan_out)``, then adds the incoming update.

    .. math:: \\theta + u' = \\frac{\\sqrt{n_{out}}}{\\|\\theta\\|_F}\\,\\theta + u, \\qquad
              u' = u + \\left(\\frac{\\sqrt{n_{out}}}{\\|\\theta\\|_F} - 1\\right)\\theta

    with :math:`n_{out}` the last axis (outputs of a dense ``(in, out)`` or HWIO conv weight:
    PyTorch's ``len(p)`` of an ``(out, in, kh, kw)`` filter). Leaves of rank 0/1 pass through.
    Chain it after the rule (``chain(muon(...), normalize_weights())``); ``update`` needs ``params``.

    Returns:
      A :class:`GradientTransformation` with :class:`NormalizeWeightsState`.

    Raises:
      ValueError: when ``update`` gets ``params=None``.
    """

    def init(params: Params) -> NormalizeWeightsState:
        del params
        return NormalizeWeightsState(jnp.zeros((), jnp.int32))

    def update(
        updates: Updates, state: NormalizeWeightsState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, NormalizeWeightsState]:
        del extra
        params = check_params_given(updates, params, why="normalize_weights rescales them")

        def rescale(p: Array, u: Array) -> Array:
            if jnp.ndim(p) < 2:
                return u
            factor = math.sqrt(p.shape[-1]) / jnp.linalg.norm(p.astype(jnp.float32))
            return (u + (factor - 1.0) * p).astype(jnp.result_type(u))

        return jax.tree_util.tree_map(rescale, params, updates), NormalizeWeightsState(state.step + 1)

    return GradientTransformation(init, update)  # type: ignore[arg-type]  # first param is named `updates`
