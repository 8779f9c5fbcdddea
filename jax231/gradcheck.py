"""Gradient checking: centred differences in float64 against ``jax.grad``.

The course checks every backward pass numerically; here the analytic gradient
is ``jax.grad`` of a pure function, and these helpers check it (or any custom
VJP) against centred differences. Everything runs with float64 switched on
(``jax.enable_x64(True)``) so that differences of :math:`h = 10^{-5}` are far
above rounding noise; floating inputs are cast to float64 first.

Functions passed here must be pure, traceable JAX functions (they are
``jit``-compiled and mapped over perturbations), computing in the dtype of
their inputs; constants they close over are promoted to float64 by JAX's
type promotion wherever they meet a float64 input.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

from jax231.types import Array, PyTree

__all__ = ["check_grads", "numerical_grad", "rel_error", "sparse_grad_check"]

_VMAP_ALL = 1024  # up to this many coordinates, every perturbation is evaluated in one vmap
_MAP_BATCH = 256  # beyond, lax.map evaluates this many (vmapped) per step to bound memory
_COTANGENT_SALT = 231


def rel_error(a: PyTree, b: PyTree) -> float:
    """The course's relative error, the largest over all entries (and leaves).

    .. math:: \\max_i \\frac{|a_i - b_i|}{\\max(10^{-8}, |a_i| + |b_i|)}

    Args:
      a: array or pytree of arrays.
      b: array or pytree with the structure and shapes of ``a``.

    Returns:
      A Python float (0.0 for empty inputs).

    Raises:
      ValueError: when the structures or shapes differ.

    References:
      CS231n assignment 1/2, ``rel_error``; notes "Neural Networks Part 3", gradient checks.
    """
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    if tree_a != tree_b:
        raise ValueError(f"`a` and `b` must have the same structure; got {tree_a} and {tree_b}.")
    worst = 0.0
    for x, y in zip(leaves_a, leaves_b):
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"`a` and `b` must have matching shapes; got {x.shape} and {y.shape}.")
        if x.size:
            worst = max(worst, float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y)))))
    return worst


def _to_float64(tree: PyTree) -> PyTree:
    """Casts floating leaves to float64 (call inside ``jax.enable_x64(True)``)."""

    def cast(leaf: Any) -> Any:
        leaf = jnp.asarray(leaf)
        return leaf.astype(jnp.float64) if jnp.issubdtype(leaf.dtype, jnp.floating) else leaf

    return jax.tree_util.tree_map(cast, tree)


def _check_float_leaves(name: str, tree: PyTree) -> None:
    for leaf in jax.tree_util.tree_leaves(tree):
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            raise ValueError(f"`{name}` must have only floating leaves to differentiate; got a {jnp.result_type(leaf)} leaf.")


def _scalar(value: Any) -> Array:
    value = jnp.asarray(value)
    if value.shape != ():
        raise ValueError(f"`f` must return a scalar; got shape {value.shape}. Use check_grads for array outputs.")
    return value


def _centred_differences(f: Callable[[Array], Array], flat: Array, indices: Array, h: float) -> Array:
    """:math:`(f(x + h e_i) - f(x - h e_i)) / 2h` for each ``i`` in ``indices``."""

    def one(i: Array) -> Array:
        step = jnp.zeros_like(flat).at[i].set(h)
        return (_scalar(f(flat + step)) - _scalar(f(flat - step))) / (2.0 * h)

    if indices.shape[0] <= _VMAP_ALL:
        return jax.jit(jax.vmap(one))(indices)  # One vmapped program compiles fastest.
    return jax.jit(lambda idx: lax.map(one, idx, batch_size=_MAP_BATCH))(indices)


def numerical_grad(f: Callable[[PyTree], Any], x: PyTree, *, h: float = 1e-5) -> PyTree:
    """Centred-difference gradient of a scalar function, in float64.

    .. math:: \\frac{\\partial f}{\\partial x_i} \\approx \\frac{f(x + h e_i) - f(x - h e_i)}{2h}

    Every coordinate is perturbed (``2·size(x)`` evaluations of ``f``, mapped
    in vmapped batches); for large tensors use :func:`sparse_grad_check`.

    Args:
      f: pure scalar-valued function of ``x``.
      x: array or pytree of floating arrays.
      h: step :math:`h`.

    Returns:
      The gradient as float64 NumPy arrays with the structure of ``x``.

    Raises:
      ValueError: when ``f`` is not scalar-valued or ``x`` has non-floating leaves.

    References:
      CS231n ``eval_numerical_gradient``; notes "Neural Networks Part 3".
    """
    _check_float_leaves("x", x)
    with jax.enable_x64(True):
        flat, unravel = ravel_pytree(_to_float64(x))
        grads = _centred_differences(lambda v: f(unravel(v)), flat, jnp.arange(flat.size), h)
        return jax.tree_util.tree_map(lambda g: np.asarray(g, np.float64), unravel(grads))


def sparse_grad_check(
    f: Callable[[PyTree], Any], x: PyTree, *, num_checks: int = 10, seed: int = 0, h: float = 1e-5
) -> float:
    """Checks ``jax.grad(f)`` at ``num_checks`` random coordinates of ``x``.

    For tensors too large to perturb every entry (the course's
    ``grad_check_sparse``). Coordinates are drawn without replacement with
    NumPy's generator seeded by ``seed`` (same seed, same coordinates).

    Args:
      f: pure scalar-valued function of ``x``.
      x: array or pytree of floating arrays.
      num_checks: number of coordinates (all of them if ``x`` is smaller).
      seed: seed of the coordinate choice.
      h: centred-difference step.

    Returns:
      The largest :func:`rel_error` over the checked coordinates.
    """
    _check_float_leaves("x", x)
    if num_checks < 1:
        raise ValueError(f"`num_checks` must be >= 1; got {num_checks}.")
    with jax.enable_x64(True):
        flat, unravel = ravel_pytree(_to_float64(x))
        g = lambda v: _scalar(f(unravel(v)))
        analytic = jax.grad(g)(flat)
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(flat.size, size=min(num_checks, flat.size), replace=False))
        numerical = _centred_differences(g, flat, jnp.asarray(indices), h)
        return rel_error(np.asarray(analytic)[indices], numerical)


def _locate_worst(analytic: PyTree, numerical: PyTree) -> str:
    """Describes the entry with the largest relative error (leaf path, index, both values)."""
    worst, where = -1.0, ""
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(analytic), jax.tree_util.tree_leaves(numerical)):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if not a.size:
            continue
        errors = np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))
        index = np.unravel_index(int(np.argmax(errors)), a.shape)
        if errors[index] > worst:
            worst = float(errors[index])
            where = f"leaf {jax.tree_util.keystr(path)!r} index {tuple(int(i) for i in index)}: analytic {a[index]:.10g}, numerical {b[index]:.10g}"
    return where


def check_grads(
    f: Callable[..., Any],
    *args: Any,
    tol: float = 1e-7,
    argnums: Union[int, Sequence[int]] = 0,
    h: float = 1e-5,
    num_checks: int | None = None,
    seed: int = 0,
) -> float:
    """Checks ``jax.grad`` of ``f`` against centred differences in float64.

    ``f(*args)`` may return any pytree of arrays: a non-scalar output
    :math:`y` is contracted with a fixed random cotangent :math:`u` (standard
    normal, drawn from ``np.random.default_rng([seed, 231])``) into :math:`\\langle u, y\\rangle`, which checks
    the whole vector-Jacobian product like the course's ``dout`` checks.
    Floating ``args`` are cast to float64.

    Args:
      f: pure function.
      *args: its positional arguments.
      tol: largest relative error accepted (1e-7 for smooth functions; use
        ~1e-5 when a kink such as ReLU or max is near the checked point).
      argnums: which arguments are differentiated (int or sequence of ints).
      h: centred-difference step.
      num_checks: ``None`` checks every coordinate; an int checks that many
        random coordinates (:func:`sparse_grad_check`).
      seed: seed of the cotangent and of the sparse coordinates.

    The course's formula is elementwise, so an entry whose true derivative is
    tiny compared with the rounding noise of the difference,
    :math:`\\approx 10^{-16} |f| / h`, shows a large relative error even when
    the gradient is right: check small inputs (few examples, as the notes
    advise) and avoid points where the gradient nearly cancels.

    Returns:
      The largest relative error found (a float <= ``tol``).

    Raises:
      AssertionError: when the relative error exceeds ``tol``; the message
        names the worst leaf and index with both values.
      ValueError: when ``argnums`` is out of range or a differentiated
        argument has non-floating leaves.
    """
    argnums_tuple = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for index in argnums_tuple:
        if not -len(args) <= index < len(args):
            raise ValueError(f"`argnums` must index the {len(args)} positional args; got {argnums!r}.")
    argnums_tuple = tuple(i % len(args) for i in argnums_tuple)
    with jax.enable_x64(True):
        args64 = list(_to_float64(list(args)))
        wrt = tuple(args64[i] for i in argnums_tuple)
        _check_float_leaves("args[argnums]", wrt)

        def call(diff_args: tuple[Any, ...]) -> Any:
            full = list(args64)
            for i, value in zip(argnums_tuple, diff_args):
                full[i] = value
            return f(*full)

        # A fixed random cotangent for every floating output leaf (None for the others).
        # Seeded by (seed, a salt): never the stream a test drew its inputs from with seed alone.
        rng = np.random.default_rng([seed, _COTANGENT_SALT])
        cotangents = [
            jnp.asarray(rng.standard_normal(leaf.shape)) if jnp.issubdtype(leaf.dtype, jnp.floating) else None
            for leaf in jax.tree_util.tree_leaves(jax.eval_shape(call, wrt))
        ]

        def scalar_fn(diff_args: tuple[Any, ...]) -> Array:
            out = call(diff_args)
            if not isinstance(out, (tuple, list, dict)) and jnp.shape(out) == ():
                return jnp.asarray(out)
            total = jnp.zeros(())
            for u, y in zip(cotangents, jax.tree_util.tree_leaves(out)):
                if u is not None:
                    total = total + jnp.vdot(u, y)
            return total

        if num_checks is not None:
            error = sparse_grad_check(scalar_fn, wrt, num_checks=num_checks, seed=seed, h=h)
            detail = f"{min(num_checks, ravel_pytree(wrt)[0].size)} random coordinates"
        else:
            analytic = jax.grad(scalar_fn)(wrt)
            numerical = numerical_grad(scalar_fn, wrt, h=h)
            error = rel_error(analytic, numerical)
            detail = _locate_worst(analytic, numerical)
    if not error <= tol:
        raise AssertionError(f"gradient check failed: relative error {error:.3e} > tol {tol:.1e} ({detail}).")
    return error

