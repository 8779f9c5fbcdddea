"""Recurrent cells (vanilla RNN, LSTM, GRU) and their whole-sequence scans.

Batch-major everywhere: a step takes ``x`` of shape ``(N, D)`` and ``h`` of
shape ``(N, H)``; a sequence is ``xs`` of shape ``(N, T, D)``.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
from jax import lax

from jax231.models.layers import _checks
from jax231.models.layers._initializers import Initializer, get_initializer
from jax231.types import Array, ArrayLike, Params, PRNGKey

_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _check_cell(params: Params, h: ArrayLike, x: ArrayLike, gates: int, biases: tuple[str, ...]) -> None:
    """Checks ``x (N, D)``, ``h (N, H)`` against ``wx (D, gH)``, ``wh (H, gH)`` and the biases."""
    _checks.check_rank("x", x, 2, layout="(N, D)")
    _checks.check_rank("h", h, 2, layout="(N, H)")
    n, d = jnp.shape(x)
    hidden = jnp.shape(h)[1]
    if jnp.shape(h)[0] != n:
        _checks.fail("h", f"batch size {n} like `x` {jnp.shape(x)}", None, got_text=f"shape {jnp.shape(h)}")
    _checks.check_shape("params['wx']", params["wx"], (d, gates * hidden), why=f"(D, {gates}H) for D={d}, H={hidden}")
    _checks.check_shape("params['wh']", params["wh"], (hidden, gates * hidden), why=f"(H, {gates}H) for H={hidden}")
    for name in biases:
        _checks.check_shape(f"params['{name}']", params[name], (gates * hidden,), why=f"({gates}H,) for H={hidden}")


def rnn_step(params: Params, h: ArrayLike, x: ArrayLike) -> Array:
    """One step of a vanilla RNN.

    .. math:: h' = \\tanh(x W_x + h W_h + b)

    Args:
      params: ``{'wx': (D, H), 'wh': (H, H), 'b': (H,)}``.
      h: previous hidden state, shape ``(N, H)``.
      x: input, shape ``(N, D)``.

    Returns:
      ``h'``, shape ``(N, H)``.

    References:
      CS231n assignment 3, ``rnn_step_forward``.
    """
    _check_cell(params, h, x, 1, ("b",))
    return jnp.tanh(x @ params["wx"] + h @ params["wh"] + params["b"])


def lstm_step(params: Params, carry: tuple[ArrayLike, ArrayLike], x: ArrayLike) -> tuple[Array, Array]:
    """One step of an LSTM, gates from one affine map of ``x`` and ``h``.

    .. math::
        a = x W_x + h W_h + b = [a_i, a_f, a_o, a_g], \\quad
        i, f, o = \\sigma(a_i), \\sigma(a_f), \\sigma(a_o), \\quad g = \\tanh(a_g),

        c' = f \\odot c + i \\odot g, \\qquad h' = o \\odot \\tanh(c')

    Gate order along the ``4H`` axis is **i, f, o, g** (the course's order;
    flax.linen.LSTMCell's is i, f, g, o).

    Args:
      params: ``{'wx': (D, 4H), 'wh': (H, 4H), 'b': (4H,)}``.
      carry: ``(h, c)``, each ``(N, H)``.
      x: input, shape ``(N, D)``.

    Returns:
      ``(h', c')``, each ``(N, H)``.

    References:
      Hochreiter & Schmidhuber, 1997; CS231n assignment 3, ``lstm_step_forward``.
    """
    h, c = carry
    _check_cell(params, h, x, 4, ("b",))
    _checks.check_shape("c", c, jnp.shape(h), why="the cell state has the shape of `h`")
    # 1. One affine map for all four gates, split i, f, o, g.
    a = x @ params["wx"] + h @ params["wh"] + params["b"]
    a_i, a_f, a_o, a_g = jnp.split(a, 4, axis=-1)
    i, f, o, g = jax.nn.sigmoid(a_i), jax.nn.sigmoid(a_f), jax.nn.sigmoid(a_o), jnp.tanh(a_g)
    # 2. Cell then hidden state.
    c_new = f * c + i * g
    h_new = o * jnp.tanh(c_new)
    return h_new, c_new


def gru_step(params: Params, h: ArrayLike, x: ArrayLike) -> Array:
    """One step of a GRU (the flax.linen.GRUCell / PyTorch formula).

    .. math::
        r = \\sigma(x W_{xr} + b_{xr} + h W_{hr} + b_{hr}), \\quad
        z = \\sigma(x W_{xz} + b_{xz} + h W_{hz} + b_{hz}),

        n = \\tanh(x W_{xn} + b_{xn} + r \\odot (h W_{hn} + b_{hn})), \\quad
        h' = (1 - z) \\odot n + z \\odot h

    Gate order along the ``3H`` axis is **r, z, n**.

    Args:
      params: ``{'wx': (D, 3H), 'wh': (H, 3H), 'bx': (3H,), 'bh': (3H,)}``.
      h: previous hidden state, shape ``(N, H)``.
      x: input, shape ``(N, D)``.

    Returns:
      ``h'``, shape ``(N, H)``.

    References:
      Cho et al., "Learning Phrase Representations using RNN Encoder-Decoder", 2014.
    """
    _check_cell(params, h, x, 3, ("bx", "bh"))
    ax = x @ params["wx"] + params["bx"]
    ah = h @ params["wh"] + params["bh"]
    xr, xz, xn = jnp.split(ax, 3, axis=-1)
    hr, hz, hn = jnp.split(ah, 3, axis=-1)
    r = jax.nn.sigmoid(xr + hr)
    z = jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    return (1.0 - z) * n + z * h


def _time_major(xs: ArrayLike, h0: ArrayLike) -> Array:
    _checks.check_rank("xs", xs, 3, layout="(N, T, D)")
    _checks.check_rank("h0", h0, 2, layout="(N, H)")
    if jnp.shape(h0)[0] != jnp.shape(xs)[0]:
        _checks.fail(
            "h0", f"batch size {jnp.shape(xs)[0]} like `xs` {jnp.shape(xs)}", None, got_text=f"shape {jnp.shape(h0)}"
        )
    return jnp.swapaxes(jnp.asarray(xs), 0, 1)


def _scan_hidden(
    cell_step: Callable[[Params, Array, Array], Array], params: Params, xs: ArrayLike, h0: ArrayLike
) -> Array:
    """Scans a cell whose only state is ``h`` over time; returns every hidden state, ``(N, T, H)``."""
    xs_t = _time_major(xs, h0)

    def step(h, x):
        h = cell_step(params, h, x)
        return h, h

    _, hs = lax.scan(step, jnp.asarray(h0), xs_t)
    return jnp.swapaxes(hs, 0, 1)


def rnn(params: Params, xs: ArrayLike, h0: ArrayLike) -> Array:
    """Runs :func:`rnn_step` over a sequence with ``lax.scan``.

    Args:
      params: as :func:`rnn_step`.
      xs: inputs, shape ``(N, T, D)``.
      h0: initial hidden state, shape ``(N, H)``.

    Returns:
      ``hs`` of shape ``(N, T, H)``: every hidden state (the last is ``hs[:, -1]``).
    """
    return _scan_hidden(rnn_step, params, xs, h0)


def lstm(
    params: Params, xs: ArrayLike, h0: ArrayLike, c0: Optional[ArrayLike] = None
) -> tuple[Array, tuple[Array, Array]]:
    """Runs :func:`lstm_step` over a sequence with ``lax.scan``.

    Args:
      params: as :func:`lstm_step`.
      xs: inputs, shape ``(N, T, D)``.
      h0: initial hidden state, shape ``(N, H)``.
      c0: initial cell state, shape ``(N, H)``; zeros when ``None`` (the course's choice).

    Returns:
      ``(hs, (h_T, c_T))`` with ``hs`` of shape ``(N, T, H)``.
    """
    xs_t = _time_major(xs, h0)
    h0 = jnp.asarray(h0)
    c0 = jnp.zeros_like(h0) if c0 is None else jnp.asarray(c0)
    _checks.check_shape("c0", c0, h0.shape, why="the cell state has the shape of `h0`")

    def step(carry, x):
        carry = lstm_step(params, carry, x)
        return carry, carry[0]

    (h_t, c_t), hs = lax.scan(step, (h0, c0), xs_t)
    return jnp.swapaxes(hs, 0, 1), (h_t, c_t)


def gru(params: Params, xs: ArrayLike, h0: ArrayLike) -> Array:
    """Runs :func:`gru_step` over a sequence with ``lax.scan``.

    Args:
      params: as :func:`gru_step`.
      xs: inputs, shape ``(N, T, D)``.
      h0: initial hidden state, shape ``(N, H)``.

    Returns:
      ``hs`` of shape ``(N, T, H)`` (the last state is ``hs[:, -1]``).
    """
    return _scan_hidden(gru_step, params, xs, h0)


def init_rnn(
    rng: PRNGKey,
    in_dim: int,
    hidden_dim: int,
    *,
    cell: str = "rnn",
    init: str | Initializer = "xavier",
    forget_bias: float = 0.0,
    dtype: Any = jnp.float32,
) -> dict[str, Array]:
    """Parameters of a recurrent cell of the right shapes.

    ``wx`` of shape ``(in_dim, gH)`` and ``wh`` of shape ``(H, gH)`` (``g`` =
    1, 4, 3 gates for rnn, lstm, gru) drawn with ``init``; biases zero, as in
    the course. For an LSTM, ``forget_bias`` sets the ``f`` slice of ``b``
    (1.0 is the common advice of Jozefowicz et al., 2015; the default 0.0
    follows the course).

    Args:
      rng: PRNG key.
      in_dim: :math:`D`.
      hidden_dim: :math:`H`.
      cell: ``'rnn'``, ``'lstm'`` or ``'gru'``.
      init: initialiser name (``'small'``, ``'xavier'``, ``'he'``) or callable.
      forget_bias: initial forget-gate bias (LSTM only).
      dtype: parameter dtype.

    Returns:
      ``{'wx', 'wh', 'b'}`` for rnn and lstm; ``{'wx', 'wh', 'bx', 'bh'}`` for gru.

    Raises:
      ValueError: for an unknown ``cell`` or ``init``.
    """
    if cell not in _GATES:
        _checks.fail("cell", f"one of {sorted(_GATES)}", cell)
    in_dim = _checks.check_positive_int("in_dim", in_dim)
    hidden_dim = _checks.check_positive_int("hidden_dim", hidden_dim)
    init_fn = get_initializer(init)
    width = _GATES[cell] * hidden_dim
    rng_x, rng_h = jax.random.split(rng)
    params = {
        "wx": init_fn(rng_x, (in_dim, width), dtype),
        "wh": init_fn(rng_h, (hidden_dim, width), dtype),
    }
    if cell == "gru":
        params["bx"] = jnp.zeros((width,), dtype)
        params["bh"] = jnp.zeros((width,), dtype)
    else:
        b = jnp.zeros((width,), dtype)
        if cell == "lstm":
            b = b.at[hidden_dim : 2 * hidden_dim].set(forget_bias)
        params["b"] = b
    return params
