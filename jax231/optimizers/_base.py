"""The optimizer protocol (optax's), hyperparameters held in the state, and checks.

An optimizer is a :class:`GradientTransformation`: a NamedTuple of two pure
functions. ``init(params) -> state`` and
``update(grads, state, params=None, **extra) -> (updates, state)``; only
:func:`apply_updates` changes parameters. The protocol is optax's, so these
optimizers run inside ``optax.chain`` and their updates go through
``optax.apply_updates`` as well.

Hyperparameters live in the state as a dict of JAX scalars
(``state.hyperparams['learning_rate']``). ``update`` reads them from there, so
that ``set_hyperparams(state, learning_rate=lrs)`` followed by ``jax.vmap`` runs
many learning rates in one compiled program.

A hyperparameter given as a schedule ``step -> value`` is evaluated at the
state's ``step`` (the number of updates already made, 0 for the first one) at
every update, and the value used is written back into ``state.hyperparams`` so
it can be read (for logging). Setting a scheduled hyperparameter by hand is
therefore overwritten at the next update: wrap the schedule instead.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jax231._validation import check_values
from jax231.types import Array, ArrayLike, EvalParamsFn, OptState, Params, PyTree, ScalarOrSchedule, Updates
from jax231.types import TransformInitFn as InitFn
from jax231.types import TransformUpdateFn as UpdateFn


class GradientTransformation(NamedTuple):
    """A pair of pure functions ``(init, update)`` in optax's protocol, plus capabilities.

    The first two fields are optax's protocol (optax code reads ``.init`` and
    ``.update`` only). The capability fields have defaults, so
    ``GradientTransformation(init, update)`` is a plain rule; a training loop
    asks the built object what it needs, never its name.

    Attributes:
      init: ``init(params) -> state``.
      update: ``update(grads, state, params=None, **extra) -> (updates, state)``.
        Unknown keyword ``extra`` arguments are accepted and ignored, so that a
        training loop can make one uniform call (L-BFGS is the one rule that
        reads extras: ``value``, ``grad`` and ``value_fn``).
      needs_objective: whether ``update`` needs the keyword extras ``value``,
        ``grad`` and ``value_fn`` (the objective; L-BFGS and line searches).
      eval_params: ``eval_params(state, params) -> params`` gives the parameters
        to evaluate when they differ from the iterate (an EMA / Polyak average
        held in the state, schedule-free's averaged point); ``None`` means
        evaluate ``params`` themselves.
    """

    init: InitFn
    update: UpdateFn
    needs_objective: bool = False
    eval_params: EvalParamsFn | None = None


def apply_updates(params: Params, updates: Updates) -> Params:
    """Returns ``params + updates``, each leaf keeping the dtype of ``params``.

    Args:
      params: the current parameters.
      updates: updates with the same tree structure, as returned by ``update``.

    Returns:
      The new parameters.
    """
    return jax.tree_util.tree_map(lambda p, u: jnp.asarray(p + u).astype(jnp.result_type(p)), params, updates)


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Applies ``transforms`` one after the other; the state is a tuple of their states.

    Extras given to ``update`` reach every transform (each ignores what it
    does not use).

    Examples:
      >>> opt = chain(clip_by_global_norm(1.0), adam(learning_rate=1e-3))

    Args:
      *transforms: the transformations, first applied first.

    Returns:
      A :class:`GradientTransformation` whose state is ``tuple`` of the states.
    """

    def init(params: Params) -> tuple:
        return tuple(t.init(params) for t in transforms)

    def update(grads: Updates, state: tuple, params: Params | None = None, **extra: Any) -> tuple[Updates, tuple]:
        if not isinstance(state, tuple) or len(state) != len(transforms):
            raise ValueError(
                f"state: expected a tuple of {len(transforms)} states (one per chained "
                f"transform), got {type(state).__name__}"
            )
        new_state = []
        for t, s in zip(transforms, state):
            grads, s = t.update(grads, s, params, **extra)
            new_state.append(s)
        return grads, tuple(new_state)

    def eval_params(state: tuple, params: Params) -> Params:
        for t, s in zip(transforms, state):
            if getattr(t, "eval_params", None) is not None:
                params = t.eval_params(s, params)
        return params

    return GradientTransformation(
        init,
        update,
        needs_objective=any(getattr(t, "needs_objective", False) for t in transforms),
        eval_params=eval_params if any(getattr(t, "eval_params", None) for t in transforms) else None,
    )


# ----------------------------------------------------------------------------- checks


def _concrete(name: str, value: Any) -> np.ndarray | None:
    """The value as a NumPy scalar, or None when it is traced or a schedule."""
    if callable(value) or isinstance(value, jax.core.Tracer):
        return None
    try:
        v = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: expected a number, a scalar array or a schedule, got {value!r}") from e
    if v.ndim != 0:
        raise ValueError(f"{name}: expected a scalar (for many values, vmap over set_hyperparams), got shape {v.shape}")
    return v


def check_non_negative(name: str, value: Any) -> None:
    """Raises ``ValueError`` unless a concrete ``value`` is finite and >= 0 (schedules pass)."""
    v = _concrete(name, value)
    if v is not None and not (np.all(np.isfinite(v)) and np.all(v >= 0)):
        raise ValueError(f"{name}: expected a finite value >= 0, got {value!r}")


def check_positive(name: str, value: Any) -> None:
    """Raises ``ValueError`` unless a concrete ``value`` is finite and > 0."""
    v = _concrete(name, value)
    if v is not None and not (np.all(np.isfinite(v)) and np.all(v > 0)):
        raise ValueError(f"{name}: expected a finite value > 0, got {value!r}")


def check_unit_interval(name: str, value: Any) -> None:
    """Raises ``ValueError`` unless a concrete ``value`` lies in [0, 1)."""
    v = _concrete(name, value)
    if v is not None and not np.all((v >= 0) & (v < 1)):
        raise ValueError(f"{name}: expected a value in [0, 1), got {value!r}")


def check_tree_match(tree: PyTree, reference: PyTree, *, name: str = "grads", reference_name: str = "state") -> None:
    """Raises ``ValueError`` naming both structures when two trees do not match.

    Compares tree structures and leaf shapes (at trace time, so it costs
    nothing in compiled code).
    """
    a = jax.tree_util.tree_structure(tree)
    b = jax.tree_util.tree_structure(reference)
    if a != b:
        raise ValueError(
            f"{name} does not match {reference_name}: {name} has structure {a}, {reference_name} has structure {b}"
        )
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(tree), jax.tree_util.tree_leaves(reference)):
        if jnp.shape(x) != jnp.shape(y):
            raise ValueError(
                f"{name}{jax.tree_util.keystr(path)} has shape {jnp.shape(x)} but "
                f"{reference_name}{jax.tree_util.keystr(path)} has shape {jnp.shape(y)}"
            )


