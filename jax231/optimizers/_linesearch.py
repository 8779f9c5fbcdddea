"""A line search meeting the strong Wolfe conditions (bracketing + zoom), jittable.

One ``lax.while_loop`` in which every iteration makes exactly one call of
``value_and_grad``, so evaluations are counted honestly. The loop is a small
state machine:

  * phase 0, *bracket*: try growing steps until one fails sufficient decrease,
    does not decrease from the previous trial, or has a non-negative slope;
  * phase 1, *zoom*: shrink the bracket with cubic interpolation (bisection
    when two steps did not shrink it to 66 %, as More and Thuente) until a
    step satisfies both strong Wolfe conditions;
  * phase 2, *backtrack* (fallback, when the budget of the first two phases is
    spent without a sufficient-decrease point): halve the step until
    sufficient decrease holds.

References:
  Nocedal and Wright, "Numerical Optimization", 2nd ed., Algorithms 3.5 and 3.6
  and equation (3.59).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jax231._validation import check_positive_int
from jax231.optimizers import _tree_math as tm
from jax231.optimizers._base import check_tree_match
from jax231.types import Array, ArrayLike, Params, PyTree, Updates

_BRACKET, _ZOOM, _BACKTRACK, _DONE = 0, 1, 2, 3

APPROXIMATE_WOLFE_EPSILON = 1e-6
"""Relative change of ``f`` under which sufficient decrease is judged by the slope (Hager and Zhang's epsilon)."""


def check_wolfe_constants(c1: Any, c2: Any, max_linesearch_steps: Any) -> None:
    """The strong Wolfe constants ``0 < c1 < c2 < 1`` and a positive step budget (one-line ``ValueError``)."""
    if not 0 < c1 < c2 < 1:
        raise ValueError(f"c1, c2: expected 0 < c1 < c2 < 1, got c1={c1!r}, c2={c2!r}")
    check_positive_int("max_linesearch_steps", max_linesearch_steps)


def objective_gradient(
    rule: str,
    grads: Updates,
    params: Params | None,
    grad: Updates | None,
    value_fn: Callable[[Params], ArrayLike] | None,
) -> Updates:
    """The keyword extras of a rule that needs the objective, checked: returns the gradient to use.

    ``value_fn`` must be callable and ``params`` given (the line search evaluates
    the loss around them); the gradient is ``grad`` when passed, else ``grads``,
    and must match ``params``.
    """
    if value_fn is None or not callable(value_fn):
        raise ValueError(f"value_fn: expected a callable params -> loss ({rule}.update needs it), got {value_fn!r}")
    if params is None:
        raise ValueError(f"params: expected the current parameters ({rule}.update needs them), got None")
    g = grads if grad is None else grad
    check_tree_match(g, params, name="grads", reference_name="params")
    return g


class LineSearchResult(NamedTuple):
    """Outcome of :func:`strong_wolfe_line_search`.

    Attributes:
      step: the accepted step length ``alpha`` (0 when nothing decreased ``f``).
      value: ``f(x + alpha d)``.
      grad: ``grad f(x + alpha d)``.
      num_evals: int32, calls of ``value_and_grad`` made.
      success: bool, True when the strong Wolfe conditions hold at ``step``.
    """

    step: Array
    value: Array
    grad: PyTree
    num_evals: Array
    success: Array


class _State(NamedTuple):
    phase: Array
    trial: Array
    a_prev: Array  # previous trial of the bracketing phase
    f_prev: Array
    d_prev: Array
    a_lo: Array  # zoom interval: lo satisfies sufficient decrease, lowest f so far
    f_lo: Array
    d_lo: Array
    g_lo: PyTree
    a_hi: Array
    f_hi: Array
    d_hi: Array
    width: Array  # |hi - lo| now and one zoom step ago (More and Thuente's bisection rule)
    width1: Array
    a_out: Array  # accepted point
    f_out: Array
    g_out: PyTree
    num_evals: Array
    success: Array


def _cubic_min(a: Array, fa: Array, da: Array, b: Array, fb: Array, db: Array) -> Array:
    """Minimiser of the cubic matching f and f' at a and b (NaN when none exists)."""
    d1 = da + db - 3 * (fa - fb) / (a - b)
    disc = d1 * d1 - da * db
    d2 = jnp.sign(b - a) * jnp.sqrt(jnp.where(disc >= 0, disc, jnp.nan))
    return b - (b - a) * (db + d2 - d1) / (db - da + 2 * d2)


def _zoom_trial(lo: Array, f_lo: Array, d_lo: Array, hi: Array, f_hi: Array, d_hi: Array, bisect: Array) -> Array:
    """Cubic interpolate strictly inside the interval, else (or when told to) bisect."""
    c = _cubic_min(lo, f_lo, d_lo, hi, f_hi, d_hi)
    left, right = jnp.minimum(lo, hi), jnp.maximum(lo, hi)
    margin = 1e-3 * (right - left)
    ok = jnp.isfinite(c) & (c >= left + margin) & (c <= right - margin) & ~bisect
    return jnp.where(ok, c, 0.5 * (lo + hi))


def _extrapolate(a0: Array, f0: Array, d0: Array, a1: Array, f1: Array, d1: Array, max_step: Array) -> Array:
    """Next bracketing trial: the cubic's minimiser clipped to [a1 + 1.1 h, a1 + 4 h], h = a1 - a0."""
    h = a1 - a0
    c = _cubic_min(a0, f0, d0, a1, f1, d1)
    lo, hi = a1 + 1.1 * h, a1 + 4.0 * h
    c = jnp.where(jnp.isfinite(c), jnp.clip(c, lo, hi), hi)
    return jnp.minimum(c, max_step)


def strong_wolfe_line_search(
    value_and_grad: Callable[[PyTree], tuple[Array, PyTree]],
    x: PyTree,
    value: ArrayLike,
    grad: PyTree,
    direction: PyTree,
    *,
    init_step: ArrayLike = 1.0,
    c1: float = 1e-3,
    c2: float = 0.9,
    max_steps: int = 20,
    max_backtracks: int = 30,
    max_step: float = 1e10,
) -> LineSearchResult:
    """Finds ``alpha`` meeting the strong Wolfe conditions along ``direction``.

    With ``phi(alpha) = f(x + alpha d)``:

    .. math::
        \\phi(\\alpha) \\le \\phi(0) + c_1 \\alpha \\phi'(0), \\qquad
        |\\phi'(\\alpha)| \\le c_2 |\\phi'(0)|

    ``c1 = 1e-3`` and ``c2 = 0.9`` are SciPy L-BFGS-B's values (``ftol``, ``gtol``
    of its ``dcsrch``).

    Near a minimum the decrease ``phi(alpha) - phi(0)`` drowns in the rounding of ``f``,
    and the first condition fails at every step. There, when ``phi(alpha) <= phi(0) +
    1e-6 |phi(0)|``, sufficient decrease is judged by its derivative form, exact for a
    quadratic (Hager and Zhang's approximate Wolfe test, SIAM J. Optim. 16, 2005):

    .. math::
        \\phi'(\\alpha) \\le (2 c_1 - 1) \\phi'(0)

    Without it, L-BFGS on the 50-d quadratic of condition 1e4 in ``tests/optimizers``
    stopped at ``||g|| = 1.4e-5`` on a Zen 5 CPU, its float64 floor there.

    Args:
      value_and_grad: ``x -> (f(x), grad f(x))``, traced once.
      x: the current point.
      value: ``f(x)``.
      grad: ``grad f(x)``.
      direction: ``d``, a descent direction (``<grad, d> < 0``).
      init_step: first trial step.
      c1: sufficient-decrease constant, in (0, c2).
      c2: curvature constant, in (c1, 1).
      max_steps: evaluation budget of bracketing and zoom.
      max_backtracks: extra evaluations for the backtracking fallback.
      max_step: largest step tried.

    Returns:
      A :class:`LineSearchResult`. When no step decreases ``f`` sufficiently,
      ``step`` is 0, ``value``/``grad`` are those at ``x`` and ``success`` is False.
    """
    f0 = jnp.asarray(value)
    dtype = jnp.promote_types(f0.dtype, jnp.float32)
    f0 = f0.astype(dtype)
    d0 = tm.vdot(grad, direction).astype(dtype)
    zero = jnp.zeros((), dtype)
    max_step = jnp.asarray(max_step, dtype)
    total_budget = max_steps + max_backtracks
    f_noise = APPROXIMATE_WOLFE_EPSILON * jnp.abs(f0)

    def cond(s: _State) -> Array:
        return (s.phase != _DONE) & (s.num_evals < total_budget)

    def body(s: _State) -> _State:
        a = s.trial
        f, g = value_and_grad(tm.add_scale(x, a, direction))
        f = jnp.asarray(f, dtype)
        d = tm.vdot(g, direction).astype(dtype)
        n = s.num_evals + 1
        # Sufficient decrease, or within f's rounding of f(x) its slope form (docstring).
        armijo = (f <= f0 + c1 * a * d0) | ((f <= f0 + f_noise) & (d <= (2 * c1 - 1) * d0))  # False for NaN
        curvature = jnp.abs(d) <= -c2 * d0
        wolfe = armijo & curvature

        # ---- phase 0: bracketing (Algorithm 3.5).
        first = s.num_evals == 0
        b_zoom_a = (~armijo) | ((f >= s.f_prev) & ~first)  # zoom(prev, cur)
        b_accept = ~b_zoom_a & curvature
        b_zoom_b = ~b_zoom_a & ~curvature & (d >= 0)  # zoom(cur, prev)
        b_zoom = b_zoom_a | b_zoom_b
        b_lo = jnp.where(b_zoom_a, s.a_prev, a)
        b_flo = jnp.where(b_zoom_a, s.f_prev, f)
        b_dlo = jnp.where(b_zoom_a, s.d_prev, d)
        b_hi = jnp.where(b_zoom_a, a, s.a_prev)
        b_fhi = jnp.where(b_zoom_a, f, s.f_prev)
        b_dhi = jnp.where(b_zoom_a, d, s.d_prev)
        # g at lo: cur when zoom_b; else prev, which is x itself or an earlier trial
        # that satisfied sufficient decrease and was moved into lo/out below.
        b_glo = jax.tree_util.tree_map(lambda gc, gl: jnp.where(b_zoom_b, gc, gl), g, s.g_lo)
        b_next = _extrapolate(s.a_prev, s.f_prev, s.d_prev, a, f, d, max_step)

        # ---- phase 1: zoom (Algorithm 3.6).
        z_to_hi = (~armijo) | (f >= s.f_lo)
        z_accept = ~z_to_hi & curvature
        z_flip = ~z_to_hi & (d * (s.a_hi - s.a_lo) >= 0)
        z_hi = jnp.where(z_to_hi, a, jnp.where(z_flip, s.a_lo, s.a_hi))
        z_fhi = jnp.where(z_to_hi, f, jnp.where(z_flip, s.f_lo, s.f_hi))
        z_dhi = jnp.where(z_to_hi, d, jnp.where(z_flip, s.d_lo, s.d_hi))
        z_lo = jnp.where(z_to_hi, s.a_lo, a)
        z_flo = jnp.where(z_to_hi, s.f_lo, f)
        z_dlo = jnp.where(z_to_hi, s.d_lo, d)
        z_glo = jax.tree_util.tree_map(lambda gc, gl: jnp.where(z_to_hi, gl, gc), g, s.g_lo)

        in_bracket = s.phase == _BRACKET
        in_zoom = s.phase == _ZOOM
        lo = jnp.where(in_bracket, b_lo, jnp.where(in_zoom, z_lo, s.a_lo))
        f_lo = jnp.where(in_bracket, b_flo, jnp.where(in_zoom, z_flo, s.f_lo))
        d_lo = jnp.where(in_bracket, b_dlo, jnp.where(in_zoom, z_dlo, s.d_lo))
        g_lo = jax.tree_util.tree_map(
            lambda gb, gz, gs: jnp.where(in_bracket, gb, jnp.where(in_zoom, gz, gs)),
            b_glo,
            z_glo,
            s.g_lo,
        )
        hi = jnp.where(in_bracket, b_hi, jnp.where(in_zoom, z_hi, s.a_hi))
        f_hi = jnp.where(in_bracket, b_fhi, jnp.where(in_zoom, z_fhi, s.f_hi))
        d_hi = jnp.where(in_bracket, b_dhi, jnp.where(in_zoom, z_dhi, s.d_hi))

        accepted = jnp.where(in_bracket, b_accept, jnp.where(in_zoom, z_accept, armijo & (s.phase == _BACKTRACK)))
        # In the bracketing phase a trial that neither accepts nor zooms becomes "prev";
        # it satisfies sufficient decrease, so it is also the fallback lo.
        keep_bracketing = in_bracket & ~b_zoom & ~b_accept
        lo = jnp.where(keep_bracketing, a, lo)
        f_lo = jnp.where(keep_bracketing, f, f_lo)
        d_lo = jnp.where(keep_bracketing, d, d_lo)
        g_lo = jax.tree_util.tree_map(lambda gc, gl: jnp.where(keep_bracketing, gc, gl), g, g_lo)

        # Bisect when two zoom steps did not shrink the interval to 66 %.
        entering = in_bracket & b_zoom
        new_width = jnp.abs(hi - lo)
        width = jnp.where(entering, jnp.inf, s.width)
        width1 = jnp.where(entering, jnp.inf, s.width1)
        bisect = new_width >= 0.66 * width1
        width1, width = width, new_width

        # Budget of bracket + zoom spent (or the bracket collapsed): take lo when it
        # moved, else backtrack from the current trial.
        collapsed = in_zoom & ~accepted & (jnp.abs(hi - lo) <= 1e-12 * jnp.maximum(1.0, jnp.abs(lo)))
        out_of_budget = ((n >= max_steps) | collapsed) & (in_bracket | in_zoom) & ~accepted
        take_lo = out_of_budget & (lo > 0)
        go_back = out_of_budget & ~take_lo

        phase = jnp.where(keep_bracketing, _BRACKET, jnp.where(in_bracket & b_zoom, _ZOOM, s.phase))
        phase = jnp.where(accepted | take_lo, _DONE, jnp.where(go_back, _BACKTRACK, phase))
        trial = jnp.where(
            keep_bracketing,
            b_next,
            jnp.where(
                phase == _ZOOM,
                _zoom_trial(lo, f_lo, d_lo, hi, f_hi, d_hi, bisect),
                0.5 * jnp.where(go_back, jnp.minimum(a, jnp.where(hi > 0, hi, a)), a),
            ),
        )
        a_out = jnp.where(accepted, a, jnp.where(take_lo, lo, s.a_out))
        f_out = jnp.where(accepted, f, jnp.where(take_lo, f_lo, s.f_out))
        g_out = jax.tree_util.tree_map(
            lambda gc, gl, go: jnp.where(accepted, gc, jnp.where(take_lo, gl, go)), g, g_lo, s.g_out
        )
        return _State(
            phase=phase,
            trial=trial,
            a_prev=jnp.where(keep_bracketing, a, s.a_prev),
            f_prev=jnp.where(keep_bracketing, f, s.f_prev),
            d_prev=jnp.where(keep_bracketing, d, s.d_prev),
            a_lo=lo,
            f_lo=f_lo,
            d_lo=d_lo,
            g_lo=g_lo,
            a_hi=hi,
            f_hi=f_hi,
            d_hi=d_hi,
            width=width,
            width1=width1,
            a_out=a_out,
            f_out=f_out,
            g_out=g_out,
            num_evals=n,
            success=s.success | (accepted & (s.phase != _BACKTRACK)),
        )

    init = _State(
        phase=jnp.asarray(_BRACKET, jnp.int32),
        trial=jnp.minimum(jnp.asarray(init_step, dtype), max_step),
        a_prev=zero,
        f_prev=f0,
        d_prev=d0,
        a_lo=zero,
        f_lo=f0,
        d_lo=d0,
        g_lo=grad,
        a_hi=zero,
        f_hi=f0,
        d_hi=d0,
        width=jnp.asarray(jnp.inf, dtype),
        width1=jnp.asarray(jnp.inf, dtype),
        a_out=zero,
        f_out=f0,
        g_out=grad,
        num_evals=jnp.zeros((), jnp.int32),
        success=jnp.zeros((), bool),
    )
    s = lax.while_loop(cond, body, init)
    return LineSearchResult(step=s.a_out, value=s.f_out, grad=s.g_out, num_evals=s.num_evals, success=s.success)
