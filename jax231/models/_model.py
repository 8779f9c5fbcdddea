"""The uniform model API: a :class:`Model` is a pair of pure functions, plus a registry.

Every classifier of :mod:`jax231.models` is built by a factory returning
``Model(init, apply)``:

* ``init(rng, input_shape) -> (params, state)``: ``input_shape`` excludes the
  batch dimension (``(32, 32, 3)`` for CIFAR-10, ``(40, 1)`` for MNIST-1D);
  ``params`` are nested dicts with readable keys; ``state`` holds the BatchNorm
  running statistics keyed like ``params`` (``{}`` for models without any).
* ``apply(params, state, x, *, train, rng=None) -> (logits, new_state)``: in
  train mode the BatchNorm statistics are updated and ``rng`` drives dropout,
  DropConnect and stochastic depth; in eval mode ``state`` is returned unchanged.

The registry (:func:`get`, :data:`NAMES`) maps the names used by experiments and
configs to those factories. Factories are plain functions imported by name, so
go-to-definition works; the registry only adds the by-name lookup and an error
message that lists the valid names.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, NamedTuple, Optional, Protocol, Sequence

import jax
import jax.numpy as jnp

from jax231.models import layers
from jax231.types import Array, ArrayLike, ModelState, Params, PRNGKey, Shape

__all__ = ["Model", "NAMES", "get", "count_params"]


class InitFn(Protocol):
    def __call__(self, rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]: ...


class ApplyFn(Protocol):
    def __call__(
        self,
        params: Params,
        state: ModelState,
        x: ArrayLike,
        *,
        train: bool,
        rng: Optional[PRNGKey] = None,
    ) -> tuple[Array, ModelState]: ...


class Model(NamedTuple):
    """A model as two pure functions.

    Attributes:
      init: ``init(rng, input_shape) -> (params, state)``; ``input_shape`` has no
        batch dimension.
      apply: ``apply(params, state, x, *, train, rng=None) -> (logits, new_state)``
        with ``x`` of shape ``(N, *input_shape)`` and logits ``(N, num_classes)``.
    """

    init: InitFn
    apply: ApplyFn


NAMES: tuple[str, ...] = (
    "linear",
    "mlp",
    "two_layer_net",
    "three_layer_convnet",
    "vgg",
    "resnet",
    "mobilenet",
    "cnn1d",
    "rnn",
    "lstm",
    "gru",
)
"""Names accepted by :func:`get`, in the order of the course."""


def _factories() -> dict[str, Callable[..., Model]]:
    # Imported here, not at module level: the model modules import this one. The
    # functions are imported by their module path because jax231.models re-exports
    # factories named like their modules (``jax231.models.resnet`` is the function).
    from jax231.models.cnn import cnn1d, three_layer_convnet, vgg
    from jax231.models.linear import linear
    from jax231.models.mlp import mlp, two_layer_net
    from jax231.models.mobilenet import mobilenet
    from jax231.models.resnet import resnet
    from jax231.models.rnn import gru_classifier, lstm_classifier, rnn_classifier

    return {
        "linear": linear,
        "mlp": mlp,
        "two_layer_net": two_layer_net,
        "three_layer_convnet": three_layer_convnet,
        "vgg": vgg,
        "resnet": resnet,
        "mobilenet": mobilenet,
        "cnn1d": cnn1d,
        "rnn": rnn_classifier,
        "lstm": lstm_classifier,
        "gru": gru_classifier,
    }


def get(name: str, **config: Any) -> Model:
    """Builds the model registered under ``name`` with keyword ``config``.

    Args:
      name: one of :data:`NAMES`.
      **config: keyword arguments of the model's factory (``num_classes``,
        ``init``, ``drop_rate``, ...); see each factory's docstring.

    Returns:
      The :class:`Model` ``(init, apply)`` pair.

    Raises:
      ValueError: for an unknown name (the message lists the known ones), or
        for an invalid config value (raised by the factory).

    Examples:
      >>> model = get("two_layer_net", hidden_size=50)
      >>> params, state = model.init(jax.random.key(0), (32, 32, 3))
    """
    factories = _factories()
    if name not in factories:
        raise ValueError(f"unknown model name {name!r}; expected one of {list(NAMES)}")
    return factories[name](**config)


def count_params(params: Params) -> int:
    """Total number of scalars in a parameter tree."""
    return int(sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(params)))


# ----------------------------------------------------------------------------
# Validation and rng helpers shared by the model modules (private).
# ----------------------------------------------------------------------------


def check_choice(argument: str, value: Any, choices: Sequence[Any]) -> None:
    """Raises ValueError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{argument} must be one of {list(choices)}, got {value!r}")


def check_rate(argument: str, value: float) -> None:
    """Raises ValueError unless ``0 <= value < 1``."""
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{argument} must be in [0, 1), got {value!r}")