def check_params_given(updates: PyTree, params: PyTree | None, *, why: str) -> PyTree:
    """For a rule whose ``update`` acts on the parameters: ``params`` given and matching ``updates``.

    Raises ``ValueError`` ``params: expected the parameters (<why>), got None`` when absent, else
    :func:`check_tree_match`'s message; returns ``params``.
    """
    if params is None:
        raise ValueError(f"params: expected the parameters ({why}), got None")
    check_tree_match(updates, params, name="updates", reference_name="params")
    return params


# ------------------------------------------------------------------ hyperparameters


def _float(value: ArrayLike) -> Array:
    return jnp.asarray(value, dtype=jnp.result_type(float))


def init_hyperparams(spec: Mapping[str, ScalarOrSchedule]) -> dict[str, Array]:
    """The ``hyperparams`` dict of a fresh state: constants as scalars, schedules at step 0."""
    return {k: _float(v(0) if callable(v) else v) for k, v in spec.items()}


def current_hyperparams(
    spec: Mapping[str, ScalarOrSchedule], hyperparams: Mapping[str, Array], step: ArrayLike
) -> dict[str, Array]:
    """Hyperparameters for the update at ``step``: from the state, schedules re-evaluated."""
    out = dict(hyperparams)
    for k, v in spec.items():
        if callable(v):
            out[k] = jnp.asarray(v(step), dtype=jnp.result_type(hyperparams[k]))
    return out


def _set(state: Any, values: Mapping[str, Any], found: set[str]) -> Any:
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        if "hyperparams" in state._fields:
            hp = dict(state.hyperparams)
            for k, v in values.items():
                if k in hp:
                    hp[k] = jnp.asarray(v, dtype=jnp.result_type(hp[k]))
                    found.add(k)
            state = state._replace(hyperparams=hp)
        return type(state)(*(_set(s, values, found) for s in state))
    if isinstance(state, (tuple, list)):
        return type(state)(_set(s, values, found) for s in state)
    return state


def _names(state: Any) -> set[str]:
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        own = set(state.hyperparams) if "hyperparams" in state._fields else set()
        return own.union(*(_names(s) for s in state))
    if isinstance(state, (tuple, list)):
        return set().union(*(_names(s) for s in state))
    return set()


def set_hyperparams(state: OptState, **values: ArrayLike) -> OptState:
    """Returns ``state`` with the named hyperparameters replaced, through chains.

    Every state in ``state`` (a state, or nested tuples of states as made by
    :func:`chain`) that holds a hyperparameter of that name gets the new value,
    cast to the dtype already there. Values may be traced, which is how a sweep
    runs many settings in one program.

    Examples:
      >>> opt = momentum(learning_rate=0.1)
      >>> lrs = jnp.logspace(-3, 0, 8)
      >>> states = jax.vmap(lambda lr: set_hyperparams(opt.init(params), learning_rate=lr))(lrs)
      >>> updates, states = jax.vmap(opt.update, in_axes=(None, 0))(grads, states)

    Args:
      state: an optimizer state.
      **values: new hyperparameter values by name.

    Returns:
      The new state.

    Raises:
      ValueError: when a name is held by no state in ``state``, or a concrete value
        is not finite or negative (every hyperparameter of the notes is >= 0).
    """
    for name, value in values.items():  # concrete values only: a sweep's traced values pass
        check_values(name, value, low=0.0)
    found: set[str] = set()
    new = _set(state, values, found)
    missing = set(values) - found
    if missing:
        raise ValueError(
            f"set_hyperparams: no hyperparameter named {sorted(missing)} in this state; "
            f"it holds {sorted(_names(state))}"
        )
    return new


def get_hyperparams(state: OptState) -> dict[str, Array]:
    """All hyperparameters held in ``state`` (later states in a chain win on clashes)."""
    out: dict[str, Array] = {}

    def visit(s: Any) -> None:
        if isinstance(s, tuple) and hasattr(s, "_fields"):
            if "hyperparams" in s._fields:
                out.update(s.hyperparams)
            for c in s:
                visit(c)
        elif isinstance(s, (tuple, list)):
            for c in s:
                visit(c)

    visit(state)
    return out
