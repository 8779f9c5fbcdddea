"""The uniform model API: a :class:`Model` is a pair of pure functions.

Every classifier of :mod:`jax231.models` is built by a factory returning
``Model(init, apply)``:

* ``init(rng, input_shape) -> (params, state)``: ``input_shape`` excludes the
  batch dimension (``(32, 32, 3)`` for CIFAR-10, ``(40, 1)`` for MNIST-1D);
  ``params`` are nested dicts with readable keys; ``state`` holds the BatchNorm
  running statistics keyed like ``params`` (``{}`` for models without any).
* ``apply(params, state, x, *, train, rng=None) -> (logits, new_state)``: in
  train mode the BatchNorm statistics are updated and ``rng`` drives dropout,
  DropConnect and stochastic depth; in eval mode ``state`` is returned unchanged.

:class:`Model` satisfies the structural protocol :class:`jax231.types.Model`, which
is what the training code is typed against. The by-name lookup lives in
:mod:`jax231.models._registry`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax

from jax231.types import ApplyFn, InitFn, Params

__all__ = ["ApplyFn", "InitFn", "Model", "count_params"]


class Model(NamedTuple):
    """A model as two pure functions.

    Attributes:
      init: ``init(rng, input_shape) -> (params, state)``; ``input_shape`` has no
        batch dimension.
      apply: ``apply(params, state, x, *, train, rng=None) -> (logits, new_state)``
        with ``x`` of shape ``(N, *input_shape)`` and logits ``(N, num_classes)``.
    """

    init: InitFn
    apply: ApplyFn


def count_params(params: Params) -> int:
    """Total number of scalars in a parameter tree."""
    return int(sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(params)))
