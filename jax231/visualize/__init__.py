"""Visualising and understanding networks (CS231n lecture 12, assignment 3).

Every function takes the trained network as a function: ``logits_fn(images) -> (N, K)``
scores (saliency, fooling, FGSM, class visualisation, occlusion) or a feature extractor
``images -> {layer: activation}`` (style transfer, DeepDream; :func:`vgg_extractor` for
the project's ``jax231.models.vgg`` networks). The gradient-ascent loops are jitted
``lax`` loops. Without ImageNet weights, style transfer and DeepDream on the project's
own small CNNs demonstrate the methods, not their famous pictures.

* Weights: :func:`filter_images`.
* Gradients: :func:`saliency_maps`, :func:`class_score_gradients`.
* Adversarial: :func:`fooling_images` (:class:`FoolingResult`), :func:`fgsm`, :func:`linf_perturbation`, :func:`l2_perturbation`.
* Synthesis: :func:`class_visualization`, :func:`deep_dream`, :func:`style_transfer`
  (:class:`StyleTransferResult`, :func:`gram_matrix`, :func:`content_loss`, :func:`style_loss`,
  :func:`total_variation_loss`), :func:`gaussian_blur`, :func:`jitter`.
* Occlusion: :func:`occlusion_sensitivity`.
* Features: :func:`vgg_activations`, :func:`vgg_extractor`, :func:`tsne_embedding`.
* Pictures: :func:`image_grid`, :func:`rescale_images`.
"""

from jax231.visualize._adversarial import (
    FOOLING_OBJECTIVES,
    FoolingResult,
    fgsm,
    fooling_images,
    l2_perturbation,
    linf_perturbation,
)
from jax231.visualize._blur import gaussian_blur, jitter
from jax231.visualize._class_visualization import class_visualization
from jax231.visualize._deepdream import deep_dream
from jax231.visualize._extractor import FeatureExtractor, vgg_activations, vgg_extractor
from jax231.visualize._filters import filter_images
from jax231.visualize._grid import image_grid, rescale_images
from jax231.visualize._occlusion import occlusion_sensitivity
from jax231.visualize._saliency import class_score_gradients, saliency_maps
from jax231.visualize._style import (
    StyleTransferResult,
    content_loss,
    gram_matrix,
    style_loss,
    style_transfer,
    total_variation_loss,
)
from jax231.visualize._tsne import tsne_embedding

__all__ = [
    "FOOLING_OBJECTIVES",
    "FeatureExtractor",
    "FoolingResult",
    "StyleTransferResult",
    "class_score_gradients",
    "class_visualization",
    "content_loss",
    "deep_dream",
    "fgsm",
    "filter_images",
    "fooling_images",
    "gaussian_blur",
    "gram_matrix",
    "image_grid",
    "jitter",
    "l2_perturbation",
    "linf_perturbation",
    "occlusion_sensitivity",
    "rescale_images",
    "saliency_maps",
    "style_loss",
    "style_transfer",
    "total_variation_loss",
    "tsne_embedding",
    "vgg_activations",
    "vgg_extractor",
]
