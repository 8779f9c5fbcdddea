"""A MobileNet (v1) of depthwise-separable convolutions, CIFAR-sized.

A 3x3 stem convolution, then blocks of
``depthwise conv3x3 (stride s) - bn - relu - pointwise conv1x1 - bn - relu``,
global average pooling, optional dropout and an affine head. A depthwise
separable block costs ``9 C + C C'`` weights instead of ``9 C C'`` for a
full 3x3 convolution.

References:
  Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile
  Vision Applications", 2017; CS231n lecture 9 "CNN architectures".
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp

from jax231.models import _helpers, _model, layers
from jax231.types import Array, ArrayLike, ModelState, Params, PRNGKey, Shape

__all__ = ["mobilenet", "DEFAULT_BLOCKS"]

DEFAULT_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)
"""``(out_channels, stride)`` of the 13 depthwise-separable blocks of MobileNet v1
(Howard et al., table 1). With the stem at stride 1 (instead of 2) a 32x32 CIFAR
image is reduced 32 -> 16 -> 8 -> 4 -> 2 before global pooling."""


def mobilenet(
    *,
    blocks: Sequence[tuple[int, int]] = DEFAULT_BLOCKS,
    stem_width: int = 32,
    width_multiplier: float = 1.0,
    num_classes: int = 10,
    drop_rate: float = 0.0,
    init: str = "he",
    bn_momentum: float = 0.9,
    bn_axis_name: Optional[str] = None,
) -> _model.Model:
    """MobileNet v1 with depthwise-separable blocks.

    Channel counts are ``max(1, round(alpha * c))`` with :math:`\\alpha` =
    ``width_multiplier`` (the paper's width multiplier). Convolutions carry no
    bias (batch norm follows each of them).

    Params: ``{'stem': {'conv': {'w'}, 'bn'}, 'block_i': {'depthwise': {'w': (3, 3, 1, C)},
    'depthwise_bn', 'pointwise': {'w': (1, 1, C, C')}, 'pointwise_bn'}, 'head': {'w', 'b'}}``;
    state holds ``{'mean', 'var'}`` for every ``*bn``.

    Args:
      blocks: ``(out_channels, stride)`` per depthwise-separable block.
      stem_width: channels of the 3x3 stem convolution.
      width_multiplier: :math:`\\alpha > 0` scaling every channel count.
      num_classes: number of scores.
      drop_rate: dropout on the pooled features.
      init: initializer name.
      bn_momentum: batch-norm running-statistics momentum.
      bn_axis_name: mapped axis name for synchronised batch norm.

    Returns:
      ``Model(init, apply)`` taking ``(N, H, W, C)`` images.

    Raises:
      ValueError: for malformed blocks, a non-positive multiplier, bad names or rates.
    """
    name = "mobilenet"
    blocks = tuple(tuple(b) for b in blocks)  # type: ignore[misc]  # pairs, checked below
    for i, blk in enumerate(blocks):
        if len(blk) != 2:
            _helpers.fail(f"blocks[{i}]", "a pair (out_channels, stride)", blk)
        _helpers.check_positive_int(f"blocks[{i}][0] (out_channels)", blk[0])
        _helpers.check_positive_int(f"blocks[{i}][1] (stride)", blk[1])
    _helpers.check_positive_int("stem_width", stem_width)
    _helpers.check_positive_int("num_classes", num_classes)
    if not width_multiplier > 0:
        _helpers.fail("width_multiplier", "a number > 0", width_multiplier)
    _helpers.check_rate("drop_rate", drop_rate)
    _helpers.check_choice("init", init, tuple(layers.INITIALIZERS))
    scale = lambda c: max(1, int(round(width_multiplier * c)))  # noqa: E731
    bn_kw: dict[str, Any] = dict(momentum=bn_momentum, axis_name=bn_axis_name)

    def init_fn(rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]:
        shape = _helpers.check_input_shape(name, input_shape, rank=3, layout="(H, W, C)")
        keys = jax.random.split(rng, 2 * len(blocks) + 2)
        c = scale(stem_width)
        params: dict = {}
        state: dict = {}
        params["stem"], state["stem"] = _helpers.init_stem(keys[0], shape[-1], c, init=init)
        for i, (out, _) in enumerate(blocks):
            c_out = scale(out)
            params[f"block_{i}"] = {
                "depthwise": _helpers.init_conv_no_bias(keys[2 * i + 1], 3, 1, c, init=init),
                "depthwise_bn": layers.init_norm(c),
                "pointwise": _helpers.init_conv_no_bias(keys[2 * i + 2], 1, c, c_out, init=init),
                "pointwise_bn": layers.init_norm(c_out),
            }
            state[f"block_{i}"] = {
                "depthwise_bn": layers.init_batch_norm_stats(c),
                "pointwise_bn": layers.init_batch_norm_stats(c_out),
            }
            c = c_out
        params["head"] = layers.init_affine(keys[-1], c, num_classes, init=init)
        return params, state

    def apply_fn(
        params: Params, state: ModelState, x: ArrayLike, *, train: bool, rng: Optional[PRNGKey] = None
    ) -> tuple[Array, ModelState]:
        x = jnp.asarray(x)
        _helpers.check_batch(name, x, rank=4, layout="(N, H, W, C)", channels=params["stem"]["conv"]["w"].shape[2])
        _helpers.require_rng(name, rng, train=train, stochastic=drop_rate > 0)
        new_state: dict = {}
        h, new_state["stem"] = _helpers.stem(params["stem"], state["stem"], x, train=train, **bn_kw)
        for i, (_, stride) in enumerate(blocks):
            p, st = params[f"block_{i}"], state[f"block_{i}"]
            new: dict = {}
            h = layers.depthwise_conv2d(h, p["depthwise"]["w"], stride=stride, padding="SAME")
            h, new["depthwise_bn"] = _helpers.batch_norm(p["depthwise_bn"], st["depthwise_bn"], h, train=train, **bn_kw)
            h = layers.relu(h)
            h = layers.conv2d(h, p["pointwise"]["w"], stride=1, padding=0)
            h, new["pointwise_bn"] = _helpers.batch_norm(p["pointwise_bn"], st["pointwise_bn"], h, train=train, **bn_kw)
            h = layers.relu(h)
            new_state[f"block_{i}"] = new
        h = layers.global_avg_pool(h)
        if drop_rate > 0:
            h = layers.dropout(h, drop_rate=drop_rate, rng=rng, train=train)
        scores = layers.affine(h, params["head"]["w"], params["head"]["b"])
        return scores, (new_state if train else state)

    return _model.Model(init_fn, apply_fn)
