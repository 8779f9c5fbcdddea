"""Convolutions in XLA:CPU's canonical layout, so a loop body gets the fast kernel too.

XLA:CPU runs a convolution with its library kernel (Eigen / YNNPACK, threaded)
only when its dimension numbers are the canonical ones: input NHWC (batch,
spatial, feature), kernel HWIO, output NHWC. Any other layout is emitted as a
naive loop nest. Its ``ConvCanonicalization`` pass turns every other
convolution into a canonical one between two transposes, but it visits the
ENTRY computation only (``module->entry_computation()`` in
``xla/service/cpu/conv_canonicalization.cc``; the known bug jax-ml/jax#12868).
JAX's VJP of an NHWC/HWIO convolution emits the two backward convolutions in
other layouts (filter gradient ``lhs_spec=(3, 0, 1, 2), rhs_spec=(3, 0, 1, 2),
out_spec=(2, 3, 0, 1)``; input gradient with the kernel as HWOI), so inside
``lax.while_loop`` / ``lax.scan`` (``fit``'s compiled chunk of updates) the
backward pass ran through the loop nest: in the optimized HLO of a jitted
update the filter gradient is ``ynn_fusion(transpose(x), transpose(dy))``,
``dim_labels=b01f_01io->b01f``; in the loop body it is a bare
``convolution(x, dy), dim_labels=f01b_i01o->01bf``.

:func:`canonical_convolutions` does at the JAX level what that pass does: it
traces a function to a jaxpr and rebinds every non-canonical
``conv_general_dilated`` (also inside nested jit, scan, while, cond and remat
jaxprs) as ``transpose -> canonical convolution -> transpose``, the same
operations XLA inserts for the entry computation. It runs after
differentiation, so any model and any use of autodiff is covered, and a
function without a non-canonical convolution is returned unchanged.

Measured on the shared 2-core CPU (``python -m benchmarks.bench_cnn --loop --repeats 2
--rounds 3``: one ``impl='xla'`` 3x3 convolution, batch 128, forward + both gradients + an
SGD step on the filter; CPU ms per update, medians of 3 interleaved rounds, load 20-36 from
other jobs): 3->32 on 32x32 images, jitted update 71, the same update as a ``lax.scan``
body 1,366 before (19x), 51 after; 64->128 on 8x8, jitted 48, scan body 4,774 before
(99x), 36 after (a scan body also saves the per-call dispatch of the jitted update).
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Sequence

import jax
from jax import lax
from jax.extend import source_info_util
from jax.extend.core import ClosedJaxpr, Jaxpr, Literal

DISABLE_VARIABLE = "JAX231_CANONICAL_CONVS"
"""Set it to ``0`` to turn the rewrite of :func:`loop_body` off."""

__all__ = ["canonical_convolutions", "has_noncanonical_convolution", "loop_body"]


def _canonical_specs(num_spatial: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """``ConvDimensionNumbers`` of NHWC / HWIO / NHWC with ``num_spatial`` spatial axes."""
    n = num_spatial
    spatial = tuple(range(1, n + 1))
    lhs = (0, n + 1) + spatial
    rhs = (n + 1, n) + tuple(range(n))
    return lhs, rhs, lhs


def _is_canonical(params: dict) -> bool:
    dn = params["dimension_numbers"]
    return (tuple(dn.lhs_spec), tuple(dn.rhs_spec), tuple(dn.out_spec)) == _canonical_specs(len(dn.lhs_spec) - 2)


def _conv_canonical(lhs: jax.Array, rhs: jax.Array, **params: Any) -> jax.Array:
    """One ``conv_general_dilated`` as ``transpose -> NHWC/HWIO/NHWC convolution -> transpose``.

    Axes keep their roles (batch, features, spatial in the same order), so the
    window, strides, dilations and group counts carry over unchanged; only the
    memory order of the operands and the result moves.
    """
    dn = params["dimension_numbers"]
    lhs_spec, rhs_spec, out_spec = (tuple(s) for s in (dn.lhs_spec, dn.rhs_spec, dn.out_spec))
    num_spatial = len(lhs_spec) - 2
    lhs_c = lax.transpose(lhs, (lhs_spec[0],) + lhs_spec[2:] + (lhs_spec[1],))
    rhs_c = lax.transpose(rhs, rhs_spec[2:] + (rhs_spec[1], rhs_spec[0]))
    new_dn = lax.ConvDimensionNumbers(*_canonical_specs(num_spatial))
    out_c = lax.conv_general_dilated_p.bind(lhs_c, rhs_c, **{**params, "dimension_numbers": new_dn})
    # out_c's axes are (batch, spatial..., feature); put each back where out_spec wants it.
    position = {out_spec[0]: 0, out_spec[1]: num_spatial + 1}
    position.update({axis: 1 + i for i, axis in enumerate(out_spec[2:])})
    return lax.transpose(out_c, tuple(position[d] for d in range(num_spatial + 2)))


def _sub_jaxprs(value: Any) -> Sequence[Any]:
    if isinstance(value, (ClosedJaxpr, Jaxpr)):
        return (value,)
    if isinstance(value, (tuple, list)):
        return tuple(v for v in value if isinstance(v, (ClosedJaxpr, Jaxpr)))
    return ()


def _jaxpr_has_noncanonical(jaxpr: Jaxpr) -> bool:
    for eqn in jaxpr.eqns:
        if eqn.primitive is lax.conv_general_dilated_p and not _is_canonical(eqn.params):
            return True
        for value in eqn.params.values():
            for sub in _sub_jaxprs(value):
                if _jaxpr_has_noncanonical(sub.jaxpr if isinstance(sub, ClosedJaxpr) else sub):
                    return True
    return False


def _rewrite_closed(closed: ClosedJaxpr) -> ClosedJaxpr:
    if not _jaxpr_has_noncanonical(closed.jaxpr):
        return closed
    specs = [jax.ShapeDtypeStruct(a.shape, a.dtype, weak_type=a.weak_type) for a in closed.in_avals]
    return jax.make_jaxpr(lambda *args: _eval(closed.jaxpr, closed.consts, args))(*specs)


def _rewrite_open(jaxpr: Jaxpr) -> Jaxpr:
    if jaxpr.constvars or not _jaxpr_has_noncanonical(jaxpr):
        return jaxpr
    new = _rewrite_closed(ClosedJaxpr(jaxpr, []))
    return jaxpr if new.consts else new.jaxpr  # an open jaxpr cannot take new constants


def _rewrite_value(value: Any) -> Any:
    if isinstance(value, ClosedJaxpr):
        return _rewrite_closed(value)
    if isinstance(value, Jaxpr):
        return _rewrite_open(value)
    if isinstance(value, (tuple, list)) and any(isinstance(v, (ClosedJaxpr, Jaxpr)) for v in value):
        return type(value)(_rewrite_value(v) for v in value)
    return value


def _eval(jaxpr: Jaxpr, consts: Sequence[Any], args: Sequence[Any]) -> list[Any]:
    """``jax.core.eval_jaxpr`` with every non-canonical convolution made canonical."""
    env: dict[Any, Any] = {}

    def read(v: Any) -> Any:
        return v.val if isinstance(v, Literal) else env[v]

    env.update(zip(jaxpr.constvars, consts))
    env.update(zip(jaxpr.invars, args))
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        if eqn.primitive is lax.conv_general_dilated_p and not _is_canonical(eqn.params):
            outs = [_conv_canonical(*invals, **eqn.params)]
        else:
            bind_params = eqn.primitive.get_bind_params({k: _rewrite_value(v) for k, v in eqn.params.items()})
            with source_info_util.user_context(eqn.source_info.traceback), eqn.ctx.manager:
                out = eqn.primitive.bind(*invals, **bind_params)
            outs = out if eqn.primitive.multiple_results else [out]
        env.update(zip(eqn.outvars, outs))
    return [read(v) for v in jaxpr.outvars]


def has_noncanonical_convolution(fn: Callable[..., Any], *args: Any) -> bool:
    """Whether ``fn(*args)`` traces to a convolution outside NHWC/HWIO/NHWC (nested jaxprs included)."""
    return _jaxpr_has_noncanonical(jax.make_jaxpr(fn)(*args).jaxpr)


def canonical_convolutions(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with every convolution in XLA:CPU's canonical layout (same values).

    Traces ``fn`` at each call (at trace time under ``jit``: nothing extra runs
    per step) and, when its jaxpr holds a convolution outside NHWC / HWIO /
    NHWC, evaluates the jaxpr with that convolution rebound between two
    transposes (:func:`_conv_canonical`); otherwise calls ``fn`` itself. The
    sums are the same; on XLA:CPU a convolution in a loop body then runs in
    the library kernel instead of a loop nest (module docstring), so values can
    differ from the loop-nest ones by float32 rounding only, and equal the
    plain-jit ones, where XLA inserts the same transposes.

    Args:
      fn: a JAX-traceable function (for example a train step, after ``jax.grad``).

    Returns:
      A function with the signature and outputs of ``fn``.

    Examples:
      >>> step = canonical_convolutions(train_step)  # doctest: +SKIP
      >>> lax.scan(lambda s, b: step(s, b), state, batches)  # doctest: +SKIP
    """

    @functools.wraps(fn)
    def wrapped(*args: Any) -> Any:
        closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*args)
        if not _jaxpr_has_noncanonical(closed.jaxpr):
            return fn(*args)
        flat_args = jax.tree_util.tree_leaves(args)
        outs = _eval(closed.jaxpr, closed.consts, flat_args)
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(out_shape), outs)

    return wrapped


def loop_body(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` ready for a ``lax.while_loop`` / ``lax.scan`` body: :func:`canonical_convolutions` on XLA:CPU.

    Every compiled loop of :mod:`jax231.training` passes its step through this
    (``run_chunk``, ``run_steps``, ``train_epoch_scan``). Other backends choose
    convolution layouts themselves (cuDNN takes any), so ``fn`` is returned as is.
    The backend is read when the loop is traced (``jax.default_backend()``), and so is
    the escape hatch: the environment variable ``JAX231_CANONICAL_CONVS=0`` leaves
    ``fn`` as is (the behaviour before the rewrite, for a measurement or a bug report).
    """
    if os.environ.get(DISABLE_VARIABLE, "1") == "0" or jax.default_backend() != "cpu":
        return fn
    return canonical_convolutions(fn)
