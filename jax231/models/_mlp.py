"""Fully connected networks: any list of hidden sizes, the course's two-layer net as one config.

Each hidden layer is ``affine -> [batch/layer norm] -> activation -> [noise] -> [dropout]``,
followed by an affine head producing the class scores.

References:
  CS231n notes, "Neural Networks Part 1: Setting up the Architecture" and
  "Part 2: Setting up the Data and the Loss" (https://cs231n.github.io/neural-networks-2/);
  Ioffe & Szegedy 2015 (batch norm); Ba et al. 2016 (layer norm);
  Srivastava et al. 2014 (dropout, Gaussian noise); Wan et al. 2013 (DropConnect).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import jax
import jax.numpy as jnp

from jax231.models import _helpers, _model, layers
from jax231.types import Array, ArrayLike, ModelState, Params, PRNGKey, Shape

__all__ = ["mlp", "two_layer_net"]

NORMS = (None, "batch", "layer")

_INPUT_NOISE_FOLD = 1000  # rng fold of the input noise; hidden layer i's noise uses _NOISE_FOLD + i
_NOISE_FOLD = 1001


def mlp(
    *,
    hidden_sizes: Sequence[int] = (100,),
    num_classes: int = 10,
    activation: str = "relu",
    norm: Optional[str] = None,
    drop_rate: float = 0.0,
    drop_connect_rate: float = 0.0,
    input_noise_std: float = 0.0,
    noise_std: float = 0.0,
    init: str = "he",
    bn_momentum: float = 0.9,
    bn_axis_name: Optional[str] = None,
    name: str = "mlp",
) -> _model.Model:
    """A multi-layer perceptron on flattened inputs.

    For hidden layer ``i`` (``h_0 = flatten(x)``):

    .. math::
        a_i = h_{i-1} W_i + b_i, \\quad
        h_i = \\mathrm{dropout}(f(\\mathrm{norm}(a_i)) + \\sigma_h \\epsilon_i)

    and ``scores = h_L W_head + b_head``. With DropConnect, each hidden ``W_i``
    is masked (inverted scaling) in train mode instead of, or besides, dropping
    activations; the head is never masked.

    Params: ``{'dense_i': {'w', 'b'}, 'norm_i': {'gamma', 'beta'} (if norm), 'head': {'w', 'b'}}``;
    state: ``{'norm_i': {'mean', 'var'}}`` for ``norm='batch'``, else ``{}``.

    Args:
      hidden_sizes: widths of the hidden layers (may be empty: a linear model).
      num_classes: number of output scores.
      activation: activation name, one of ``layers.ACTIVATIONS``.
      norm: ``None``, ``'batch'`` or ``'layer'`` normalisation after each hidden affine.
      drop_rate: probability of dropping a hidden activation in train mode.
      drop_connect_rate: probability of dropping a hidden-layer weight in train mode.
      input_noise_std: :math:`\\sigma_x \\ge 0`, std of the Gaussian noise added to the
        flattened input in train mode (0 = off).
      noise_std: :math:`\\sigma_h \\ge 0`, std of the Gaussian noise added to every hidden
        activation in train mode, before dropout (0 = off).
      init: weight initializer name (``'small'``, ``'xavier'``, ``'he'``); biases are zero.
      bn_momentum: running-statistics momentum of batch norm (flax convention).
      bn_axis_name: mapped axis name for synchronised batch norm (``lax.pmean``).
      name: model name used in error messages.

    Returns:
      ``Model(init, apply)``.

    Raises:
      ValueError: for unknown activation / norm / init names, rates outside
        ``[0, 1)``, negative noise stds or non-positive sizes.
    """
    hidden_sizes = tuple(hidden_sizes)
    for i, size in enumerate(hidden_sizes):
        _helpers.check_positive_int(f"hidden_sizes[{i}]", size)
    _helpers.check_positive_int("num_classes", num_classes)
    _helpers.check_choice("activation", activation, tuple(layers.ACTIVATIONS))
    _helpers.check_choice("norm", norm, NORMS)
    _helpers.check_choice("init", init, tuple(layers.INITIALIZERS))
    _helpers.check_rate("drop_rate", drop_rate)
    _helpers.check_rate("drop_connect_rate", drop_connect_rate)
    for arg, std in (("input_noise_std", input_noise_std), ("noise_std", noise_std)):
        if not float(std) >= 0:
            raise ValueError(f"{arg}: expected a value >= 0, got {std!r}")
    act = layers.get_activation(activation)
    stochastic = drop_rate > 0 or drop_connect_rate > 0 or input_noise_std > 0 or noise_std > 0

    def init_fn(rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]:
        shape = tuple(int(s) for s in input_shape)
        if len(shape) < 1 or any(s < 1 for s in shape):
            _helpers.fail(f"{name} input_shape", "a non-empty shape without the batch dimension", input_shape)
        sizes = (math.prod(shape), *hidden_sizes)
        keys = jax.random.split(rng, len(hidden_sizes) + 1)
        params: dict = {}
        state: dict = {}
        for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            params[f"dense_{i}"] = layers.init_affine(keys[i], d_in, d_out, init=init)
            if norm is not None:
                params[f"norm_{i}"] = layers.init_norm(d_out)
            if norm == "batch":
                state[f"norm_{i}"] = layers.init_batch_norm_stats(d_out)
        params["head"] = layers.init_affine(keys[-1], sizes[-1], num_classes, init=init)
        return params, state

    def apply_fn(
        params: Params, state: ModelState, x: ArrayLike, *, train: bool, rng: Optional[PRNGKey] = None
    ) -> tuple[Array, ModelState]:
        x = jnp.asarray(x)
        if x.ndim < 2:
            _helpers.fail(f"{name} x", "shape (N, ...) with a batch axis", None, got_text=f"shape {x.shape}")
        _helpers.require_rng(name, rng, train=train, stochastic=stochastic)
        h = layers.flatten(x)
        first = params["dense_0"] if hidden_sizes else params["head"]
        _helpers.check_features(name, h, first["w"].shape[0], what="the flattened input")
        h = layers.gaussian_noise(h, std=input_noise_std, rng=_helpers.fold_rng(rng, _INPUT_NOISE_FOLD), train=train)
        new_state: dict = {}
        for i in range(len(hidden_sizes)):
            w, b = params[f"dense_{i}"]["w"], params[f"dense_{i}"]["b"]
            if drop_connect_rate > 0:
                w = layers.drop_connect(w, drop_rate=drop_connect_rate, rng=_helpers.fold_rng(rng, 2 * i), train=train)
            h = layers.affine(h, w, b)
            if norm == "batch":
                p, s = params[f"norm_{i}"], state[f"norm_{i}"]
                h, mean, var = layers.batch_norm(
                    h,
                    p["gamma"],
                    p["beta"],
                    s["mean"],
                    s["var"],
                    train=train,
                    momentum=bn_momentum,
                    axis_name=bn_axis_name,
                )
                new_state[f"norm_{i}"] = {"mean": mean, "var": var}
            elif norm == "layer":
                p = params[f"norm_{i}"]
                h = layers.layer_norm(h, p["gamma"], p["beta"])
            h = act(h)
            h = layers.gaussian_noise(h, std=noise_std, rng=_helpers.fold_rng(rng, _NOISE_FOLD + i), train=train)
            if drop_rate > 0:
                h = layers.dropout(h, drop_rate=drop_rate, rng=_helpers.fold_rng(rng, 2 * i + 1), train=train)
        scores = layers.affine(h, params["head"]["w"], params["head"]["b"])
        return scores, (new_state if train else state)

    return _model.Model(init_fn, apply_fn)


def two_layer_net(
    *,
    hidden_size: int = 100,
    num_classes: int = 10,
    activation: str = "relu",
    init: str = "small",
    drop_rate: float = 0.0,
) -> _model.Model:
    """The course's two-layer net: ``affine - relu - affine``.

    The :func:`mlp` with ``hidden_sizes=(hidden_size,)`` and the course's small
    random initialisation (N(0, 0.01^2) weights, zero biases). Parameters for a
    ``D``-dimensional input: ``D*H + H + H*C + C`` (3072 -> 100 -> 10: 308,310).

    Args:
      hidden_size: hidden width ``H``.
      num_classes: number of classes ``C``.
      activation: activation name.
      init: initializer name.
      drop_rate: dropout after the hidden activation.

    Returns:
      ``Model(init, apply)`` with params ``{'dense_0': {'w', 'b'}, 'head': {'w', 'b'}}``.
    """
    return mlp(
        hidden_sizes=(hidden_size,),
        num_classes=num_classes,
        activation=activation,
        init=init,
        drop_rate=drop_rate,
        name="two_layer_net",
    )
