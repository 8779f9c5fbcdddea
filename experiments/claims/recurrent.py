"""Claims about gradient flow through time (CS231n lecture 10, RNNs and LSTMs)."""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from experiments.claims import base
from jax231.models import layers


def _h0_grad_norms(hidden_states: Callable[[jax.Array, jax.Array], jax.Array], cfg: Any) -> list[float]:
    """``||dL_T/dh_0||`` for ``L_T = <h_T, r>``, at every ``T`` in ``cfg.lengths``.

    One sequence of the longest length; ``jax.jacfwd`` gives ``dh_t/dh_0`` for every ``t`` at once.
    """
    key = jax.random.key(cfg.seed)
    r = jax.random.normal(jax.random.fold_in(key, 1), (cfg.hidden,))
    xs = cfg.input_std * jax.random.normal(jax.random.fold_in(key, 2), (1, max(cfg.lengths), cfg.input_dim))
    jac = jax.jit(jax.jacfwd(lambda h: hidden_states(xs, h[None])[0]))(jnp.zeros((cfg.hidden,)))  # (T, H, H)
    grads = jnp.einsum("i,tij->tj", r, jac)
    return [float(jnp.linalg.norm(grads[t - 1])) for t in cfg.lengths]


def _plot(workdir: pathlib.Path, name: str, lengths: Any, curves: dict[str, list[float]], title: str) -> str:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for label, norms in curves.items():
        ax.plot(lengths, np.maximum(norms, 1e-30), marker="o", label=label)
    ax.set(yscale="log", xlabel="sequence length T", ylabel="||dL/dh_0||", title=title)
    ax.legend(fontsize=8)
    return base.save_figure(fig, workdir, name)


def _rnn_with_sigma(cfg: Any, sigma: float, *, orthogonal: bool) -> dict:
    """RNN parameters with ``W_hh = sigma Q`` (``Q`` orthogonal: every singular value sigma), or the
    Xavier draw rescaled to largest singular value sigma."""
    key = jax.random.key(cfg.seed)
    params = layers.init_rnn(key, cfg.input_dim, cfg.hidden, cell="rnn")
    if orthogonal:
        q, _ = jnp.linalg.qr(jax.random.normal(jax.random.fold_in(key, 3), (cfg.hidden, cfg.hidden)))
        return {**params, "wh": sigma * q}
    return {**params, "wh": params["wh"] * sigma / jnp.linalg.norm(params["wh"], ord=2)}


def rnn_spectral_holds(numbers: dict, cfg: Any) -> bool:
    """With W_hh = sigma Q: the small sigma's gradient at the longest T is < 1e-2 of T = 1's; the
    large sigma's grows more than 10x."""
    small, large = numbers[f"sigma Q {min(cfg.sigmas)}"], numbers[f"sigma Q {max(cfg.sigmas)}"]
    return small[-1] / small[0] < 1e-2 and max(large) / large[0] > 10


def rnn_spectral(cfg: Any, workdir: pathlib.Path) -> base.ClaimResult:
    """Vanilla RNN with ``W_hh = sigma Q``: ``||dL/dh_0||`` vs T for sigma < 1 and > 1 (small inputs)."""
    curves = {}
    for orthogonal in (True, False):
        for sigma in cfg.sigmas:
            params = _rnn_with_sigma(cfg, sigma, orthogonal=orthogonal)
            label = f"{'sigma Q' if orthogonal else 'Xavier, sigma_max'} {sigma}"
            curves[label] = _h0_grad_norms(lambda xs, h, p=params: layers.rnn(p, xs, h), cfg)
    small, large = curves[f"sigma Q {min(cfg.sigmas)}"], curves[f"sigma Q {max(cfg.sigmas)}"]
    vanish, explode = small[-1] / small[0], max(large) / large[0]
    random_large = curves[f"Xavier, sigma_max {max(cfg.sigmas)}"]
    figure = _plot(workdir, "rnn_spectral", cfg.lengths, curves, f"vanilla RNN, H={cfg.hidden}, small inputs")
    return base.ClaimResult(
        "rnn_spectral",
        "A vanilla RNN's gradients explode when sigma_max(W_hh) > 1 and vanish when it is < 1.",
        f"W_hh = sigma Q: ||dL/dh_0|| at T={cfg.lengths[-1]} / at T={cfg.lengths[0]}: sigma {min(cfg.sigmas)}: "
        f"{vanish:.1e}; sigma {max(cfg.sigmas)}: up to {explode:.1e}x. A Xavier W_hh rescaled to sigma_max "
        f"{max(cfg.sigmas)} still vanishes ({random_large[-1] / random_large[0]:.0e}): > 1 is necessary, "
        "not sufficient (Pascanu et al. 2013)",
        rnn_spectral_holds(curves, cfg),
        figure,
        curves,
    )


def lstm_vs_rnn_holds(numbers: dict, cfg: Any) -> bool:
    """At the longest T the LSTM's gradient is more than 10x the vanilla RNN's."""
    return numbers[f"LSTM (forget bias {cfg.forget_bias})"][-1] > 10 * numbers["vanilla RNN"][-1]


def lstm_vs_rnn(cfg: Any, workdir: pathlib.Path) -> base.ClaimResult:
    """``||dL/dh_0||`` vs T for a vanilla RNN and an LSTM at their usual (Xavier) initialisation."""
    key = jax.random.key(cfg.seed)
    rnn_params = layers.init_rnn(key, cfg.input_dim, cfg.hidden, cell="rnn")
    lstm_params = layers.init_rnn(key, cfg.input_dim, cfg.hidden, cell="lstm", forget_bias=cfg.forget_bias)
    curves = {
        "vanilla RNN": _h0_grad_norms(lambda xs, h: layers.rnn(rnn_params, xs, h), cfg),
        f"LSTM (forget bias {cfg.forget_bias})": _h0_grad_norms(lambda xs, h: layers.lstm(lstm_params, xs, h)[0], cfg),
    }
    rnn, lstm = curves["vanilla RNN"][-1], curves[f"LSTM (forget bias {cfg.forget_bias})"][-1]
    figure = _plot(workdir, "lstm_vs_rnn", cfg.lengths, curves, f"H={cfg.hidden}, inputs N(0, {cfg.input_std}^2)")
    return base.ClaimResult(
        "lstm_vs_rnn",
        "The LSTM's additive cell path keeps gradients alive where a vanilla RNN's vanish.",
        f"||dL/dh_0|| at T={cfg.lengths[-1]}: LSTM {lstm:.1e}, vanilla RNN {rnn:.1e} ({lstm / max(rnn, 1e-30):.1e}x)",
        lstm_vs_rnn_holds(curves, cfg),
        figure,
        curves,
    )
