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

import math
from typing import Any, Callable, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jax231.types import Array, ArrayLike, PyTree

__all__ = ["check_grads", "numerical_grad", "rel_error", "sparse_grad_check"]

_MAX_CHUNK = 1024  # perturbed coordinates evaluated together in one vmapped, compiled call
_MAX_CHUNK_ELEMENTS = 1 << 22  # ... fewer when the outputs are large (2 x 32 MiB of float64 per chunk)
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
            raise ValueError(
                f"`{name}` must have only floating leaves to differentiate; got a {jnp.result_type(leaf)} leaf."
            )


def _scalar(value: Any) -> Array:
    value = jnp.asarray(value)
    if value.shape != ():
        raise ValueError(f"`f` must return a scalar; got shape {value.shape}. Use check_grads for array outputs.")
    return value


def _centred_differences(
    g: Callable[[Array], Array], flat: Array, indices: ArrayLike, h: float, cotangent: Array | None = None
) -> np.ndarray:
    """Centred differences at each ``i`` in ``indices``, projected on ``cotangent``.

    Without a cotangent ``g`` is scalar and the result is
    :math:`(g(x + h e_i) - g(x - h e_i)) / 2h`; with one, ``g`` returns a
    vector :math:`y` and the result is :math:`\\langle u, y(x + h e_i) - y(x - h
    e_i)\\rangle / 2h` (the course's ``eval_numerical_gradient_array``).

    The perturbed evaluations run vmapped in compiled chunks, but the
    subtraction is done in NumPy: inside one XLA program the two products
    feeding ``y(x+h) - y(x-h)`` may be contracted into an FMA, and outputs
    that :math:`x_i` does not touch would then differ by an ulp instead of
    cancelling exactly (a spurious error where the true derivative is 0).
    """
    indices = np.asarray(indices)
    out_shape = jax.eval_shape(g, flat).shape
    if cotangent is None and out_shape != ():
        raise ValueError(f"`f` must return a scalar; got shape {out_shape}. Use check_grads for array outputs.")
    out_size = max(1, math.prod(out_shape))
    chunk = max(1, min(len(indices), _MAX_CHUNK, _MAX_CHUNK_ELEMENTS // out_size))

    @jax.jit
    def evaluate(idx: Array) -> tuple[Array, Array]:
        def plus_minus(i: Array) -> tuple[Array, Array]:
            step = jnp.zeros_like(flat).at[i].set(h)
            return g(flat + step), g(flat - step)

        return jax.vmap(plus_minus)(idx)

    results = []
    for start in range(0, len(indices), chunk):
        idx = indices[start : start + chunk]
        padded = np.concatenate([idx, np.repeat(idx[-1:], chunk - len(idx))])  # one compiled shape
        plus, minus = evaluate(jnp.asarray(padded))
        diff = (np.asarray(plus, np.float64) - np.asarray(minus, np.float64))[: len(idx)]
        if cotangent is None:
            results.append(diff.reshape(len(idx)) / (2.0 * h))
        else:
            results.append(diff.reshape(len(idx), -1) @ np.asarray(cotangent, np.float64) / (2.0 * h))
    return np.concatenate(results)


def _sample_indices(size: int, num_checks: int, seed: int) -> np.ndarray:
    if num_checks < 1:
        raise ValueError(f"`num_checks` must be >= 1; got {num_checks}.")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(size, size=min(num_checks, size), replace=False))


def numerical_grad(f: Callable[[PyTree], Any], x: PyTree, *, h: float = 1e-5) -> PyTree:
    """Centred-difference gradient of a scalar function, in float64.

    .. math:: \\frac{\\partial f}{\\partial x_i} \\approx \\frac{f(x + h e_i) - f(x - h e_i)}{2h}

    Every coordinate is perturbed (``2·size(x)`` evaluations of ``f``, in
    vmapped chunks); for large tensors use :func:`sparse_grad_check`.

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
        grads = _centred_differences(lambda v: f(unravel(v)), flat, np.arange(flat.size), h)
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
    with jax.enable_x64(True):
        flat, unravel = ravel_pytree(_to_float64(x))
        g = lambda v: _scalar(f(unravel(v)))
        indices = _sample_indices(flat.size, num_checks, seed)
        analytic = np.asarray(jax.grad(g)(flat))[indices]
        numerical = _centred_differences(g, flat, indices, h)
        return rel_error(analytic, numerical)


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
            where = (
                f"leaf {jax.tree_util.keystr(path)!r} index {tuple(int(i) for i in index)}: "
                f"analytic {a[index]:.10g}, numerical {b[index]:.10g}"
            )
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

    ``f(*args)`` may return any pytree of arrays. A non-scalar output
    :math:`y` is checked through its vector-Jacobian product with a fixed
    random cotangent :math:`u` (standard normal, drawn from
    ``np.random.default_rng([seed, 231])``), as the course checks backward
    passes with a random ``dout``:

    .. math:: \\text{analytic}_i = \\partial_{x_i} \\langle u, y(x)\\rangle, \\qquad
              \\text{numerical}_i = \\frac{\\langle u,\\ y(x + h e_i) - y(x - h e_i)\\rangle}{2h}

    Floating ``args`` are cast to float64; the others are passed unchanged.

    The course's formula is elementwise, so an entry whose true derivative is
    tiny compared with the rounding noise of the difference,
    :math:`\\approx 10^{-16} |y| / h`, shows a large relative error even when
    the gradient is right: check small inputs (few examples, as the notes
    advise) and avoid points where the gradient nearly cancels.

    Args:
      f: pure function.
      *args: its positional arguments.
      tol: largest relative error accepted (1e-7 for smooth functions; use
        ~1e-5 when a kink such as ReLU or max is near the checked point).
      argnums: which arguments are differentiated (int or sequence of ints).
      h: centred-difference step.
      num_checks: ``None`` checks every coordinate; an int checks that many
        random coordinates (as :func:`sparse_grad_check`).
      seed: seed of the cotangent and of the sparse coordinates.

    Returns:
      The largest relative error found (a float <= ``tol``).

    Raises:
      AssertionError: when the relative error exceeds ``tol``; the message
        names the worst leaf and index with both values.
      ValueError: when ``argnums`` is out of range or a differentiated
        argument has non-floating leaves.

    References:
      CS231n ``eval_numerical_gradient_array`` and ``grad_check_sparse``.
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
        flat, unravel = ravel_pytree(wrt)

        def outputs(v: Array) -> Array:
            """Every floating output of ``f`` as one vector (or the scalar output itself)."""
            full = list(args64)
            for i, value in zip(argnums_tuple, unravel(v)):
                full[i] = value
            out = f(*full)
            if not isinstance(out, (tuple, list, dict)) and jnp.shape(out) == ():
                return jnp.asarray(out)
            leaves = [jnp.ravel(y) for y in jax.tree_util.tree_leaves(out) if jnp.issubdtype(y.dtype, jnp.floating)]
            return jnp.concatenate(leaves) if leaves else jnp.zeros((0,))

        out_shape = jax.eval_shape(outputs, flat).shape
        if out_shape == ():
            cotangent = None
            scalar = outputs
        else:
            # Seeded by (seed, a salt): never the stream a test drew its inputs from with seed alone.
            cotangent = jnp.asarray(np.random.default_rng([seed, _COTANGENT_SALT]).standard_normal(out_shape))
            scalar = lambda v: jnp.vdot(cotangent, outputs(v))
        analytic = np.asarray(jax.grad(scalar)(flat))
        if num_checks is None:
            numerical = _centred_differences(outputs, flat, np.arange(flat.size), h, cotangent)
            error = rel_error(analytic, numerical)
            detail = _locate_worst(unravel(analytic), unravel(numerical))
        else:
            indices = _sample_indices(flat.size, num_checks, seed)
            numerical = _centred_differences(outputs, flat, indices, h, cotangent)
            error = rel_error(analytic[indices], numerical)
            detail = f"{len(indices)} random coordinates"
    if not error <= tol:
        raise AssertionError(f"gradient check failed: relative error {error:.3e} > tol {tol:.1e} ({detail}).")
    return error
