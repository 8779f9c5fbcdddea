"""Activation functions and a registry of the parameter-free ones."""

from __future__ import annotations

import types
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
from jax import lax

from jax231.models.layers import _checks
from jax231.types import Array, ArrayLike

# Constants of SELU (Klambauer et al., 2017), to float64 precision.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def sigmoid(x: ArrayLike) -> Array:
    """Logistic sigmoid :math:`\\sigma(x) = 1 / (1 + e^{-x})`, stable for large :math:`|x|`."""
    return jax.nn.sigmoid(x)


def tanh(x: ArrayLike) -> Array:
    """Hyperbolic tangent :math:`\\tanh(x) = 2\\sigma(2x) - 1`."""
    return jnp.tanh(x)


def relu(x: ArrayLike) -> Array:
    """Rectified linear unit :math:`\\max(0, x)`, with gradient 0 at 0 (the course's convention)."""
    x = jnp.asarray(x)
    return jnp.where(x > 0, x, jnp.zeros_like(x))


def leaky_relu(x: ArrayLike, alpha: float = 0.01) -> Array:
    """Leaky ReLU :math:`\\max(\\alpha x, x)` for :math:`0 \\le \\alpha < 1`: :math:`x` if :math:`x > 0` else :math:`\\alpha x`."""
    x = jnp.asarray(x)
    return jnp.where(x > 0, x, alpha * x)


def prelu(x: ArrayLike, alpha: ArrayLike) -> Array:
    """Parametric ReLU: leaky ReLU with a learned slope :math:`\\alpha`.

    .. math:: y = x \\text{ if } x > 0 \\text{ else } \\alpha x

    Args:
      x: inputs, shape ``(..., C)``.
      alpha: learned slope, a scalar or shape ``(C,)`` (broadcast on the last axis).

    Returns:
      Shape of ``x``.

    Raises:
      ValueError: when ``alpha`` is neither a scalar nor ``(C,)``.

    References:
      He et al., "Delving Deep into Rectifiers", 2015.
    """
    x = jnp.asarray(x)
    if jnp.ndim(alpha) != 0:
        _checks.check_shape("alpha", alpha, (x.shape[-1],), why="a scalar or one slope per channel")
    return jnp.where(x > 0, x, alpha * x)


def elu(x: ArrayLike, alpha: float = 1.0) -> Array:
    """Exponential linear unit: :math:`x` if :math:`x > 0` else :math:`\\alpha (e^x - 1)`.

    ``expm1`` of :math:`\\min(x, 0)` keeps both the value and the gradient
    finite for large positive inputs.

    References:
      Clevert et al., "Fast and Accurate Deep Network Learning by ELUs", 2015.
    """
    x = jnp.asarray(x)
    return jnp.where(x > 0, x, alpha * jnp.expm1(jnp.minimum(x, 0)))


def selu(x: ArrayLike) -> Array:
    """Scaled ELU: :math:`\\lambda\\, \\mathrm{elu}_\\alpha(x)` with :math:`\\lambda \\approx 1.0507`, :math:`\\alpha \\approx 1.6733`.

    References:
      Klambauer et al., "Self-Normalizing Neural Networks", 2017.
    """
    return SELU_SCALE * elu(x, SELU_ALPHA)


def maxout(x: ArrayLike, *, num_pieces: int) -> Array:
    """Maxout: the maximum over ``num_pieces`` linear pieces.

    .. math:: y_{..., m} = \\max_{0 \\le k < K} x_{..., mK + k}

    The last axis of size :math:`M K` holds :math:`M` groups of :math:`K` =
    ``num_pieces`` consecutive pieces (compute them with one affine layer of
    width :math:`MK`).

    Args:
      x: inputs, shape ``(..., M·K)``.
      num_pieces: :math:`K`.

    Returns:
      Shape ``(..., M)``.

    Raises:
      ValueError: when the last axis is not a multiple of ``num_pieces``.

    References:
      Goodfellow et al., "Maxout Networks", ICML 2013.
    """
    num_pieces = _checks.check_positive_int("num_pieces", num_pieces)
    _checks.check_min_rank("x", x, 1, layout="(..., M*num_pieces)")
    x = jnp.asarray(x)
    if x.shape[-1] % num_pieces != 0:
        _checks.fail("x", f"a last axis divisible by num_pieces={num_pieces}", None, got_text=f"shape {x.shape}")
    grouped = x.reshape(x.shape[:-1] + (x.shape[-1] // num_pieces, num_pieces))
    return jnp.max(grouped, axis=-1)


def softmax(x: ArrayLike, axis: int = -1) -> Array:
    """Numerically stable softmax :math:`e^{x_i - \\max x} / \\sum_j e^{x_j - \\max x}` along ``axis``."""
    x = jnp.asarray(x)
    shifted = x - lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    unnormalised = jnp.exp(shifted)
    return unnormalised / jnp.sum(unnormalised, axis=axis, keepdims=True)


def log_softmax(x: ArrayLike, axis: int = -1) -> Array:
    """Numerically stable log-softmax :math:`x_i - \\max x - \\log \\sum_j e^{x_j - \\max x}` along ``axis``."""
    x = jnp.asarray(x)
    shifted = x - lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))


def identity(x: ArrayLike) -> Array:
    """The identity :math:`y = x` (a linear output layer)."""
    return jnp.asarray(x)


ACTIVATIONS: Mapping[str, Callable[[ArrayLike], Array]] = types.MappingProxyType(
    {
        "elu": elu,
        "identity": identity,
        "leaky_relu": leaky_relu,
        "relu": relu,
        "selu": selu,
        "sigmoid": sigmoid,
        "tanh": tanh,
    }
)
"""The parameter-free activations by name (read-only). ``prelu`` (learned
slope) and ``maxout`` (changes the width) take extra arguments and are called
directly."""


def get_activation(name: str | Callable[[ArrayLike], Array]) -> Callable[[ArrayLike], Array]:
    """Returns the activation called ``name`` (a callable is returned unchanged).

    Raises:
      ValueError: for an unknown name, listing the known ones.
    """
    return _checks.lookup("name", name, ACTIVATIONS)
