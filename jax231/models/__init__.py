"""Models of CS231n as pure ``init``/``apply`` pairs, and the layers they are built from.

Every classifier is a :class:`Model` ``(init, apply)``:
``init(rng, input_shape) -> (params, state)`` and
``apply(params, state, x, *, train, rng=None) -> (logits, new_state)``; build one
by name with :func:`get` (valid names: :data:`NAMES`) or call its factory.
kNN (:mod:`jax231.models.knn`) has its own API, and the character-level
language model is a :class:`CharLM` (:func:`char_lm`, :func:`train_tbptt`).

The factories ``linear``, ``mlp``, ``resnet`` and ``mobilenet`` share the names
of their modules, so ``jax231.models.resnet`` is the function; reach a module's
other names with ``from jax231.models.resnet import BLOCKS``.

Examples:
  >>> from jax231 import models
  >>> model = models.get("resnet", depth=20, width=16)
  >>> params, state = model.init(jax.random.key(0), (32, 32, 3))
  >>> logits, state = model.apply(params, state, images, train=True)
"""

from jax231.models import layers
from jax231.models import knn
from jax231.models._model import NAMES, Model, count_params, get
from jax231.models._captioner import CaptionSample, Captioner, captioner, check_temperature
from jax231.models.cnn import cnn1d, three_layer_convnet, vgg
from jax231.models._dense_prediction import grid_detector, localizer, unet
from jax231.models.linear import class_templates, linear
from jax231.models.mlp import mlp, two_layer_net
from jax231.models.mobilenet import mobilenet
from jax231.models.resnet import resnet
from jax231.models.rnn import CharLM, char_lm, gru_classifier, lstm_classifier, rnn_classifier, train_tbptt

__all__ = [
    "CaptionSample",
    "Captioner",
    "captioner",
    "check_temperature",
    "CharLM",
    "Model",
    "NAMES",
    "char_lm",
    "class_templates",
    "cnn1d",
    "count_params",
    "get",
    "grid_detector",
    "gru_classifier",
    "knn",
    "layers",
    "linear",
    "localizer",
    "lstm_classifier",
    "mlp",
    "mobilenet",
    "resnet",
    "rnn_classifier",
    "three_layer_convnet",
    "train_tbptt",
    "two_layer_net",
    "unet",
    "vgg",
]
