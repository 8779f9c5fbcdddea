"""An AlexNet-style network scaled to 32x32 inputs (lecture 9, "CNN architectures").

Five convolutions and three affine layers, as Krizhevsky et al. (2012):

  ``conv5x5(c0) - relu - pool - conv5x5(c1, groups) - relu - pool -
  conv3x3(c2) - relu - conv3x3(c3, groups) - relu - conv3x3(c4, groups) - relu - pool -
  [affine - relu - dropout] x 2 - affine``

with *overlapping* 3x3 max pooling of stride 2 (AlexNet's choice; the input is
padded by one row and column of :math:`-\\infty` so 32 -> 16 -> 8 -> 4) and
the second, fourth and fifth convolutions *grouped* in two (the paper's
two-GPU split: each half sees only the channels of its own GPU). Scaled to
CIFAR: 5x5 and 3x3 filters of stride 1 instead of 11x11/4, narrower widths
and hidden layers; local response normalisation, which the notes say fell out
of favour, is left out.

References:
  Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep
  Convolutional Neural Networks", NeurIPS 2012; CS231n lecture 9 and the notes
  "Convolutional Neural Networks", case studies.
"""

from __future__ import annotations

from typing import Optional, Sequence

import jax
import jax.numpy as jnp

from jax231.models import _helpers, _model, layers
from jax231.types import Array, ArrayLike, ModelState, Params, PRNGKey, Shape

__all__ = ["alexnet", "overlapping_max_pool"]

_FILTERS = (5, 5, 3, 3, 3)
_GROUPED = (False, True, False, True, True)
_POOL_AFTER = (True, True, False, False, True)


def overlapping_max_pool(x: Array) -> Array:
    """3x3 max pooling of stride 2 with one row/column of :math:`-\\infty` padding at the end: ``H -> H / 2``."""
    padded = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)), constant_values=-jnp.inf)
    return layers.max_pool(padded, window=3, stride=2)


def alexnet(
    *,
    widths: Sequence[int] = (64, 192, 384, 256, 256),
    hidden_dims: Sequence[int] = (1024, 1024),
    groups: int = 2,
    num_classes: int = 10,
    drop_rate: float = 0.5,
    init: str = "he",
) -> _model.Model:
    """AlexNet scaled to 32x32 (see the module docstring).

    Params: ``{'conv_k': {'w': (F, F, C_in / g, C_out), 'b'} for k in 0..4, 'fc_0', 'fc_1', 'head'}``
    with ``g = groups`` for convolutions 1, 3 and 4 (``g = 1`` otherwise); no state.
    Parameter count for ``(H, W, C)`` inputs (``H, W`` divisible by 8), widths
    :math:`c_0..c_4` and hidden sizes :math:`d_0, d_1`:
    :math:`\\sum_k F_k^2 c_{k-1} c_k / g_k + c_k` (with :math:`c_{-1} = C`)
    :math:`+ \\frac{HW}{64} c_4 d_0 + d_0 + d_0 d_1 + d_1 + d_1 K + K`.

    Args:
      widths: the five convolutions' output channels.
      hidden_dims: widths of the hidden affine layers.
      groups: channel groups of convolutions 1, 3, 4 (2 in AlexNet; 1 for none).
      num_classes: number of scores :math:`K`.
      drop_rate: dropout after each hidden affine layer (0.5 in AlexNet).
      init: initializer name.

    Returns:
      ``Model(init, apply)`` taking ``(N, H, W, C)`` images.

    Raises:
      ValueError: for a widths list not of length 5, widths not divisible by
        ``groups`` where grouped, bad names or rates; at init for spatial sizes
        not divisible by 8.
    """
    name = "alexnet"
    widths, hidden_dims = tuple(widths), tuple(hidden_dims)
    if len(widths) != 5:
        raise ValueError(f"widths: expected 5 convolution widths, got {widths}")
    for arg, seq in (("widths", widths), ("hidden_dims", hidden_dims)):
        for i, v in enumerate(seq):
            _helpers.check_positive_int(f"{arg}[{i}]", v)
    _helpers.check_positive_int("groups", groups)
    _helpers.check_positive_int("num_classes", num_classes)
    _helpers.check_rate("drop_rate", drop_rate)
    _helpers.check_choice("init", init, tuple(layers.INITIALIZERS))
    conv_groups = tuple(groups if grouped else 1 for grouped in _GROUPED)
    for k in range(1, 5):
        if conv_groups[k] > 1 and (widths[k - 1] % groups or widths[k] % groups):
            raise ValueError(
                f"groups: expected a divisor of widths[{k - 1}] and widths[{k}] (conv_{k} is grouped), "
                f"got {groups} for widths {widths}"
            )

    def features(params: Params, x: Array) -> Array:
        h = x
        for k in range(5):
            p = params[f"conv_{k}"]
            h = layers.relu(layers.conv2d(h, p["w"], p["b"], padding="SAME", groups=conv_groups[k]))
            if _POOL_AFTER[k]:
                h = overlapping_max_pool(h)
        return layers.flatten(h)

    def init_fn(rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]:
        shape = _helpers.check_input_shape(name, input_shape, rank=3, layout="(H, W, C)")
        if shape[0] % 8 or shape[1] % 8:
            raise ValueError(f"{name}: input_shape must have H and W divisible by 8 (three pools of 2), got {shape}")
        keys = jax.random.split(rng, 5 + len(hidden_dims) + 1)
        params: dict = {}
        c_in = shape[-1]
        for k in range(5):
            params[f"conv_{k}"] = layers.init_conv(keys[k], _FILTERS[k], c_in // conv_groups[k], widths[k], init=init)
            c_in = widths[k]
        flat = int(jax.eval_shape(features, params, _helpers.zeros_batch(shape)).shape[-1])
        sizes = (flat, *hidden_dims)
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            params[f"fc_{i}"] = layers.init_affine(keys[5 + i], a, b, init=init)
        params["head"] = layers.init_affine(keys[-1], sizes[-1], num_classes, init=init)
        return params, {}

    def apply_fn(
        params: Params, state: ModelState, x: ArrayLike, *, train: bool, rng: Optional[PRNGKey] = None
    ) -> tuple[Array, ModelState]:
        x = jnp.asarray(x)
        _helpers.check_batch(name, x, rank=4, layout="(N, H, W, C)", channels=params["conv_0"]["w"].shape[2])
        _helpers.require_rng(name, rng, train=train, stochastic=drop_rate > 0)
        h = features(params, x)
        first = params["fc_0" if hidden_dims else "head"]["w"]
        _helpers.check_features(name, h, first.shape[0], what="the pooled feature map")
        for i in range(len(hidden_dims)):
            h = layers.relu(layers.affine(h, params[f"fc_{i}"]["w"], params[f"fc_{i}"]["b"]))
            if drop_rate > 0:
                h = layers.dropout(h, drop_rate=drop_rate, rng=_helpers.fold_rng(rng, i), train=train)
        return layers.affine(h, params["head"]["w"], params["head"]["b"]), state

    return _model.Model(init_fn, apply_fn)
