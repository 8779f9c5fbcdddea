"""Newton's method and dense BFGS for small problems: minimisers and update rules.

The notes' second-order section: Newton's update
:math:`x \\leftarrow x - [H f(x)]^{-1} \\nabla f(x)` needs the Hessian (here
``jax.hessian`` of the flattened parameters, :math:`n \\times n`) and its
solve, :math:`O(n^3)`; BFGS keeps a dense :math:`n \\times n` approximation of
the *inverse* Hessian, :math:`O(n^2)` memory, refined from gradient changes.
Both are for problems of at most a few thousand parameters; :func:`lbfgs` is the
limited-memory form for large ones.

Both iterations step along their direction with the strong Wolfe line search
of :mod:`._linesearch` (first trial step 1, the Newton/quasi-Newton step), and
fall back to steepest descent when the direction is not a descent direction
(an indefinite Hessian far from a minimum).

References:
  CS231n notes, "Neural Networks Part 3", second order methods
  (https://cs231n.github.io/neural-networks-3/#second);
  Nocedal and Wright, "Numerical Optimization", 2nd ed., Algorithm 6.1 and
  equations (3.5)-(3.6) and (6.17).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, cast

import jax
import jax.numpy as jnp
from jax import lax
from jax.flatten_util import ravel_pytree

from jax231.optimizers._base import (
    GradientTransformation,
    check_non_negative,
    current_hyperparams,
    init_hyperparams,
)
from jax231.optimizers._linesearch import check_wolfe_constants, objective_gradient, strong_wolfe_line_search
from jax231.types import Array, ArrayLike, Params, PyTree, ScalarOrSchedule, Updates

METHODS = ("newton", "bfgs")


class SecondOrderState(NamedTuple):
    """State of :func:`newton` and :func:`bfgs` (and of their minimiser loop).

    Attributes:
      step: int32, iterations made.
      inv_hessian: BFGS's ``(n, n)`` inverse-Hessian approximation :math:`H_k` of
        the flattened parameters (``(0, 0)`` for Newton, which recomputes the
        Hessian at every step).
      num_fun_evals: int32, calls of ``value_and_grad`` made by the line searches.
      hyperparams: ``{'learning_rate': scalar, 'damping': scalar}``: the first
        trial step of the line search (1.0 is the textbook step) and Newton's
        Levenberg damping :math:`\\lambda` (:math:`H + \\lambda I`).
    """

    step: Array
    inv_hessian: Array
    num_fun_evals: Array
    hyperparams: dict[str, Array]


class MinimizeResult(NamedTuple):
    """Result of :func:`newton_minimize` and :func:`bfgs_minimize`.

    Attributes:
      params: the final point (the tree structure of ``x0``).
      value: ``fun(params)``.
      grad_norm: Euclidean norm of ``grad fun(params)`` over all leaves.
      iterations: int32, iterations made.
      num_fun_evals: int32, calls of ``value_and_grad(fun)`` (one at ``x0`` plus
        one per line-search trial; Newton's Hessians are not counted).
      converged: bool, ``grad_norm <= tol``.
    """

    params: PyTree
    value: Array
    grad_norm: Array
    iterations: Array
    num_fun_evals: Array
    converged: Array


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method: expected one of {list(METHODS)}, got {method!r}")


def _init_state(flat: Array, method: str, spec: dict[str, Any]) -> SecondOrderState:
    n = flat.shape[0] if method == "bfgs" else 0
    dtype = jnp.promote_types(flat.dtype, jnp.float32)
    return SecondOrderState(
        step=jnp.zeros((), jnp.int32),
        inv_hessian=jnp.eye(n, dtype=dtype),
        num_fun_evals=jnp.zeros((), jnp.int32),
        hyperparams=init_hyperparams(spec),
    )


def newton_direction(hessian: Array, grad: Array, damping: ArrayLike = 0.0) -> Array:
    """The Newton direction :math:`d = -(H + \\lambda I)^{-1} g` by a linear solve (no inverse)."""
    n = grad.shape[0]
    return -jnp.linalg.solve(hessian + damping * jnp.eye(n, dtype=hessian.dtype), grad)


def bfgs_inverse_update(inv_hessian: Array, s: Array, y: Array) -> Array:
    """The BFGS update of the inverse Hessian (Nocedal and Wright, eq. 6.17).

    .. math:: H_{k+1} = (I - \\rho s y^T) H_k (I - \\rho y s^T) + \\rho s s^T,
              \\qquad \\rho = 1 / (y^T s)

    with :math:`s = x_{k+1} - x_k` and :math:`y = \\nabla f_{k+1} - \\nabla f_k`.
    The pair is skipped (``H`` returned unchanged) unless :math:`y^T s > 0`,
    which keeps :math:`H` positive definite.
    """
    sy = jnp.vdot(s, y)
    keep = sy > jnp.finfo(inv_hessian.dtype).eps * jnp.vdot(y, y)
    rho = 1.0 / jnp.where(keep, sy, 1.0)
    hy = inv_hessian @ y
    # Expanded form of the product: H - rho (s (Hy)^T + (Hy) s^T) + (rho^2 y^T H y + rho) s s^T.
    new = (
        inv_hessian
        - rho * (jnp.outer(s, hy) + jnp.outer(hy, s))
        + (rho * rho * jnp.vdot(y, hy) + rho) * jnp.outer(s, s)
    )
    return jnp.where(keep, new, inv_hessian)


class _Step(NamedTuple):
    x: Array
    value: Array
    grad: Array
    state: SecondOrderState
    success: Array


def _iterate(
    flat_fun: Callable[[Array], Array],
    x: Array,
    value: Array,
    grad: Array,
    state: SecondOrderState,
    *,
    method: str,
    c1: float,
    c2: float,
    max_ls: int,
) -> _Step:
    """One iteration on flat parameters: direction, line search, (BFGS) inverse-Hessian update."""
    hp = state.hyperparams
    # 1. d = -H^{-1} g (Newton, exact Hessian) or d = -H_k g (BFGS approximation).
    if method == "newton":
        d = newton_direction(jax.hessian(flat_fun)(x), grad, hp["damping"])
    else:
        d = -state.inv_hessian @ grad
    # 2. Steepest descent when d is not a descent direction (or not finite).
    descent = (jnp.vdot(grad, d) < 0) & jnp.all(jnp.isfinite(d))
    d = jnp.where(descent, d, -grad)
    # 3. Strong Wolfe line search from the full step alpha = learning_rate (1 = textbook).
    ls = strong_wolfe_line_search(
        jax.value_and_grad(flat_fun),
        x,
        value,
        grad,
        d,
        init_step=hp["learning_rate"],
        c1=c1,
        c2=c2,
        max_steps=max_ls,
    )
    s = ls.step * d
    inv_hessian = state.inv_hessian
    if method == "bfgs":
        y = ls.grad - grad
        # Nocedal and Wright (6.20): before the first update, scale H_0 = (y^T s / y^T y) I.
        first = (state.step == 0) | ~descent
        scale = jnp.vdot(y, s) / jnp.maximum(jnp.vdot(y, y), jnp.finfo(y.dtype).tiny)
        base = jnp.where(first & (scale > 0), scale * jnp.eye(x.shape[0], dtype=x.dtype), inv_hessian)
        inv_hessian = bfgs_inverse_update(base, s, y)
    new_state = state._replace(
        step=state.step + 1, inv_hessian=inv_hessian, num_fun_evals=state.num_fun_evals + ls.num_evals
    )
    return _Step(x=x + s, value=ls.value, grad=ls.grad, state=new_state, success=ls.success)


# --------------------------------------------------------------------- minimisers


@functools.partial(jax.jit, static_argnames=("fun", "method", "c1", "c2", "max_linesearch_steps"))
def _minimize(fun, x0, max_iters, tol, damping, *, method, c1, c2, max_linesearch_steps) -> MinimizeResult:
    flat0, unravel = ravel_pytree(x0)
    flat_fun = lambda v: fun(unravel(v))  # noqa: E731
    f0, g0 = jax.value_and_grad(flat_fun)(flat0)
    state = _init_state(flat0, method, {"learning_rate": 1.0, "damping": damping})
    state = state._replace(num_fun_evals=jnp.ones((), jnp.int32))

    def cond(step: _Step) -> Array:
        return (step.state.step < max_iters) & (jnp.linalg.norm(step.grad) > tol) & step.success

    def body(step: _Step) -> _Step:
        return _iterate(
            flat_fun,
            step.x,
            step.value,
            step.grad,
            step.state,
            method=method,
            c1=c1,
            c2=c2,
            max_ls=max_linesearch_steps,
        )

    final = lax.while_loop(cond, body, _Step(flat0, f0, g0, state, jnp.ones((), bool)))
    gnorm = jnp.linalg.norm(final.grad)
    return MinimizeResult(
        params=unravel(final.x),
        value=final.value,
        grad_norm=gnorm,
        iterations=final.state.step,
        num_fun_evals=final.state.num_fun_evals,
        converged=gnorm <= tol,
    )


def _check_common(max_iters: Any, tol: Any, c1: Any, c2: Any, max_linesearch_steps: Any) -> None:
    check_non_negative("max_iters", max_iters)
    check_non_negative("tol", tol)
    check_wolfe_constants(c1, c2, max_linesearch_steps)


def newton_minimize(
    fun: Callable[[PyTree], ArrayLike],
    x0: PyTree,
    *,
    max_iters: int = 100,
    tol: float = 1e-6,
    damping: float = 0.0,
    c1: float = 1e-4,
    c2: float = 0.9,
    max_linesearch_steps: int = 20,
) -> MinimizeResult:
    """Minimises ``fun`` by Newton's method with a line search, in one jitted ``lax.while_loop``.

    .. math:: x_{k+1} = x_k - \\alpha_k\\, (H_k + \\lambda I)^{-1} \\nabla f(x_k)

    with :math:`H_k` = ``jax.hessian(fun)`` at :math:`x_k` (flattened over all
    leaves), :math:`\\lambda` = ``damping`` and :math:`\\alpha_k` from the
    strong Wolfe line search (first trial 1). On a quadratic with positive
    definite :math:`H` it stops after one iteration. Stops when
    ``||grad|| <= tol``, after ``max_iters`` iterations, or when a line search
    fails. ``fun`` is a static argument: reuse the function object to reuse the
    compilation.

    Args:
      fun: ``x -> scalar``, twice differentiable, of a pytree ``x``.
      x0: starting point.
      max_iters: iteration budget (>= 0).
      tol: gradient-norm tolerance (>= 0).
      damping: :math:`\\lambda \\ge 0` (0 is the pure Newton step).
      c1, c2: strong Wolfe constants, ``0 < c1 < c2 < 1``.
      max_linesearch_steps: evaluation budget of one line search.

    Returns:
      A :class:`MinimizeResult`.

    Raises:
      ValueError: on a negative ``max_iters``, ``tol`` or ``damping``, or bad line-search constants.
    """
    _check_common(max_iters, tol, c1, c2, max_linesearch_steps)
    check_non_negative("damping", damping)
    return _minimize(
        fun,
        x0,
        max_iters,
        tol,
        damping,
        method="newton",
        c1=float(c1),
        c2=float(c2),
        max_linesearch_steps=max_linesearch_steps,
    )


def bfgs_minimize(
    fun: Callable[[PyTree], ArrayLike],
    x0: PyTree,
    *,
    max_iters: int = 1000,
    tol: float = 1e-6,
    c1: float = 1e-4,
    c2: float = 0.9,
    max_linesearch_steps: int = 20,
) -> MinimizeResult:
    """Minimises ``fun`` by dense BFGS with a strong Wolfe line search, in one jitted loop.

    .. math:: x_{k+1} = x_k - \\alpha_k H_k \\nabla f(x_k)

    with :math:`H_k` updated by :func:`bfgs_inverse_update` (scaled identity
    :math:`H_0`, Nocedal and Wright eq. 6.20). Memory :math:`O(n^2)` in the
    number :math:`n` of scalars of ``x0``. Stopping rule as :func:`newton_minimize`.

    Args:
      fun: ``x -> scalar``, differentiable, of a pytree ``x``.
      x0: starting point.
      max_iters: iteration budget (>= 0).
      tol: gradient-norm tolerance (>= 0).
      c1, c2: strong Wolfe constants, ``0 < c1 < c2 < 1``.
      max_linesearch_steps: evaluation budget of one line search.

    Returns:
      A :class:`MinimizeResult`.

    Raises:
      ValueError: on a negative ``max_iters`` or ``tol``, or bad line-search constants.
    """
    _check_common(max_iters, tol, c1, c2, max_linesearch_steps)
    return _minimize(
        fun,
        x0,
        max_iters,
        tol,
        0.0,
        method="bfgs",
        c1=float(c1),
        c2=float(c2),
        max_linesearch_steps=max_linesearch_steps,
    )


# ------------------------------------------------------------------ update rules


def _rule(
    method: str,
    learning_rate: ScalarOrSchedule,
    damping: ScalarOrSchedule,
    c1: float,
    c2: float,
    max_linesearch_steps: int,
) -> GradientTransformation:
    check_non_negative("learning_rate", learning_rate)
    check_non_negative("damping", damping)
    _check_common(0, 0.0, c1, c2, max_linesearch_steps)
    spec = {"learning_rate": learning_rate, "damping": damping}

    def init(params: Params) -> SecondOrderState:
        return _init_state(ravel_pytree(params)[0], method, spec)

    def update(
        grads: Updates,
        state: SecondOrderState,
        params: Params | None = None,
        *,
        value: ArrayLike | None = None,
        grad: Updates | None = None,
        value_fn: Callable[[Params], ArrayLike] | None = None,
        **extra: Any,
    ) -> tuple[Updates, SecondOrderState]:
        del extra
        g = objective_gradient(method, grads, params, grad, value_fn)
        assert params is not None and value_fn is not None  # checked by objective_gradient
        flat, unravel = ravel_pytree(params)
        flat_fun = cast(Callable[[Array], Array], lambda v: value_fn(unravel(v)))  # the loss: a scalar Array
        hp = current_hyperparams(spec, state.hyperparams, state.step)
        f = flat_fun(flat) if value is None else jnp.asarray(value)
        new = _iterate(
            flat_fun,
            flat,
            f,
            ravel_pytree(g)[0].astype(flat.dtype),
            state._replace(hyperparams=hp),
            method=method,
            c1=c1,
            c2=c2,
            max_ls=max_linesearch_steps,
        )
        return unravel(new.x - flat), new.state

    return GradientTransformation(init, update, needs_objective=True)


_RULE_DOC = """{title} as an update rule for full-batch training loops (small models only).

    Each ``update`` makes one iteration of :func:`{minimizer}` and returns
    ``updates = new_params - params``. Like :func:`lbfgs`, ``update`` needs the
    objective: call ``update(grads, state, params, value_fn=loss_of_params,
    value=loss)`` (``value_fn`` closed over the batch inside the jitted step;
    ``value`` optional; ``grad`` overrides ``grads``). Other extras are ignored.
    {memory}

    Args:
      learning_rate: the line search's first trial step (1.0 is the textbook step).{damping}
      c1, c2: strong Wolfe constants, ``0 < c1 < c2 < 1``.
      max_linesearch_steps: evaluation budget of one line search.

    Returns:
      A :class:`GradientTransformation` with :class:`SecondOrderState` and
      ``needs_objective=True``.

    Raises:
      ValueError: on a bad hyperparameter; from ``update`` when ``value_fn`` or
        ``params`` is missing.
    """


def newton(
    learning_rate: ScalarOrSchedule = 1.0,
    *,
    damping: ScalarOrSchedule = 0.0,
    c1: float = 1e-4,
    c2: float = 0.9,
    max_linesearch_steps: int = 20,
) -> GradientTransformation:
    return _rule("newton", learning_rate, damping, c1, c2, max_linesearch_steps)


def bfgs(
    learning_rate: ScalarOrSchedule = 1.0, *, c1: float = 1e-4, c2: float = 0.9, max_linesearch_steps: int = 20
) -> GradientTransformation:
    return _rule("bfgs", learning_rate, 0.0, c1, c2, max_linesearch_steps)


newton.__doc__ = _RULE_DOC.format(
    title="Newton's method",
    minimizer="newton_minimize",
    memory="Each step forms the ``(n, n)`` Hessian by ``jax.hessian`` and solves with it: O(n^3).",
    damping="\n      damping: Levenberg damping :math:`\\lambda \\ge 0` added to the Hessian's diagonal.",
)
bfgs.__doc__ = _RULE_DOC.format(
    title="Dense BFGS",
    minimizer="bfgs_minimize",
    memory="The state holds the ``(n, n)`` inverse-Hessian approximation: O(n^2) memory.",
    damping="",
)