def check_positive_int(argument: str, value: Any) -> None:
    """Raises ValueError unless ``value`` is an integer >= 1."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{argument} must be a positive integer, got {value!r}")


def check_input_shape(model: str, input_shape: Sequence[int], *, rank: int, layout: str) -> Shape:
    """Validates the per-example ``input_shape`` handed to ``init``.

    Args:
      model: model name for the message.
      input_shape: shape without the batch dimension.
      rank: expected ``len(input_shape)``.
      layout: human-readable layout, e.g. ``'(H, W, C)'``.

    Returns:
      ``input_shape`` as a tuple of ints.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != rank or any(s < 1 for s in shape):
        raise ValueError(
            f"{model}: input_shape must be {layout} (without the batch dimension), got {tuple(input_shape)}"
        )
    return shape


def check_batch(model: str, x: Array, *, rank: int, layout: str, channels: Optional[int] = None) -> None:
    """Validates the rank (and optionally the channel count) of a batch ``x`` at trace time."""
    if x.ndim != rank:
        raise ValueError(f"{model}: x must have shape {layout}, got shape {x.shape}")
    if channels is not None and x.shape[-1] != channels:
        raise ValueError(
            f"{model}: x must have {channels} channels on its last axis ({layout}), got shape {x.shape}"
        )


def check_features(model: str, x: Array, expected: int, *, what: str) -> None:
    """Raises ValueError when a flattened feature size does not match the weights."""
    if x.shape[-1] != expected:
        raise ValueError(
            f"{model}: {what} has {x.shape[-1]} features but the parameters expect {expected} "
            f"(was init called with another input_shape?)"
        )


def require_rng(model: str, rng: Optional[PRNGKey], *, train: bool, stochastic: bool) -> None:
    """Raises ValueError when stochastic layers are active in train mode without an rng."""
    if train and stochastic and rng is None:
        raise ValueError(
            f"{model}: apply(..., train=True) needs rng= (a jax.random key) because dropout, "
            f"DropConnect or stochastic depth is active; got rng=None"
        )


def split_rng(rng: Optional[PRNGKey], num: int) -> list[Optional[PRNGKey]]:
    """``num`` independent keys, or ``num`` Nones when ``rng`` is None."""
    if rng is None:
        return [None] * num
    return list(jax.random.split(rng, num))


def fold_rng(rng: Optional[PRNGKey], index: int) -> Optional[PRNGKey]:
    """``jax.random.fold_in(rng, index)``, passing None through."""
    return None if rng is None else jax.random.fold_in(rng, index)


def zeros_batch(input_shape: Shape, dtype: Any = jnp.float32) -> jax.ShapeDtypeStruct:
    """A one-example abstract batch, for ``jax.eval_shape`` of feature extractors in ``init``."""
    return jax.ShapeDtypeStruct((1, *input_shape), dtype)


def batch_norm(
    params: Params, state: ModelState, x: Array, *, train: bool, momentum: float, axis_name: Optional[str]
) -> tuple[Array, ModelState]:
    """Applies ``layers.batch_norm`` with ``params={'gamma', 'beta'}``, ``state={'mean', 'var'}``."""
    y, mean, var = layers.batch_norm(
        x, params["gamma"], params["beta"], state["mean"], state["var"],
        train=train, momentum=momentum, axis_name=axis_name,
    )
    return y, {"mean": mean, "var": var}


def init_conv_no_bias(rng: PRNGKey, window: int, c_in: int, c_out: int, *, init: str) -> Params:
    """``{'w': (window, window, c_in, c_out)}``: a convolution followed by batch norm, whose beta
    makes a bias redundant."""
    return {"w": layers.init_conv(rng, window, c_in, c_out, init=init)["w"]}


def init_stem(rng: PRNGKey, c_in: int, c_out: int, *, init: str) -> tuple[Params, ModelState]:
    """Params ``{'conv': {'w': (3, 3, c_in, c_out)}, 'bn'}`` and state ``{'bn'}`` of :func:`stem`."""
    params = {"conv": init_conv_no_bias(rng, 3, c_in, c_out, init=init), "bn": layers.init_norm(c_out)}
    return params, {"bn": layers.init_batch_norm_stats(c_out)}


def stem(
    params: Params, state: ModelState, x: Array, *, train: bool, momentum: float, axis_name: Optional[str]
) -> tuple[Array, ModelState]:
    """The ``conv3x3 (stride 1, SAME, no bias) - batch norm - relu`` stem of ResNet and MobileNet."""
    h = layers.conv2d(x, params["conv"]["w"], stride=1, padding="SAME")
    h, bn_state = batch_norm(params["bn"], state["bn"], h, train=train, momentum=momentum, axis_name=axis_name)
    return layers.relu(h), {"bn": bn_state}
