"""CIFAR-sized residual networks with basic or bottleneck blocks and optional stochastic depth.

Architecture (He et al. 2016, section 4.2): a 3x3 stem convolution of ``width``
channels, ``num_stages`` stages of residual blocks whose width doubles and
whose resolution halves (stride 2) from the second stage on, then global
average pooling and an affine head. Every convolution is followed by batch
norm (so convolutions carry no bias); a shortcut is the identity, or a 1x1
convolution + batch norm when the shape changes ("option B").

* basic block: ``conv3x3 - bn - relu - conv3x3 - bn``, output width ``w``;
  depth = ``2 * num_stages * n + 2`` (``6n + 2`` for 3 stages: 20, 32, 44, 56, 110).
* bottleneck block: ``conv1x1 - bn - relu - conv3x3 - bn - relu - conv1x1 - bn``,
  output width ``4w``; depth = ``3 * num_stages * n + 2`` (``9n + 2``).

The block output is ``relu(shortcut(x) + branch(x))``.

References:
  He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016;
  Huang, Sun, Liu, Sedra & Weinberger, "Deep Networks with Stochastic Depth", ECCV 2016;
  CS231n lecture 9 "CNN architectures".
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp

from jax231.models import _helpers, _model, layers
from jax231.types import Array, ArrayLike, ModelState, Params, PRNGKey, Shape

__all__ = ["resnet", "BLOCKS"]

BLOCKS = ("basic", "bottleneck")
_EXPANSION = {"basic": 1, "bottleneck": 4}
_CONVS_PER_BLOCK = {"basic": 2, "bottleneck": 3}


def _block_init(rng: PRNGKey, block: str, c_in: int, width: int, stride: int, init: str) -> tuple[Params, ModelState]:
    """Parameters and BN statistics of one residual block."""
    c_out = width * _EXPANSION[block]
    if block == "basic":
        convs = [(3, c_in, width), (3, width, width)]
    else:
        convs = [(1, c_in, width), (3, width, width), (1, width, c_out)]
    return _helpers.init_residual_block(rng, convs, in_channels=c_in, out_channels=c_out, stride=stride, init=init)


def resnet(
    *,
    depth: int = 20,
    width: int = 16,
    block: str = "basic",
    num_stages: int = 3,
    num_classes: int = 10,
    stochastic_depth_rate: float = 0.0,
    init: str = "he",
    bn_momentum: float = 0.9,
    bn_axis_name: Optional[str] = None,
) -> _model.Model:
    """A CIFAR ResNet (see the module docstring for the architecture).

    Stochastic depth: block ``l`` of ``L`` (counted from 1) survives with
    probability :math:`p_l = 1 - \\frac{l}{L} r` (the linear decay rule of Huang
    et al., :math:`r` = ``stochastic_depth_rate`` = :math:`1 - p_L`). In train
    mode each example's residual branch is kept with probability :math:`p_l`
    and scaled by :math:`1/p_l` (inverted, per example, like "drop path"), so
    evaluation uses the full network unscaled; the paper instead drops the
    branch for the whole mini-batch and multiplies by :math:`p_l` at test time,
    which has the same expectation.

    Params: ``{'stem': {'conv': {'w'}, 'bn': {'gamma', 'beta'}}, 'stage_s': {'block_b': {'conv_j':
    {'w'}, 'bn_j': ..., ['shortcut_conv', 'shortcut_bn']}}, 'head': {'w', 'b'}}``; state has the
    same layout with ``{'mean', 'var'}`` for every ``bn``.

    Args:
      depth: total number of weighted layers (see the module docstring).
      width: channels of the stem and of the first stage (doubled at each stage).
      block: ``'basic'`` or ``'bottleneck'``.
      num_stages: number of stages (3 in the CIFAR ResNets).
      num_classes: number of scores.
      stochastic_depth_rate: :math:`1 - p_L` in ``[0, 1)``; 0 disables stochastic depth.
      init: initializer name for convolutions and the head.
      bn_momentum: batch-norm running-statistics momentum.
      bn_axis_name: mapped axis name for synchronised batch norm.

    Returns:
      ``Model(init, apply)`` taking ``(N, H, W, C)`` images.

    Raises:
      ValueError: for an unknown block, a depth not of the form above, bad
        names or rates.
    """
    name = "resnet"
    _helpers.check_choice("block", block, BLOCKS)
    for arg, val in (("depth", depth), ("width", width), ("num_stages", num_stages), ("num_classes", num_classes)):
        _helpers.check_positive_int(arg, val)
    _helpers.check_rate("stochastic_depth_rate", stochastic_depth_rate)
    _helpers.check_choice("init", init, tuple(layers.INITIALIZERS))
    per_block = _CONVS_PER_BLOCK[block] * num_stages
    if depth < per_block + 2 or (depth - 2) % per_block:
        _helpers.fail(
            "depth",
            f"{per_block}*n + 2 for block={block!r} with num_stages={num_stages} "
            f"(n >= 1 blocks per stage, e.g. {per_block + 2}, {2 * per_block + 2}, {3 * per_block + 2})",
            depth,
        )
    blocks_per_stage = (depth - 2) // per_block
    total_blocks = blocks_per_stage * num_stages
    bn_kw: dict[str, Any] = dict(momentum=bn_momentum, axis_name=bn_axis_name)

    def init_fn(rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]:
        shape = _helpers.check_input_shape(name, input_shape, rank=3, layout="(H, W, C)")
        k_stem, k_head, k_blocks = jax.random.split(rng, 3)
        params: dict = {}
        state: dict = {}
        params["stem"], state["stem"] = _helpers.init_stem(k_stem, shape[-1], width, init=init)
        c_in = width
        for s in range(num_stages):
            params[f"stage_{s}"], state[f"stage_{s}"] = {}, {}
            for b in range(blocks_per_stage):
                stride = 2 if (s > 0 and b == 0) else 1
                key = jax.random.fold_in(k_blocks, s * blocks_per_stage + b)
                p, st = _block_init(key, block, c_in, width * 2**s, stride, init)
                params[f"stage_{s}"][f"block_{b}"], state[f"stage_{s}"][f"block_{b}"] = p, st
                c_in = width * 2**s * _EXPANSION[block]
        params["head"] = layers.init_affine(k_head, c_in, num_classes, init=init)
        return params, state

    def block_apply(
        p: Params, st: ModelState, x: Array, *, stride: int, survival: float, train: bool, rng: Optional[PRNGKey]
    ) -> tuple[Array, ModelState]:
        new: dict = {}
        h = x
        num_convs = _CONVS_PER_BLOCK[block]
        for j in range(num_convs):
            # The strided convolution is the first 3x3 one: conv_0 (basic) or conv_1 (bottleneck).
            conv_stride = stride if (j == 0 and block == "basic") or (j == 1 and block == "bottleneck") else 1
            h = layers.conv2d(h, p[f"conv_{j}"]["w"], stride=conv_stride, padding="SAME")
            h, new[f"bn_{j}"] = _helpers.batch_norm(p[f"bn_{j}"], st[f"bn_{j}"], h, train=train, **bn_kw)
            if j < num_convs - 1:
                h = layers.relu(h)
        shortcut = x
        if "shortcut_conv" in p:
            shortcut = layers.conv2d(x, p["shortcut_conv"]["w"], stride=stride, padding="SAME")
            shortcut, new["shortcut_bn"] = _helpers.batch_norm(
                p["shortcut_bn"], st["shortcut_bn"], shortcut, train=train, **bn_kw
            )
        if train and survival < 1.0:
            shape = (h.shape[0],) + (1,) * (h.ndim - 1)
            keep = jax.random.bernoulli(rng, survival, shape)  # type: ignore[arg-type]  # require_rng checked rng
            h = jnp.where(keep, h / survival, jnp.zeros_like(h))
        return layers.relu(shortcut + h), new

    def apply_fn(
        params: Params, state: ModelState, x: ArrayLike, *, train: bool, rng: Optional[PRNGKey] = None
    ) -> tuple[Array, ModelState]:
        x = jnp.asarray(x)
        _helpers.check_batch(name, x, rank=4, layout="(N, H, W, C)", channels=params["stem"]["conv"]["w"].shape[2])
        _helpers.require_rng(name, rng, train=train, stochastic=stochastic_depth_rate > 0)
        new_state: dict = {}
        h, new_state["stem"] = _helpers.stem(params["stem"], state["stem"], x, train=train, **bn_kw)
        for s in range(num_stages):
            new_state[f"stage_{s}"] = {}
            for b in range(blocks_per_stage):
                index = s * blocks_per_stage + b + 1  # l = 1 .. L
                survival = 1.0 - index / total_blocks * stochastic_depth_rate
                h, new_state[f"stage_{s}"][f"block_{b}"] = block_apply(
                    params[f"stage_{s}"][f"block_{b}"],
                    state[f"stage_{s}"][f"block_{b}"],
                    h,
                    stride=2 if (s > 0 and b == 0) else 1,
                    survival=survival,
                    train=train,
                    rng=_helpers.fold_rng(rng, index),
                )
        h = layers.global_avg_pool(h)
        scores = layers.affine(h, params["head"]["w"], params["head"]["b"])
        return scores, (new_state if train else state)

    return _model.Model(init_fn, apply_fn)
