"""Models of CS231n as pure ``init``/``apply`` pairs, and the layers they are built from.

Every classifier is a :class:`Model` ``(init, apply)``:
``init(rng, input_shape) -> (params, state)`` and
``apply(params, state, x, *, train, rng=None) -> (logits, new_state)``; build one
by name with :func:`get` (valid names: :data:`NAMES`) or call its factory.
kNN (:mod:`jax231.models.knn`) has its own API, and the character-level
language model is a :class:`CharLM` (:func:`char_lm`, :func:`train_tbptt`).

The implementation lives in private modules (``_resnet.py``, ...), so every name
here, ``jax231.models.resnet`` included, is the re-exported object (the factory),
never a module shadowed by it. Module constants are re-exported by name too
(``RESNET_BLOCKS``, ``RNN_CELLS``, ``MLP_NORMS``).

Examples:
  >>> from jax231 import models
  >>> model = models.get("resnet", depth=20, width=16)
  >>> params, state = model.init(jax.random.key(0), (32, 32, 3))
  >>> logits, state = model.apply(params, state, images, train=True)
"""

from jax231.models import knn, layers
from jax231.models._airbench import (
    AIRBENCH_COMPUTE_DTYPES,
    AIRBENCH_CONV_IMPLS,
    CIFAR10_MEAN,
    CIFAR10_STD,
    airbench_net,
    check_compute_dtype,
)
from jax231.models._alexnet import alexnet
from jax231.models._autoencoder import Autoencoder, autoencoder
from jax231.models._autoregressive import AutoregressiveModel
from jax231.models._captioner import Captioner, CaptionSample, captioner, check_temperature, encoder_classifier
from jax231.models._cnn import cnn1d, three_layer_convnet, vgg
from jax231.models._dense_prediction import grid_detector, localizer, unet
from jax231.models._fmp_net import fmp_convnet
from jax231.models._gan import dcgan_discriminator, dcgan_generator, mlp_discriminator, mlp_generator
from jax231.models._inception import InceptionSpec, inception_net
from jax231.models._linear import class_templates, linear
from jax231.models._mlp import NORMS as MLP_NORMS
from jax231.models._mlp import mlp, two_layer_net
from jax231.models._mobilenet import mobilenet
from jax231.models._model import Model, count_params
from jax231.models._next_token import next_token_rnn
from jax231.models._pixelcnn import MASK_TYPES, causal_mask, masked_conv2d, pixel_cnn
from jax231.models._pixelrnn import pixel_rnn
from jax231.models._quadratic import DeepQuadratic, deep_quadratic_hessian, haar_rotation, noisy_quadratic
from jax231.models._registry import NAMES, REGISTRY, get
from jax231.models._resnet import BLOCKS as RESNET_BLOCKS
from jax231.models._resnet import resnet
from jax231.models._resnext import resnext
from jax231.models._rnn import CELLS as RNN_CELLS
from jax231.models._rnn import CharLM, char_lm, gru_classifier, lstm_classifier, rnn_classifier, train_tbptt
from jax231.models._test_time import McPrediction, mc_dropout_predict, mc_predict, tta_predict, tta_views
from jax231.models._transfer import (
    FEATURE_MODELS,
    freeze_labels,
    group_labels,
    last_groups,
    param_groups,
    stage_features,
)
from jax231.models._vae import DECODERS, VAE, gaussian_kl, gaussian_log_density, reparameterize, vae

__all__ = [
    "AIRBENCH_COMPUTE_DTYPES",
    "AIRBENCH_CONV_IMPLS",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "airbench_net",
    "check_compute_dtype",
    # Generative models (lecture 13).
    "Autoencoder",
    "AutoregressiveModel",
    "DECODERS",
    "MASK_TYPES",
    "VAE",
    "autoencoder",
    "causal_mask",
    "dcgan_discriminator",
    "dcgan_generator",
    "gaussian_kl",
    "gaussian_log_density",
    "masked_conv2d",
    "mlp_discriminator",
    "mlp_generator",
    "pixel_cnn",
    "pixel_rnn",
    "reparameterize",
    "vae",
    # Classifiers and the rest.
    "CaptionSample",
    "Captioner",
    "captioner",
    "check_temperature",
    "encoder_classifier",
    "CharLM",
    "InceptionSpec",
    "McPrediction",
    "MLP_NORMS",
    "FEATURE_MODELS",
    "Model",
    "NAMES",
    "REGISTRY",
    "RESNET_BLOCKS",
    "RNN_CELLS",
    "alexnet",
    "char_lm",
    "DeepQuadratic",
    "deep_quadratic_hessian",
    "haar_rotation",
    "next_token_rnn",
    "noisy_quadratic",
    "class_templates",
    "cnn1d",
    "count_params",
    "fmp_convnet",
    "get",
    "grid_detector",
    "freeze_labels",
    "group_labels",
    "gru_classifier",
    "inception_net",
    "knn",
    "last_groups",
    "layers",
    "linear",
    "localizer",
    "lstm_classifier",
    "mc_dropout_predict",
    "mc_predict",
    "mlp",
    "mobilenet",
    "param_groups",
    "resnet",
    "resnext",
    "rnn_classifier",
    "stage_features",
    "three_layer_convnet",
    "train_tbptt",
    "tta_predict",
    "tta_views",
    "two_layer_net",
    "unet",
    "vgg",
]
