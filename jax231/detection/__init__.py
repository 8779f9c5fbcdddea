"""Object detection: boxes, IoU, offset encoding, jit-able NMS and mean average precision.

* Boxes (:mod:`._boxes`): :data:`FORMATS`, :func:`convert_boxes`, :func:`check_boxes`,
  :func:`box_area`, :func:`pairwise_iou`, :func:`encode_boxes`, :func:`decode_boxes`.
* NMS (:mod:`._nms`): :func:`nms` (greedy, fixed output size and validity mask, runs under
  ``jit``/``vmap``), :func:`batched_nms` (class-wise).
* Metrics (:mod:`._average_precision`): :func:`voc_map` (AP@0.5, 11-point or all-point),
  :func:`coco_map` (AP@[.5:.95], equal to pycocotools' ``COCOeval``).
* Targets and losses of the models (:mod:`._yolo`, :mod:`._localization`), masks
  (:mod:`._masks`), the segmenter's Dice loss (:mod:`._segmentation_loss`) and the multi-task
  training loop (:mod:`._train`).
* Two-stage detection (Faster R-CNN): anchors, their labels and balanced draws
  (:mod:`._anchors`), the RPN's loss and proposals (:mod:`._rpn`), RoI targets, the
  detection-head loss and final detections (:mod:`._roi_head`), the model and its
  multi-task loss (:mod:`._two_stage`).

References:
  CS231n lecture 11, "Detection and Segmentation".
"""

from jax231.detection._anchors import (
    AnchorLabels,
    Sample,
    anchor_grid,
    label_anchors,
    sample_balanced,
    sample_by_priority,
    sample_mask,
)
from jax231.detection._average_precision import (
    COCO_IOU_THRESHOLDS,
    CocoResult,
    Detections,
    GroundTruth,
    coco_map,
    voc_average_precision,
    voc_map,
)
from jax231.detection._boxes import (
    FORMATS,
    box_area,
    check_boxes,
    check_iou_threshold,
    convert_boxes,
    decode_boxes,
    encode_boxes,
    pairwise_iou,
)
from jax231.detection._localization import (
    BOX_LOSSES,
    localization_loss,
    matched_iou,
    predicted_boxes,
    smooth_l1,
)
from jax231.detection._masks import (
    check_mask,
    confusion_matrix,
    masks_to_boxes,
    mean_iou,
    pixel_accuracy,
    pixel_cross_entropy,
)
from jax231.detection._nms import NmsResult, batched_nms, nms, nms_jit
from jax231.detection._roi_head import BOX_WEIGHTS, RoiTargets, detect_rois, detection_head_loss, roi_targets
from jax231.detection._rpn import Proposals, RpnTargets, decode_clipped, propose, rpn_loss, rpn_targets
from jax231.detection._segmentation_loss import check_dice_weight, segmentation_loss, soft_dice_loss
from jax231.detection._train import TrainResult, train_multitask
from jax231.detection._two_stage import TwoStageLossWeights, TwoStageSpec, two_stage_detector, two_stage_loss
from jax231.detection._yolo import (
    DetectionOutput,
    GridBoxes,
    YoloLossWeights,
    decode_grid,
    detect,
    yolo_loss,
)

__all__ = [
    "BOX_LOSSES",
    "COCO_IOU_THRESHOLDS",
    "FORMATS",
    "CocoResult",
    "DetectionOutput",
    "Detections",
    "GridBoxes",
    "GroundTruth",
    "NmsResult",
    "TrainResult",
    "YoloLossWeights",
    "batched_nms",
    "box_area",
    "check_boxes",
    "check_dice_weight",
    "check_iou_threshold",
    "check_mask",
    "coco_map",
    "confusion_matrix",
    "convert_boxes",
    "decode_boxes",
    "decode_grid",
    "detect",
    "encode_boxes",
    "localization_loss",
    "masks_to_boxes",
    "matched_iou",
    "mean_iou",
    "nms",
    "nms_jit",
    "pairwise_iou",
    "pixel_accuracy",
    "pixel_cross_entropy",
    "predicted_boxes",
    "segmentation_loss",
    "smooth_l1",
    "soft_dice_loss",
    "train_multitask",
    "voc_average_precision",
    "voc_map",
    "yolo_loss",
    # Two-stage detection.
    "AnchorLabels",
    "Sample",
    "anchor_grid",
    "label_anchors",
    "sample_balanced",
    "sample_by_priority",
    "sample_mask",
    "BOX_WEIGHTS",
    "RoiTargets",
    "detect_rois",
    "detection_head_loss",
    "roi_targets",
    "Proposals",
    "RpnTargets",
    "decode_clipped",
    "propose",
    "rpn_loss",
    "rpn_targets",
    "TwoStageLossWeights",
    "TwoStageSpec",
    "two_stage_detector",
    "two_stage_loss",
]
