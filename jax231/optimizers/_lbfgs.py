"""L-BFGS, full batch and deterministic: a minimiser and an update rule.

Both forms share one iteration:

  1. direction ``d = -H g`` by the two-loop recursion over the last ``history``
     curvature pairs ``(s, y)``, with initial scaling ``H0 = gamma I``,
     ``gamma = s^T y / y^T y`` of the newest pair (``gamma = 1`` when empty);
  2. a line search meeting the strong Wolfe conditions along ``d`` (first trial
     step ``1 / ||d||`` when the memory is empty, as SciPy's L-BFGS-B, else 1),
     falling back to backtracking;
  3. ``s = alpha d``, ``y = g_new - g``; the pair is stored unless
     ``s^T y <= eps_machine * y^T y`` (no positive curvature), which keeps ``H``
     positive definite.

The memory is a ring buffer of stacked leaves: every leaf of ``s_history`` has
shape ``(history, *leaf.shape)``.

References:
  Nocedal and Wright, "Numerical Optimization", 2nd ed., Algorithms 7.4 and 7.5.
  Liu and Nocedal, "On the limited memory BFGS method for large scale
  optimization", Mathematical Programming 45, 1989.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jax231._validation import check_positive_int
from jax231.optimizers import _tree_math as tm
from jax231.optimizers._base import (
    GradientTransformation,
    check_non_negative,
    check_tree_match,
    current_hyperparams,
    init_hyperparams,
)
from jax231.optimizers._linesearch import check_wolfe_constants, objective_gradient, strong_wolfe_line_search
from jax231.types import Array, ArrayLike, Params, PyTree, ScalarOrSchedule, Updates


class LbfgsState(NamedTuple):
    """State of :func:`lbfgs` (and of the loop of :func:`lbfgs_minimize`).

    Attributes:
      step: int32, iterations made.
      s_history: ring buffer of steps ``s = x_{k+1} - x_k``; leaves ``(history, *shape)``.
      y_history: ring buffer of gradient changes ``y = g_{k+1} - g_k``.
      rho_history: ``(history,)`` values ``1 / s^T y``.
      num_pairs: int32, how many pairs are stored (at most ``history``).
      head: int32, the slot the next pair is written to.
      num_fun_evals: int32, calls of ``value_and_grad`` made by the line searches.
      hyperparams: ``{'learning_rate': scalar}``, the line search's first trial
        step relative to the classic one (1.0 is the textbook L-BFGS).
    """

    step: Array
    s_history: Updates
    y_history: Updates
    rho_history: Array
    num_pairs: Array
    head: Array
    num_fun_evals: Array
    hyperparams: dict[str, Array]


def _check_history(history: Any) -> None:
    check_positive_int("history", history)


def _init_state(params: Params, history: int, spec: dict[str, Any]) -> LbfgsState:
    stacked = jax.tree_util.tree_map(lambda p: jnp.zeros((history, *jnp.shape(p)), jnp.result_type(p)), params)
    dtype = jnp.promote_types(jnp.result_type(*jax.tree_util.tree_leaves(params)), jnp.float32)
    return LbfgsState(
        step=jnp.zeros((), jnp.int32),
        s_history=stacked,
        y_history=stacked,
        rho_history=jnp.zeros((history,), dtype),
        num_pairs=jnp.zeros((), jnp.int32),
        head=jnp.zeros((), jnp.int32),
        num_fun_evals=jnp.zeros((), jnp.int32),
        hyperparams=init_hyperparams(spec),
    )


def two_loop_direction(grad: PyTree, state: LbfgsState) -> PyTree:
    """``-H g`` by the L-BFGS two-loop recursion over the stored pairs.

    .. math::
        q = g;\\; \\text{newest to oldest: } a_i = \\rho_i s_i^T q,\\; q \\mathrel{-}= a_i y_i;\\;
        r = \\gamma q;\\;
        \\text{oldest to newest: } b = \\rho_i y_i^T r,\\; r \\mathrel{+}= (a_i - b) s_i

    Returns ``-r``.
    """
    m = state.rho_history.shape[0]
    k, head = state.num_pairs, state.head
    rho = state.rho_history

    def backward(i, carry):
        q, alphas = carry
        idx = (head - 1 - i) % m
        s, y = tm.index(state.s_history, idx), tm.index(state.y_history, idx)
        a = jnp.where(i < k, rho[idx] * tm.vdot(s, q), 0.0)
        return tm.add_scale(q, -a, y), alphas.at[idx].set(a)

    q, alphas = lax.fori_loop(0, m, backward, (grad, jnp.zeros_like(rho)))
    newest = (head - 1) % m
    s_new, y_new = tm.index(state.s_history, newest), tm.index(state.y_history, newest)
    gamma = jnp.where(k > 0, tm.vdot(s_new, y_new) / tm.vdot(y_new, y_new), 1.0)
    r = tm.scale(gamma, q)

    def forward(i, r):
        idx = (head - k + i) % m
        s, y = tm.index(state.s_history, idx), tm.index(state.y_history, idx)
        b = rho[idx] * tm.vdot(y, r)
        return tm.add_scale(r, jnp.where(i < k, alphas[idx] - b, 0.0), s)

    r = lax.fori_loop(0, m, forward, r)
    return tm.scale(-1.0, r)


def _push_pair(state: LbfgsState, s: PyTree, y: PyTree) -> LbfgsState:
    """Stores ``(s, y)`` in the ring buffer when ``s^T y > eps * y^T y``."""
    m = state.rho_history.shape[0]
    sy, yy = tm.vdot(s, y), tm.vdot(y, y)
    eps = jnp.finfo(state.rho_history.dtype).eps
    keep = sy > eps * yy
    head = state.head
    old_s, old_y = tm.index(state.s_history, head), tm.index(state.y_history, head)

    def pick(new: PyTree, old: PyTree) -> PyTree:
        return jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a.astype(b.dtype), b), new, old)

    return state._replace(
        s_history=tm.set_index(state.s_history, head, pick(s, old_s)),
        y_history=tm.set_index(state.y_history, head, pick(y, old_y)),
        rho_history=state.rho_history.at[head].set(
            jnp.where(keep, 1.0 / jnp.where(keep, sy, 1.0), state.rho_history[head])
        ),
        head=jnp.where(keep, (head + 1) % m, head),
        num_pairs=jnp.where(keep, jnp.minimum(state.num_pairs + 1, m), state.num_pairs),
    )


class _Step(NamedTuple):
    x: PyTree
    value: Array
    grad: PyTree
    state: LbfgsState
    success: Array  # the line search met the strong Wolfe conditions


def _iterate(value_and_grad, x, value, grad, state, *, c1, c2, max_ls, scale) -> _Step:
    """One L-BFGS iteration: direction, line search, memory update."""
    # 1. d = -H g; fall back to steepest descent (and forget) if d is not a descent direction.
    d = two_loop_direction(grad, state)
    descent = tm.vdot(grad, d) < 0
    d = jax.tree_util.tree_map(lambda di, gi: jnp.where(descent, di, -gi.astype(di.dtype)), d, grad)
    state = state._replace(num_pairs=jnp.where(descent, state.num_pairs, 0))
    # 2. strong Wolfe line search, first trial 1/||d|| on an empty memory.
    empty = state.num_pairs == 0
    init_step = scale * jnp.where(empty, 1.0 / jnp.maximum(tm.norm(d), 1e-30), 1.0)
    ls = strong_wolfe_line_search(
        value_and_grad, x, value, grad, d, init_step=init_step, c1=c1, c2=c2, max_steps=max_ls
    )
    # 3. s = alpha d, y = g_new - g; store the pair. When the line search failed (no
    #    strong Wolfe point; it may still have decreased f) forget the memory, as SciPy.
    s = tm.scale(ls.step, d)
    y = tm.sub(ls.grad, grad)
    new_state = _push_pair(state, s, y)
    new_state = new_state._replace(
        num_pairs=jnp.where(ls.success, new_state.num_pairs, 0),
        step=state.step + 1,
        num_fun_evals=state.num_fun_evals + ls.num_evals,
    )
    return _Step(x=tm.add(x, s), value=ls.value, grad=ls.grad, state=new_state, success=ls.success)


# --------------------------------------------------------------------- minimiser


class LbfgsResult(NamedTuple):
    """Result of :func:`lbfgs_minimize`.

    Attributes:
      params: the final point (same tree structure as ``x0``).
      value: ``fun(params)``.
      grad_norm: norm of ``grad fun(params)`` over all leaves (Euclidean, or the
        max-norm with ``norm="max"``).
      iterations: int32, L-BFGS iterations made.
      num_fun_evals: int32, calls of ``value_and_grad(fun)`` (one at ``x0`` plus
        one per line-search trial).
      converged: bool, ``grad_norm <= tol``.
    """

    params: PyTree
    value: Array
    grad_norm: Array
    iterations: Array
    num_fun_evals: Array
    converged: Array


def _max_norm(tree: PyTree) -> Array:
    return functools.reduce(jnp.maximum, [jnp.max(jnp.abs(x)) for x in jax.tree_util.tree_leaves(tree)])


@functools.partial(jax.jit, static_argnames=("fun", "history", "max_linesearch_steps", "c1", "c2", "norm"))
def _minimize(fun, x0, max_iters, tol, *, history, max_linesearch_steps, c1, c2, norm) -> LbfgsResult:
    grad_norm = tm.norm if norm == "l2" else _max_norm
    value_and_grad = jax.value_and_grad(fun)
    f0, g0 = value_and_grad(x0)
    state = _init_state(x0, history, {"learning_rate": 1.0})
    state = state._replace(num_fun_evals=jnp.ones((), jnp.int32))
    init = (_Step(x0, f0, g0, state, jnp.ones((), bool)), grad_norm(g0), jnp.zeros((), bool))

    def cond(carry):
        step, gnorm, stop = carry
        return (step.state.step < max_iters) & (gnorm > tol) & ~stop

    def body(carry):
        step, _, _ = carry
        had_memory = step.state.num_pairs > 0
        new = _iterate(
            value_and_grad,
            step.x,
            step.value,
            step.grad,
            step.state,
            c1=c1,
            c2=c2,
            max_ls=max_linesearch_steps,
            scale=1.0,
        )
        # A failed line search with an empty memory (steepest descent, or right after a
        # failure) ends the run; with a memory, the memory is dropped and the next
        # iteration retries. SciPy's L-BFGS-B does the same.
        stop = ~new.success & ~had_memory
        return new, grad_norm(new.grad), stop

    final, gnorm, _ = lax.while_loop(cond, body, init)
    return LbfgsResult(
        params=final.x,
        value=final.value,
        grad_norm=gnorm,
        iterations=final.state.step,
        num_fun_evals=final.state.num_fun_evals,
        converged=gnorm <= tol,
    )


def lbfgs_minimize(
    fun: Callable[[PyTree], ArrayLike],
    x0: PyTree,
    *,
    max_iters: int = 1000,
    tol: float = 1e-5,
    history: int = 10,
    max_linesearch_steps: int = 20,
    c1: float = 1e-3,
    c2: float = 0.9,
    norm: str = "l2",
) -> LbfgsResult:
    """Minimises ``fun`` by L-BFGS in one jitted ``lax.while_loop``.

    Stops when ``||grad fun(x)|| <= tol`` (Euclidean norm over all leaves, or
    the max-norm with ``norm="max"``, SciPy L-BFGS-B's ``gtol`` test), after
    ``max_iters`` iterations, or when two line searches in a row fail to meet
    the strong Wolfe conditions (the first failure drops the memory; typically
    ``tol`` is below what the precision allows, e.g. 1e-5 in float32 on a
    badly scaled problem).
    ``fun`` is a static argument of the compiled program: pass the same function
    object to reuse the compilation.

    Examples:
      >>> rosen = lambda x: jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
      >>> res = lbfgs_minimize(rosen, jnp.array([-1.2, 1.0]), tol=1e-5)

    Args:
      fun: ``x -> scalar``, differentiable, of a pytree ``x``.
      x0: starting point.
      max_iters: iteration budget (>= 0).
      tol: gradient-norm tolerance (>= 0).
      history: number ``m`` of curvature pairs kept (>= 1).
      max_linesearch_steps: evaluation budget of one line search before its
        backtracking fallback.
      c1: sufficient-decrease constant of the strong Wolfe conditions.
      c2: curvature constant of the strong Wolfe conditions.
      norm: ``"l2"`` (default) or ``"max"``, the norm of the stopping test.

    Returns:
      An :class:`LbfgsResult`.

    Raises:
      ValueError: if ``history`` < 1, ``tol`` < 0, ``max_iters`` < 0, or the
        line-search constants are not ``0 < c1 < c2 < 1``, or ``norm`` is unknown.
    """
    _check_history(history)
    if norm not in ("l2", "max"):
        raise ValueError(f"norm: expected 'l2' or 'max', got {norm!r}")
    check_wolfe_constants(c1, c2, max_linesearch_steps)
    check_non_negative("tol", tol)
    check_non_negative("max_iters", max_iters)
    return _minimize(
        fun,
        x0,
        max_iters,
        tol,
        history=history,
        max_linesearch_steps=max_linesearch_steps,
        c1=float(c1),
        c2=float(c2),
        norm=norm,
    )


# ------------------------------------------------------------------ update rule


def lbfgs(
    learning_rate: ScalarOrSchedule = 1.0,
    *,
    history: int = 10,
    max_linesearch_steps: int = 20,
    c1: float = 1e-3,
    c2: float = 0.9,
) -> GradientTransformation:
    """L-BFGS as an update rule, for full-batch training loops.

    Each ``update`` makes one L-BFGS iteration (direction by the two-loop
    recursion, strong Wolfe line search on ``value_fn``) and returns
    ``updates = new_params - params``.

    Unlike every other rule, ``update`` needs the objective. Call it as
    ``update(grads, state, params, value_fn=loss_of_params, value=loss)``:

      * ``value_fn``: ``params -> scalar`` (required). Under ``jit`` it must be a
        Python callable closed over at trace time (it cannot be a traced
        argument): close over the batch, e.g. ``value_fn=lambda p: loss(p, batch)``
        written inside the jitted step.
      * ``value``: ``value_fn(params)`` if already known (else it is computed).
      * ``grad``: the gradient of ``value_fn`` at ``params`` if different from
        ``grads`` (defaults to ``grads``).

    Other keyword extras are ignored.

    Args:
      learning_rate: scales the line search's first trial step (1.0, the
        default, is textbook L-BFGS; the search then finds the step). A float,
        an array, or a schedule.
      history: number ``m`` of curvature pairs kept (>= 1).
      max_linesearch_steps: evaluation budget of one line search.
      c1: sufficient-decrease constant of the strong Wolfe conditions.
      c2: curvature constant of the strong Wolfe conditions.

    Returns:
      A :class:`GradientTransformation` with :class:`LbfgsState`.

    Raises:
      ValueError: on a bad hyperparameter; from ``update`` when ``value_fn`` or
        ``params`` is missing, or ``grads`` does not match the state.
    """
    check_non_negative("learning_rate", learning_rate)
    _check_history(history)
    check_wolfe_constants(c1, c2, max_linesearch_steps)
    spec = {"learning_rate": learning_rate}

    def init(params: Params) -> LbfgsState:
        return _init_state(params, history, spec)

    def update(
        grads: Updates,
        state: LbfgsState,
        params: Params | None = None,
        *,
        value: ArrayLike | None = None,
        grad: Updates | None = None,
        value_fn: Callable[[Params], ArrayLike] | None = None,
        **extra: Any,
    ) -> tuple[Updates, LbfgsState]:
        del extra
        g = objective_gradient("lbfgs", grads, params, grad, value_fn)
        assert params is not None and value_fn is not None  # checked by objective_gradient
        check_tree_match(g, tm.index(state.s_history, 0), name="grads", reference_name="state.s_history[0]")
        extra_evals = 0
        if value is None:
            value = value_fn(params)
            extra_evals = 1
        hp = current_hyperparams(spec, state.hyperparams, state.step)
        new = _iterate(
            jax.value_and_grad(value_fn),
            params,
            value,
            g,
            state,
            c1=c1,
            c2=c2,
            max_ls=max_linesearch_steps,
            scale=hp["learning_rate"],
        )
        updates = tm.cast_like(tm.sub(new.x, params), params)
        new_state = new.state._replace(hyperparams=hp, num_fun_evals=new.state.num_fun_evals + extra_evals)
        return updates, new_state

    return GradientTransformation(init, update, needs_objective=True)
