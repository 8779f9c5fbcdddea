"""A small two-stage (Faster R-CNN-style) detector: backbone, region proposal network, RoI align head.

The model (:func:`two_stage_detector`) is a ``Model(init, apply)``:

1. a backbone of 3x3 convolutions and 2x2 max pools (stride :math:`s = 2^{L-1}`) gives the
   feature map :math:`F` (``(H/s, W/s, C_F)``);
2. the RPN (a 3x3 convolution, then two 1x1 convolutions) predicts for each of the
   :math:`k` anchors of every cell (:func:`~jax231.detection.anchor_grid`) an objectness
   logit and the offsets :math:`t = ((x - x_a)/w_a, (y - y_a)/h_a, \\log(w/w_a), \\log(h/h_a))`;
3. proposals: the top anchors decoded, clipped, NMS'd, ``K`` of them with a validity mask
   (:func:`~jax231.detection.propose`; no gradient flows through them: *approximate joint
   training*);
4. the detection head reads :func:`~jax231.models.layers.roi_align` features of each RoI
   (``P x P`` bins; computed as two interpolation matrices, ``impl='matrices'``), two fully
   connected ReLU layers, and predicts ``C + 1`` class scores and ``C`` class-specific
   offsets (scaled by ``(10, 10, 5, 5)``).

In training (``train=True``) ``apply`` takes ``x = {'image', 'boxes', 'classes'}``: the ground
truth labels and samples the anchors (:func:`~jax231.detection.rpn_targets`) and the RoIs
(:func:`~jax231.detection.roi_targets`, ground-truth boxes added to the proposals) with the
step's ``rng``, and the head runs on those ``R`` sampled RoIs, as torchvision's
``model(images, targets)``: the RoIs the second stage sees depend on the ground truth, so the
assignment has to happen inside the forward pass. :func:`two_stage_loss` is then a pure function of the
outputs, the four-term multi-task loss

.. math:: L = L_\\text{cls}^\\text{rpn} + \\lambda_\\text{rpn} L_\\text{box}^\\text{rpn}
          + L_\\text{cls}^\\text{det} + \\lambda_\\text{det} L_\\text{box}^\\text{det}

(:func:`~jax231.detection.rpn_loss`, :func:`~jax231.detection.detection_head_loss`), trained
jointly by one optimizer through ``fit``. In evaluation the head runs on the ``K`` proposals
and :func:`~jax231.detection.detect_rois` gives the detections (class-wise NMS).

Left out, against Faster R-CNN: a feature pyramid (one feature map, one stride), the
4-step alternating training (approximate joint training only), image-size-dependent
sizes and batch norm; Mask R-CNN's mask head (the canvases' instance masks would
supervise it: an FCN on the same RoI-aligned features is the natural extension).

References:
  Ren et al., "Faster R-CNN", 2015; Girshick, "Fast R-CNN", 2015; He et al., "Mask R-CNN", 2017;
  CS231n lecture 11.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jax231.detection import _anchors, _rpn
from jax231.detection import _roi_head as _head
from jax231.models import Model, layers
from jax231.types import Array, ModelState, Params, PRNGKey, PyTree

CONV_IMPL = "im2col"
"""The convolution of the backbone and RPN (as the other dense models: XLA's CPU convolution
is ~35x slower inside fit's compiled chunks, ``jax231.models._dense_prediction.CONV_IMPL``)."""


class TwoStageSpec(NamedTuple):
    """Architecture and sampling options of :func:`two_stage_detector`.

    Attributes:
      num_classes: :math:`C` object classes (background excluded).
      widths: backbone channels per stage; stride :math:`s = 2^{L-1}`.
      convs_per_block: 3x3 convolutions per backbone stage.
      anchor_sizes, aspect_ratios: the :math:`k` anchors per cell (sizes in pixels, :math:`r = h/w`).
      rpn_width: channels of the RPN's 3x3 convolution.
      roi_size: :math:`P`, RoI align bins per side; hidden: units of the head's two layers.
      rpn_samples, rpn_positive_fraction, rpn_positive_iou, rpn_negative_iou: the anchor draw.
      rpn_nms_iou: the proposals' NMS threshold.
      pre_nms_train, post_nms_train, pre_nms_test, post_nms_test: proposal counts (static).
      num_rois, roi_positive_fraction, foreground_iou: the RoI draw of the second stage.
      roi_align: ``'matrices'`` (the default: ``layers.roi_align(impl='matrices')``, a dense gradient)
        or ``'layer'`` (``impl='gather'``: the same numbers, a scatter-add gradient ~5x slower here).
    """

    num_classes: int = 10
    widths: tuple[int, ...] = (16, 32, 64)
    convs_per_block: int = 1
    anchor_sizes: tuple[float, ...] = (12.0, 18.0)
    aspect_ratios: tuple[float, ...] = (1.25, 2.5)
    rpn_width: int = 64
    roi_size: int = 5
    hidden: int = 128
    rpn_samples: int = 64
    rpn_positive_fraction: float = 0.5
    rpn_positive_iou: float = 0.7
    rpn_negative_iou: float = 0.3
    rpn_nms_iou: float = 0.7
    pre_nms_train: int = 128
    post_nms_train: int = 32
    pre_nms_test: int = 128
    post_nms_test: int = 32
    num_rois: int = 32
    roi_positive_fraction: float = 0.25
    foreground_iou: float = 0.5
    roi_align: str = "matrices"


ROI_ALIGN_IMPLS = {"matrices": "matrices", "layer": "gather"}
"""``TwoStageSpec.roi_align`` -> ``layers.roi_align``'s ``impl`` (equal results)."""


def _image_shape(input_shape: Any) -> tuple[int, ...]:
    shape = input_shape["image"] if isinstance(input_shape, Mapping) else input_shape
    return tuple(int(v) for v in shape)


def _init_backbone(rng: PRNGKey, c_in: int, spec: TwoStageSpec) -> dict:
    params = {}
    for level, key in enumerate(jax.random.split(rng, len(spec.widths))):
        keys = jax.random.split(key, spec.convs_per_block)
        params[f"stage{level + 1}"] = {
            f"conv{i + 1}": layers.init_conv(keys[i], 3, c_in if i == 0 else spec.widths[level], spec.widths[level])
            for i in range(spec.convs_per_block)
        }
        c_in = spec.widths[level]
    return params


def _conv(p: dict, x: Array, padding: int = 0) -> Array:
    return layers.conv2d(x, p["w"], p["b"], padding=padding, impl=CONV_IMPL)


def _backbone(params: dict, x: Array) -> Array:
    """Stages of 3x3 convolutions + ReLU, 2x2 max pooling between stages."""
    h = x
    for level in range(len(params)):
        stage = params[f"stage{level + 1}"]
        for i in range(len(stage)):
            h = layers.relu(_conv(stage[f"conv{i + 1}"], h, padding=1))
        if level < len(params) - 1:
            h = layers.max_pool(h, window=2, stride=2)
    return h


def _split_inputs(x: PyTree, train: bool) -> tuple[Array, Array | None, Array | None]:
    if isinstance(x, Mapping):
        image, boxes, classes = x["image"], x.get("boxes"), x.get("classes")
    else:
        image, boxes, classes = x, None, None
    if train and (boxes is None or classes is None):
        raise ValueError(
            "x: expected {'image', 'boxes', 'classes'} in training (the targets are sampled in the forward pass), "
            f"got {sorted(x) if isinstance(x, Mapping) else type(x).__name__}"
        )
    return jnp.asarray(image), boxes, classes


def two_stage_detector(spec: TwoStageSpec | None = None) -> Model:
    """A Faster R-CNN-style detector (see the module docstring).

    Args:
      spec: a :class:`TwoStageSpec` (default ``TwoStageSpec()``).

    Returns:
      ``Model``. ``apply(params, state, x, train=True, rng=key)`` with ``x = {'image': (N, H, W, C),
      'boxes': (N, M, 4), 'classes': (N, M)}`` gives ``{'rpn_logits' (N, A), 'rpn_offsets' (N, A, 4),
      'rpn_targets', 'class_logits' (N, R, C + 1), 'box_offsets' (N, R, C, 4), 'roi_targets'}``;
      ``train=False`` with ``x`` the images gives the same without targets, the head run on the
      ``K`` proposals (``'proposals'``, a :class:`~jax231.detection.Proposals` ``(N, K, ...)``).
    """
    spec = TwoStageSpec() if spec is None else spec
    for name in ("num_classes", "rpn_width", "roi_size", "hidden", "convs_per_block"):
        layers._checks.check_positive_int(name, getattr(spec, name))
    if not spec.widths or min(spec.widths) < 1:
        raise ValueError(f"widths: expected a non-empty sequence of positive ints, got {spec.widths!r}")
    stride = 2 ** (len(spec.widths) - 1)
    k = len(spec.anchor_sizes) * len(spec.aspect_ratios)
    c = spec.num_classes

    def anchors_of(h: int, w: int) -> Array:
        return _anchors.anchor_grid(
            (h // stride, w // stride), stride=stride, sizes=spec.anchor_sizes, aspect_ratios=spec.aspect_ratios
        )

    anchors_of(stride, stride)  # Checks the anchor options.
    if spec.roi_align not in ROI_ALIGN_IMPLS:
        raise ValueError(f"roi_align: expected one of {tuple(ROI_ALIGN_IMPLS)}, got {spec.roi_align!r}")
    roi_align = functools.partial(layers.roi_align, impl=ROI_ALIGN_IMPLS[spec.roi_align])

    def init_fn(rng: PRNGKey, input_shape: Any) -> tuple[Params, ModelState]:
        shape = _image_shape(input_shape)
        if len(shape) != 3 or shape[0] % stride or shape[1] % stride:
            raise ValueError(f"input_shape: expected (H, W, C) with H, W divisible by {stride}, got {shape}")
        keys = jax.random.split(rng, 8)
        f, p = spec.widths[-1], spec.roi_size
        return {
            "backbone": _init_backbone(keys[0], shape[-1], spec),
            "rpn": {
                "conv": layers.init_conv(keys[1], 3, f, spec.rpn_width),
                "objectness": layers.init_conv(keys[2], 1, spec.rpn_width, k, init="small"),
                "offsets": layers.init_conv(keys[3], 1, spec.rpn_width, 4 * k, init="small"),
            },
            "head": {
                "fc1": layers.init_affine(keys[4], p * p * f, spec.hidden),
                "fc2": layers.init_affine(keys[5], spec.hidden, spec.hidden),
                "classes": layers.init_affine(keys[6], spec.hidden, c + 1, init="small"),
                "offsets": layers.init_affine(keys[7], spec.hidden, 4 * c, init=_tiny),
            },
        }, {}

    def head(params: dict, features: Array, rois: Array) -> tuple[Array, Array]:
        """RoI align of every image's RoIs ``(N, R, 4)``, then the two-layer head."""
        pooled = jax.vmap(lambda fm, b: roi_align(fm, b, output_size=(spec.roi_size,) * 2, spatial_scale=1.0 / stride))(
            features, rois
        )
        n, r = rois.shape[:2]
        h = layers.relu(layers.affine(pooled.reshape(n * r, -1), params["fc1"]["w"], params["fc1"]["b"]))
        h = layers.relu(layers.affine(h, params["fc2"]["w"], params["fc2"]["b"]))
        logits = layers.affine(h, params["classes"]["w"], params["classes"]["b"]).reshape(n, r, c + 1)
        offsets = layers.affine(h, params["offsets"]["w"], params["offsets"]["b"]).reshape(n, r, c, 4)
        return logits, offsets

    def apply_fn(params, state, x, *, train: bool, rng: PRNGKey | None = None):
        image, gt_boxes, gt_classes = _split_inputs(x, train)
        n, size = image.shape[0], image.shape[1]
        anchors = anchors_of(image.shape[1], image.shape[2])
        features = _backbone(params["backbone"], image)  # 1.
        h = layers.relu(_conv(params["rpn"]["conv"], features, padding=1))  # 2.
        rpn_logits = _conv(params["rpn"]["objectness"], h).reshape(n, -1)
        rpn_offsets = _conv(params["rpn"]["offsets"], h).reshape(n, -1, 4)
        pre, post = (spec.pre_nms_train, spec.post_nms_train) if train else (spec.pre_nms_test, spec.post_nms_test)
        proposals = jax.vmap(  # 3.
            lambda z, t: _rpn.propose(
                z, t, anchors, image_size=size, pre_nms_top_n=pre, post_nms_top_n=post, iou_threshold=spec.rpn_nms_iou
            )
        )(jax.lax.stop_gradient(rpn_logits), jax.lax.stop_gradient(rpn_offsets))
        out: dict[str, Any] = {"rpn_logits": rpn_logits, "rpn_offsets": rpn_offsets}
        if not train:
            out["class_logits"], out["box_offsets"] = head(params["head"], features, proposals.boxes)  # 4.
            out["proposals"] = proposals
            return out, state
        if rng is None:
            raise ValueError("rng: expected a PRNG key in training (anchors and RoIs are drawn at random), got None")
        keys = jax.random.split(rng, (n, 2))
        gt_boxes, gt_classes = jnp.asarray(gt_boxes, jnp.float32), jnp.asarray(gt_classes, jnp.int32)
        out["rpn_targets"] = jax.vmap(
            lambda key, b, cl: _rpn.rpn_targets(
                key,
                anchors,
                b,
                cl >= 0,
                num_samples=spec.rpn_samples,
                positive_fraction=spec.rpn_positive_fraction,
                positive_iou=spec.rpn_positive_iou,
                negative_iou=spec.rpn_negative_iou,
            )
        )(keys[:, 0], gt_boxes, gt_classes)
        out["roi_targets"] = jax.vmap(
            lambda key, prop, b, cl: _head.roi_targets(
                key,
                prop,
                b,
                cl,
                num_rois=spec.num_rois,
                positive_fraction=spec.roi_positive_fraction,
                foreground_iou=spec.foreground_iou,
            )
        )(keys[:, 1], proposals, gt_boxes, gt_classes)
        out["class_logits"], out["box_offsets"] = head(params["head"], features, out["roi_targets"].boxes)  # 4.
        return out, state

    return Model(init_fn, apply_fn)


def _tiny(rng: PRNGKey, shape, dtype=jnp.float32) -> Array:
    """torchvision's init of the box regressor: N(0, 0.001^2)."""
    return layers.small_random(rng, shape, dtype, std=0.001)


class TwoStageLossWeights(NamedTuple):
    """:math:`\\lambda_\\text{rpn}` and :math:`\\lambda_\\text{det}` of :func:`two_stage_loss`."""

    rpn_box: float = 1.0
    roi_box: float = 1.0


def two_stage_loss(
    outputs: Mapping[str, Any], batch: Any = None, *, weights: TwoStageLossWeights | None = None
) -> tuple[Array, dict[str, Array]]:
    """The four-term multi-task loss of the module docstring, per image.

    Args:
      outputs: the training outputs of a :func:`two_stage_detector` (targets included).
      batch: unused (the targets were assigned in the forward pass); accepted so the function
        is a ``loss_fn(outputs, batch)`` of :func:`~jax231.detection.train_multitask`.
      weights: the :math:`\\lambda` s.

    Returns:
      ``(per-image loss (N,), {'rpn_objectness', 'rpn_box', 'roi_class', 'roi_box': (N,)})``.
    """
    del batch
    if "rpn_targets" not in outputs or "roi_targets" not in outputs:
        raise ValueError(f"outputs: expected the training outputs (with targets), got keys {sorted(outputs)}")
    weights = TwoStageLossWeights() if weights is None else weights
    terms = _rpn.rpn_loss(
        outputs["rpn_logits"], outputs["rpn_offsets"], outputs["rpn_targets"], box_weight=weights.rpn_box
    )
    terms |= _head.detection_head_loss(
        outputs["class_logits"], outputs["box_offsets"], outputs["roi_targets"], box_weight=weights.roi_box
    )
    total = terms["rpn_objectness"] + terms["rpn_box"] + terms["roi_class"] + terms["roi_box"]
    return total, terms
