"""Models by name: one :class:`jax231._registry.Registry` over the model factories.

The names are those of the factories (``mlp``, ``resnet``, ...), except the three
sequence classifiers, registered once under their cell's name (``rnn``, ``lstm``,
``gru``). ``get`` checks the name and the factory's keyword arguments before building,
so an unknown keyword is a ``ValueError`` listing the valid ones.
"""

from __future__ import annotations

from typing import Any

from jax231._registry import Registry
from jax231.models._alexnet import alexnet
from jax231.models._cnn import cnn1d, three_layer_convnet, vgg
from jax231.models._fmp_net import fmp_convnet
from jax231.models._inception import inception_net
from jax231.models._linear import linear
from jax231.models._mlp import mlp, two_layer_net
from jax231.models._mobilenet import mobilenet
from jax231.models._model import Model
from jax231.models._next_token import next_token_rnn
from jax231.models._resnet import resnet
from jax231.models._resnext import resnext
from jax231.models._rnn import gru_classifier, lstm_classifier, rnn_classifier

__all__ = ["NAMES", "REGISTRY", "get"]

REGISTRY: Registry[Model] = Registry("model")
"""Every model factory, in the order of the course."""

for _factory in (linear, mlp, two_layer_net, three_layer_convnet, vgg, resnet, mobilenet, cnn1d):
    REGISTRY.register(_factory)
REGISTRY.register(rnn_classifier, name="rnn")
REGISTRY.register(lstm_classifier, name="lstm")
REGISTRY.register(gru_classifier, name="gru")
# Lecture 9's architectures (scaled to 32x32) and the fractional-max-pooling net.
REGISTRY.register(alexnet)
REGISTRY.register(inception_net, name="inception")
REGISTRY.register(resnext)
REGISTRY.register(fmp_convnet)
# The character-level LM read as a next-token classifier (compare_optimizers' algoperf_mini).
REGISTRY.register(next_token_rnn)

NAMES: tuple[str, ...] = REGISTRY.names
"""Names accepted by :func:`get`, in the order of the course."""


def get(name: str, **config: Any) -> Model:
    """Builds the model registered under ``name`` with keyword ``config``.

    Args:
      name: one of :data:`NAMES`.
      **config: keyword arguments of the model's factory (``num_classes``,
        ``init``, ``drop_rate``, ...); see each factory's docstring.

    Returns:
      The :class:`Model` ``(init, apply)`` pair.

    Raises:
      ValueError: for an unknown name (listing the known ones), an unknown keyword
        (listing the factory's keywords), or an invalid value (raised by the factory).

    Examples:
      >>> model = get("two_layer_net", hidden_size=50)
      >>> params, state = model.init(jax.random.key(0), (32, 32, 3))
    """
    return REGISTRY.get(name, **config)
