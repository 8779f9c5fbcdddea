"""Type aliases shared by every jax231 module.

One place for the names that appear in signatures, so that a reader sees the
same vocabulary in layers, losses, optimizers and training code.

Besides the aliases, two structural protocols type the training core (``fit``,
``make_train_step``, ``run_sweep``) without naming a concrete class:

* :class:`Model`: anything with ``init(rng, input_shape) -> (params, state)`` and
  ``apply(params, state, x, *, train, rng=None) -> (outputs, state)``
  (:class:`jax231.models.Model` is one);
* :class:`GradientTransformation`: anything with optax's ``init(params) -> state``
  and ``update(grads, state, params=None, **extra) -> (updates, state)``, plus the
  capability attributes ``needs_objective`` and ``eval_params``
  (:class:`jax231.optimizers.GradientTransformation` is one).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Protocol, Union

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


class InitFn(Protocol):
    """``init(rng, input_shape) -> (params, state)`` of a model (``input_shape`` without batch)."""

    def __call__(self, rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]: ...


class ApplyFn(Protocol):
    """``apply(params, state, x, *, train, rng=None) -> (outputs, new_state)`` of a model.

    ``x`` is an ``(N, ...)`` array or a pytree of them, and the outputs are
    logits ``(N, C)`` or any pytree with the leading axis ``N`` (a multi-output
    model's dict, a generative model's per-example terms): the training core
    passes them to the loss as they are (``jax231/training/_batch.py``).
    """

    def __call__(
        self,
        params: Params,
        state: ModelState,
        x: PyTree,
        *,
        train: bool,
        rng: Optional[PRNGKey] = None,
    ) -> tuple[PyTree, ModelState]: ...


class Model(Protocol):
    """A model as two pure functions (structural: any object with these attributes)."""

    @property
    def init(self) -> InitFn: ...

    @property
    def apply(self) -> ApplyFn: ...


class TransformInitFn(Protocol):
    """``init(params) -> state`` of an optimizer."""

    def __call__(self, params: Params) -> OptState: ...


class TransformUpdateFn(Protocol):
    """``update(grads, state, params=None, **extra) -> (updates, state)`` of an optimizer."""

    def __call__(
        self, grads: Updates, state: OptState, params: Optional[Params] = None, **extra: Any
    ) -> tuple[Updates, OptState]: ...


class EvalParamsFn(Protocol):
    """``eval_params(state, params) -> params``: the parameters to evaluate (e.g. an EMA)."""

    def __call__(self, state: OptState, params: Params) -> Params: ...


class GradientTransformation(Protocol):
    """optax's optimizer protocol plus jax231's capability attributes (structural)."""

    @property
    def init(self) -> TransformInitFn: ...

    @property
    def update(self) -> TransformUpdateFn: ...

    @property
    def needs_objective(self) -> bool: ...

    @property
    def eval_params(self) -> Optional[EvalParamsFn]: ...


__all__ = [
    "ApplyFn",
    "Array",
    "ArrayLike",
    "EvalParamsFn",
    "GradientTransformation",
    "InitFn",
    "Model",
    "ModelState",
    "OptState",
    "Params",
    "PRNGKey",
    "PyTree",
    "ScalarOrSchedule",
    "Schedule",
    "Shape",
    "TransformInitFn",
    "TransformUpdateFn",
    "Updates",
]
