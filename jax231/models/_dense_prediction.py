"""Models of lecture 11: a U-Net segmenter, a classifier + localizer and a YOLO-style grid detector.

All three are ``Model(init, apply)`` pairs over NHWC images. ``apply`` returns

* :func:`unet`: per-pixel class scores ``(N, H, W, num_classes)``;
* :func:`localizer`: ``{'logits': (N, num_classes), 'boxes': (N, 4)}`` with boxes as
  ``(cx, cy, w, h)`` fractions of the image in ``(0, 1)``;
* :func:`grid_detector`: the raw grid ``(N, S, S, 5B + C)`` (decode it with
  :mod:`jax231.detection`'s ``yolo`` functions).

They have no batch norm or dropout (``state`` is ``{}``; the U-Net's optional group norm is
per example), so ``train`` changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jax231.models import layers
from jax231.models._model import Model
from jax231.types import Array, ModelState, Params, PRNGKey, Shape

CONV_IMPL = "im2col"
"""The :func:`~jax231.models.layers.conv2d` implementation of these models. Their training runs
as compiled chunks of updates (one ``lax.scan``), and inside a scan XLA's CPU convolution was
measured ~35x slower than outside it (jax 0.10.2, 2-core CPU: a 3x3 16->16 convolution over
32x48x48 images, forward + gradient, 21 ms in a jitted call, ~750 ms per scanned update; the
U-Net's update 0.27 s vs 10.6 s); the im2col GEMM keeps its speed in the scan (~47 ms)."""


def _init_block(rng: PRNGKey, c_in: int, c_out: int, convs: int, *, norm: bool = False) -> dict:
    keys = jax.random.split(rng, convs)
    params = {f"conv{i + 1}": layers.init_conv(keys[i], 3, c_in if i == 0 else c_out, c_out) for i in range(convs)}
    if norm:
        params.update({f"norm{i + 1}": layers.init_norm(c_out) for i in range(convs)})
    return params


def _block(params: dict, x: Array, *, groups: int = 0) -> Array:
    """3x3 convolutions (padding 1), each followed by ReLU; by group norm then ReLU when the
    block has ``norm<i>`` parameters (``groups`` groups, or one per channel if it does not divide)."""
    for i in range(sum(name.startswith("conv") for name in params)):
        p = params[f"conv{i + 1}"]
        x = layers.conv2d(x, p["w"], p["b"], padding=1, impl=CONV_IMPL)
        if f"norm{i + 1}" in params:
            g = params[f"norm{i + 1}"]
            x = layers.group_norm(x, g["gamma"], g["beta"], num_groups=math.gcd(groups, x.shape[-1]))
        x = layers.relu(x)
    return x


def _check_widths(widths: Sequence[int]) -> tuple[int, ...]:
    widths = tuple(int(w) for w in widths)
    if not widths or min(widths) < 1:
        raise ValueError(f"widths: expected a non-empty sequence of positive ints, got {widths!r}")
    return widths


SKIPS = ("concat", "add")
"""How :func:`unet` merges a skip connection: U-Net's concatenation or LinkNet's sum."""


def unet(
    *,
    num_classes: int,
    widths: Sequence[int] = (16, 32, 64),
    convs_per_block: int = 2,
    skip: str = "concat",
    decoder_convs: int | None = None,
    norm_groups: int = 0,
    coarse_scores: bool = False,
) -> Model:
    """A small U-Net: downsampling by max pooling, upsampling by transposed convolution, skips.

    Encoder level :math:`l` is a block of ``convs_per_block`` 3x3 convolutions with
    ``widths[l]`` channels followed by 2x2 max pooling; the bottom block has ``widths[-1]``
    channels; each decoder level upsamples with a 2x2 stride-2
    :func:`~jax231.models.layers.conv_transpose2d`, merges the encoder features of the same
    resolution (the skip connection: concatenated as in U-Net, or added as in LinkNet, which
    keeps the decoder's convolutions half as wide) and applies a block of ``decoder_convs``;
    a 1x1 convolution gives the class scores of every pixel.

    With ``coarse_scores`` the bottom features also get a 1x1 score layer whose output,
    bilinearly upsampled to the input size, is added to the scores (FCN's shortcut from the
    coarsest prediction): the digit identity, which needs the whole digit in the receptive
    field, then reaches the loss without passing through the decoder.

    Args:
      num_classes: classes per pixel (background included).
      widths: channels per level; the input side must be divisible by ``2**(len(widths)-1)``.
      convs_per_block: 3x3 convolutions per encoder block.
      skip: ``'concat'`` or ``'add'`` (:data:`SKIPS`).
      decoder_convs: 3x3 convolutions per decoder block (default ``convs_per_block``).
      norm_groups: group norm with this many groups after every 3x3 convolution (0: none;
        a width it does not divide gets ``gcd(norm_groups, width)`` groups).
      coarse_scores: add the upsampled scores of the bottom features.

    Returns:
      ``Model``; ``apply`` gives ``(N, H, W, num_classes)`` scores.

    References:
      Long et al., "Fully Convolutional Networks", 2015; Ronneberger et al., "U-Net", 2015;
      Chaurasia & Culurciello, "LinkNet", 2017; Wu & He, "Group Normalization", 2018;
      CS231n lecture 11.
    """
    widths = _check_widths(widths)
    num_classes = layers._checks.check_positive_int("num_classes", num_classes)
    convs_per_block = layers._checks.check_positive_int("convs_per_block", convs_per_block)
    decoder_convs = layers._checks.check_positive_int(
        "decoder_convs", convs_per_block if decoder_convs is None else decoder_convs
    )
    if skip not in SKIPS:
        raise ValueError(f"skip: expected one of {SKIPS}, got {skip!r}")
    merged = 2 if skip == "concat" else 1
    if isinstance(norm_groups, bool) or not isinstance(norm_groups, int) or norm_groups < 0:
        raise ValueError(f"norm_groups: expected an int >= 0 (0: no normalisation), got {norm_groups!r}")
    norm = norm_groups > 0
    depth = len(widths) - 1

    def init_fn(rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]:
        if len(input_shape) != 3 or input_shape[0] % 2**depth or input_shape[1] % 2**depth:
            raise ValueError(f"input_shape: expected (H, W, C) with H, W divisible by {2**depth}, got {input_shape}")
        keys = iter(jax.random.split(rng, 3 * len(widths) + 2))
        params: dict = {}
        c = input_shape[-1]
        for level, width in enumerate(widths):
            params[f"down{level + 1}"] = _init_block(next(keys), c, width, convs_per_block, norm=norm)
            c = width
        for level in reversed(range(depth)):
            params[f"upconv{level + 1}"] = layers.init_conv(next(keys), 2, c, widths[level])
            params[f"up{level + 1}"] = _init_block(
                next(keys), merged * widths[level], widths[level], decoder_convs, norm=norm
            )
            c = widths[level]
        params["head"] = layers.init_conv(next(keys), 1, c, num_classes, init="xavier")
        if coarse_scores:
            params["coarse_head"] = layers.init_conv(next(keys), 1, widths[-1], num_classes, init="xavier")
        return params, {}

    def apply_fn(params, state, x, *, train: bool, rng: PRNGKey | None = None):
        del train, rng
        skips = []
        h = jnp.asarray(x)
        for level in range(depth):
            h = _block(params[f"down{level + 1}"], h, groups=norm_groups)
            skips.append(h)
            h = layers.max_pool(h, window=2, stride=2)
        h = _block(params[f"down{depth + 1}"], h, groups=norm_groups)
        coarse = None
        if "coarse_head" in params:
            p = params["coarse_head"]
            coarse = layers.bilinear_upsample(layers.conv2d(h, p["w"], p["b"], impl=CONV_IMPL), factor=2**depth)
        for level in reversed(range(depth)):
            p = params[f"upconv{level + 1}"]
            h = layers.relu(layers.conv_transpose2d(h, p["w"], p["b"], stride=2))
            h = jnp.concatenate([h, skips[level]], axis=-1) if skip == "concat" else h + skips[level]
            h = _block(params[f"up{level + 1}"], h, groups=norm_groups)
        scores = layers.conv2d(h, params["head"]["w"], params["head"]["b"], impl=CONV_IMPL)
        return (scores if coarse is None else scores + coarse), state

    return Model(init_fn, apply_fn)


def _init_backbone(rng: PRNGKey, c_in: int, widths: tuple[int, ...], convs: int) -> dict:
    keys = jax.random.split(rng, len(widths))
    params = {}
    for level, width in enumerate(widths):
        params[f"stage{level + 1}"] = _init_block(keys[level], c_in, width, convs)
        c_in = width
    return params


def _backbone(params: dict, x: Array) -> Array:
    """Blocks of 3x3 convolutions, each but the last followed by 2x2 max pooling."""
    h = jnp.asarray(x)
    for level in range(len(params)):
        h = _block(params[f"stage{level + 1}"], h)
        if level < len(params) - 1:
            h = layers.max_pool(h, window=2, stride=2)
    return h


def localizer(
    *, num_classes: int, widths: Sequence[int] = (16, 32, 64, 64), hidden: int = 128, convs_per_block: int = 1
) -> Model:
    """Classification + localization of one object: a CNN with two heads.

    A convolutional backbone (``len(widths)`` stages, 2x2 max pooling between them) feeds
    two heads, each a ReLU layer of ``hidden`` units and a linear output:

    * the box head reads the flattened feature map (keeping *where* things are) and gives
      4 numbers through a sigmoid: the ``(cx, cy, w, h)`` of the box as fractions of the image;
    * the class head reads the feature map max-pooled over all positions (*what* is there,
      wherever it is) and gives ``num_classes`` scores.

    The notes draw one shared fully connected trunk; on these canvases (a digit anywhere on
    a 48x48 image, 4,000 training images) a class head over the flattened map has to learn
    each digit at every position, and with the box term's gradients in the same layer it
    stayed at chance (class loss ~ log 10 after 100 updates); the globally pooled class
    features are translation invariant. The notes' multi-task loss trains both heads
    (see :func:`jax231.detection.localization_loss`).

    Returns:
      ``Model``; ``apply`` gives ``{'logits': (N, num_classes), 'boxes': (N, 4)}``.

    References:
      CS231n lecture 11, "classification + localization"; Lin et al., "Network in Network",
      2014 (global pooling before the classifier).
    """
    widths = _check_widths(widths)
    num_classes = layers._checks.check_positive_int("num_classes", num_classes)
    stride = 2 ** (len(widths) - 1)

    def init_fn(rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]:
        if len(input_shape) != 3 or input_shape[0] % stride or input_shape[1] % stride:
            raise ValueError(f"input_shape: expected (H, W, C) with H, W divisible by {stride}, got {input_shape}")
        k1, k2, k3, k4, k5 = jax.random.split(rng, 5)
        flat = (input_shape[0] // stride) * (input_shape[1] // stride) * widths[-1]
        return {
            "backbone": _init_backbone(k1, input_shape[-1], widths, convs_per_block),
            "box_fc": layers.init_affine(k2, flat, hidden),
            "box_head": layers.init_affine(k3, hidden, 4, init="xavier"),
            "class_fc": layers.init_affine(k4, widths[-1], hidden),
            "class_head": layers.init_affine(k5, hidden, num_classes, init="xavier"),
        }, {}

    def apply_fn(params, state, x, *, train: bool, rng: PRNGKey | None = None):
        del train, rng
        features = _backbone(params["backbone"], x)
        h = layers.relu(layers.affine(layers.flatten(features), params["box_fc"]["w"], params["box_fc"]["b"]))
        boxes = jax.nn.sigmoid(layers.affine(h, params["box_head"]["w"], params["box_head"]["b"]))
        g = layers.relu(layers.affine(jnp.max(features, axis=(1, 2)), params["class_fc"]["w"], params["class_fc"]["b"]))
        logits = layers.affine(g, params["class_head"]["w"], params["class_head"]["b"])
        return {"logits": logits, "boxes": boxes}, state

    return Model(init_fn, apply_fn)


def grid_detector(
    *, num_classes: int, boxes_per_cell: int = 2, widths: Sequence[int] = (16, 32, 64, 128), convs_per_block: int = 1
) -> Model:
    """A single-stage, YOLO-style detector: an ``S x S`` grid of ``B`` boxes and ``C`` class scores.

    A fully convolutional backbone downsamples by ``2**(len(widths)-1)`` (so ``S = H /
    2**(len(widths)-1)``); a 3x3 convolution then a 1x1 convolution give, per cell,
    ``5B + C`` raw numbers: for each of the ``B`` boxes ``(t_x, t_y, t_w, t_h, t_o)``, then
    the ``C`` class scores (decoded by :func:`jax231.detection.decode_grid`).

    Returns:
      ``Model``; ``apply`` gives ``(N, S, S, 5B + C)``.

    References:
      Redmon et al., "You Only Look Once", 2016; CS231n lecture 11 ("detection without proposals").
    """
    widths = _check_widths(widths)
    num_classes = layers._checks.check_positive_int("num_classes", num_classes)
    b = layers._checks.check_positive_int("boxes_per_cell", boxes_per_cell)
    stride = 2 ** (len(widths) - 1)

    def init_fn(rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]:
        if len(input_shape) != 3 or input_shape[0] % stride or input_shape[1] % stride:
            raise ValueError(f"input_shape: expected (H, W, C) with H, W divisible by {stride}, got {input_shape}")
        k1, k2, k3 = jax.random.split(rng, 3)
        return {
            "backbone": _init_backbone(k1, input_shape[-1], widths, convs_per_block),
            "neck": layers.init_conv(k2, 3, widths[-1], widths[-1]),
            "head": layers.init_conv(k3, 1, widths[-1], 5 * b + num_classes, init="xavier"),
        }, {}

    def apply_fn(params, state, x, *, train: bool, rng: PRNGKey | None = None):
        del train, rng
        h = _backbone(params["backbone"], x)
        h = layers.relu(layers.conv2d(h, params["neck"]["w"], params["neck"]["b"], padding=1, impl=CONV_IMPL))
        return layers.conv2d(h, params["head"]["w"], params["head"]["b"], impl=CONV_IMPL), state

    return Model(init_fn, apply_fn)
