"""ResNeXt: residual bottleneck blocks whose 3x3 convolution is grouped ("cardinality").

A ResNeXt block (Xie et al. 2017, form (c)) is a ResNet bottleneck whose
middle 3x3 convolution is split into :math:`C` parallel paths ("cardinality")
of width :math:`d` each, implemented as one grouped convolution:

  ``conv1x1(C d) - bn - relu - conv3x3(C d, groups=C, stride) - bn - relu - conv1x1(c_out) - bn``

and the output is ``relu(shortcut(x) + branch(x))`` with the shortcut of
:mod:`jax231.models.resnet` (identity, or 1x1 convolution + batch norm when
the shape changes). For the same parameter count, more paths of smaller width
improved accuracy over a wider ResNet (the paper's "cardinality matters").

The network: the ResNet stem (``conv3x3 - bn - relu``), stages of blocks
(resolution halved by the first block of every stage after the first, inner
width :math:`C d \\cdot 2^s`), global average pooling and an affine head.

References:
  Xie, Girshick, Dollár, Tu & He, "Aggregated Residual Transformations for
  Deep Neural Networks", CVPR 2017; CS231n lecture 9.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp

from jax231.models import _helpers, _model, layers
from jax231.types import Array, ArrayLike, ModelState, Params, PRNGKey, Shape

__all__ = ["init_resnext_block", "resnext", "resnext_block"]


def init_resnext_block(
    rng: PRNGKey,
    in_channels: int,
    inner_channels: int,
    out_channels: int,
    *,
    cardinality: int,
    stride: int,
    init: str = "he",
) -> tuple[Params, ModelState]:
    """Params and BN statistics of one block.

    Params: ``{'conv_0': {'w': (1, 1, C_in, D)}, 'conv_1': {'w': (3, 3, D / C, D)}, 'conv_2': {'w': (1, 1, D,
    C_out)}, 'bn_j': {'gamma', 'beta'}, ['shortcut_conv', 'shortcut_bn']}`` with :math:`D` =
    ``inner_channels`` and :math:`C` = ``cardinality``; the shortcut projection exists when ``stride != 1``
    or ``in_channels != out_channels``.

    Raises:
      ValueError: when ``cardinality`` does not divide ``inner_channels``.
    """
    if inner_channels % cardinality:
        raise ValueError(f"cardinality: expected a divisor of the inner width {inner_channels}, got {cardinality}")
    convs = [
        (1, in_channels, inner_channels),
        (3, inner_channels // cardinality, inner_channels),
        (1, inner_channels, out_channels),
    ]
    return _helpers.init_residual_block(
        rng, convs, in_channels=in_channels, out_channels=out_channels, stride=stride, init=init
    )


def resnext_block(
    params: Params,
    state: ModelState,
    x: ArrayLike,
    *,
    cardinality: int,
    stride: int,
    train: bool,
    bn_momentum: float = 0.9,
    bn_axis_name: Optional[str] = None,
) -> tuple[Array, ModelState]:
    """One ResNeXt block (module docstring).

    .. math:: y = \\mathrm{relu}\\Big(\\mathrm{sc}(x) + \\mathrm{BN}\\big(W_2 *
              \\mathrm{relu}(\\mathrm{BN}(W_1 \\circledast_C \\mathrm{relu}(\\mathrm{BN}(W_0 * x))))\\big)\\Big)

    with :math:`\\circledast_C` the 3x3 convolution in :math:`C` groups
    (``conv2d(..., groups=C)``) of stride ``stride``.

    Args:
      params, state: from :func:`init_resnext_block`.
      x: ``(N, H, W, C_in)``.
      cardinality: the number of groups :math:`C` (as at init).
      stride: stride of the 3x3 convolution and of the shortcut.
      train: batch statistics (True) or running ones.
      bn_momentum: batch-norm running-statistics momentum.
      bn_axis_name: mapped axis for synchronised batch norm.

    Returns:
      ``(y (N, H / stride, W / stride, C_out), new_state)``.
    """
    x = jnp.asarray(x)
    bn_kw: dict[str, Any] = dict(momentum=bn_momentum, axis_name=bn_axis_name)
    new: dict = {}
    h = x
    for j, (conv_stride, groups) in enumerate(((1, 1), (stride, cardinality), (1, 1))):
        h = layers.conv2d(h, params[f"conv_{j}"]["w"], stride=conv_stride, padding="SAME", groups=groups)
        h, new[f"bn_{j}"] = _helpers.batch_norm(params[f"bn_{j}"], state[f"bn_{j}"], h, train=train, **bn_kw)
        if j < 2:
            h = layers.relu(h)
    shortcut = x
    if "shortcut_conv" in params:
        shortcut = layers.conv2d(x, params["shortcut_conv"]["w"], stride=stride, padding="SAME")
        shortcut, new["shortcut_bn"] = _helpers.batch_norm(
            params["shortcut_bn"], state["shortcut_bn"], shortcut, train=train, **bn_kw
        )
    return layers.relu(shortcut + h), new


def resnext(
    *,
    blocks_per_stage: Sequence[int] = (3, 3, 3),
    cardinality: int = 8,
    group_width: int = 4,
    widths: Sequence[int] = (64, 128, 256),
    stem_width: int = 32,
    num_classes: int = 10,
    init: str = "he",
    bn_momentum: float = 0.9,
    bn_axis_name: Optional[str] = None,
) -> _model.Model:
    """A CIFAR ResNeXt (module docstring); the defaults are a ResNeXt-29 (8 x 4d) at a quarter width.

    Stage ``s`` has ``blocks_per_stage[s]`` blocks of inner width
    ``cardinality * group_width * 2**s`` and output width ``widths[s]``; depth
    is ``3 * sum(blocks_per_stage) + 2``.

    Params: ``{'stem': {'conv', 'bn'}, 'stage_s': {'block_b': <block>}, 'head': {'w', 'b'}}``; state
    mirrors it with the BN statistics.

    Args:
      blocks_per_stage: blocks in each stage.
      cardinality: groups :math:`C` of every 3x3 convolution.
      group_width: width :math:`d` of one group in the first stage.
      widths: output channels of each stage.
      stem_width: channels of the stem.
      num_classes: number of scores.
      init: initializer name.
      bn_momentum: batch-norm running-statistics momentum.
      bn_axis_name: mapped axis name for synchronised batch norm.

    Returns:
      ``Model(init, apply)`` taking ``(N, H, W, C)`` images.

    Raises:
      ValueError: for mismatched stage lists, non-positive sizes or bad names.
    """
    name = "resnext"
    blocks_per_stage, widths = tuple(blocks_per_stage), tuple(widths)
    if not blocks_per_stage or len(blocks_per_stage) != len(widths):
        raise ValueError(
            f"blocks_per_stage, widths: expected non-empty sequences of equal length, "
            f"got {blocks_per_stage} and {widths}"
        )
    for arg, seq in (("blocks_per_stage", blocks_per_stage), ("widths", widths)):
        for i, v in enumerate(seq):
            _helpers.check_positive_int(f"{arg}[{i}]", v)
    for arg, val in (
        ("cardinality", cardinality),
        ("group_width", group_width),
        ("stem_width", stem_width),
        ("num_classes", num_classes),
    ):
        _helpers.check_positive_int(arg, val)
    _helpers.check_choice("init", init, tuple(layers.INITIALIZERS))
    bn_kw: dict[str, Any] = dict(bn_momentum=bn_momentum, bn_axis_name=bn_axis_name)

    def stride_of(s: int, b: int) -> int:
        return 2 if (s > 0 and b == 0) else 1

    def init_fn(rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]:
        shape = _helpers.check_input_shape(name, input_shape, rank=3, layout="(H, W, C)")
        k_stem, k_blocks, k_head = jax.random.split(rng, 3)
        params: dict = {}
        state: dict = {}
        params["stem"], state["stem"] = _helpers.init_stem(k_stem, shape[-1], stem_width, init=init)
        c_in = stem_width
        for s, num_blocks in enumerate(blocks_per_stage):
            params[f"stage_{s}"], state[f"stage_{s}"] = {}, {}
            for b in range(num_blocks):
                p, st = init_resnext_block(
                    jax.random.fold_in(k_blocks, 100 * s + b),
                    c_in,
                    cardinality * group_width * 2**s,
                    widths[s],
                    cardinality=cardinality,
                    stride=stride_of(s, b),
                    init=init,
                )
                params[f"stage_{s}"][f"block_{b}"], state[f"stage_{s}"][f"block_{b}"] = p, st
                c_in = widths[s]
        params["head"] = layers.init_affine(k_head, c_in, num_classes, init=init)
        return params, state

    def apply_fn(
        params: Params, state: ModelState, x: ArrayLike, *, train: bool, rng: Optional[PRNGKey] = None
    ) -> tuple[Array, ModelState]:
        del rng  # deterministic model
        x = jnp.asarray(x)
        _helpers.check_batch(name, x, rank=4, layout="(N, H, W, C)", channels=params["stem"]["conv"]["w"].shape[2])
        new_state: dict = {}
        h, new_state["stem"] = _helpers.stem(
            params["stem"], state["stem"], x, train=train, momentum=bn_momentum, axis_name=bn_axis_name
        )
        for s, num_blocks in enumerate(blocks_per_stage):
            new_state[f"stage_{s}"] = {}
            for b in range(num_blocks):
                h, new_state[f"stage_{s}"][f"block_{b}"] = resnext_block(
                    params[f"stage_{s}"][f"block_{b}"],
                    state[f"stage_{s}"][f"block_{b}"],
                    h,
                    cardinality=cardinality,
                    stride=stride_of(s, b),
                    train=train,
                    **bn_kw,
                )
        h = layers.global_avg_pool(h)
        scores = layers.affine(h, params["head"]["w"], params["head"]["b"])
        return scores, (new_state if train else state)

    return _model.Model(init_fn, apply_fn)
