"""Helpers shared by the model modules (private): argument checks, rng plumbing, the BN stem.

The scalar checks are those of :mod:`jax231._validation` (one message format,
``name: expected ..., got ...``); the shape checks below add the model's name.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp

from jax231._validation import check_choice, check_positive_int, check_rate, fail
from jax231.models import layers
from jax231.types import Array, ModelState, Params, PRNGKey, Shape

__all__ = [
    "batch_norm",
    "check_batch",
    "check_choice",
    "check_features",
    "check_input_shape",
    "check_positive_int",
    "check_rate",
    "fail",
    "fold_rng",
    "init_conv_no_bias",
    "init_stem",
    "require_rng",
    "split_rng",
    "stem",
    "zeros_batch",
]


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
        fail(f"{model} input_shape", f"{layout} of positive sizes (without the batch dimension)", tuple(input_shape))
    return shape


def check_batch(model: str, x: Array, *, rank: int, layout: str, channels: Optional[int] = None) -> None:
    """Validates the rank (and optionally the channel count) of a batch ``x`` at trace time."""
    if x.ndim != rank:
        fail(f"{model} x", f"shape {layout}", None, got_text=f"shape {x.shape}")
    if channels is not None and x.shape[-1] != channels:
        fail(f"{model} x", f"{channels} channels on its last axis ({layout})", None, got_text=f"shape {x.shape}")


def check_features(model: str, x: Array, expected: int, *, what: str) -> None:
    """Raises ValueError when a flattened feature size does not match the weights."""
    if x.shape[-1] != expected:
        fail(
            f"{model} {what}",
            f"{expected} features, those of the parameters (was init called with another input_shape?)",
            None,
            got_text=f"{x.shape[-1]} features",
        )


def require_rng(model: str, rng: Optional[PRNGKey], *, train: bool, stochastic: bool) -> None:
    """Raises ValueError when stochastic layers are active in train mode without an rng."""
    if train and stochastic and rng is None:
        fail(
            f"{model} rng",
            "a jax.random key: apply(..., train=True) needs rng= because dropout, "
            "DropConnect or stochastic depth is active",
            None,
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
        x,
        params["gamma"],
        params["beta"],
        state["mean"],
        state["var"],
        train=train,
        momentum=momentum,
        axis_name=axis_name,
    )
    return y, {"mean": mean, "var": var}


def init_conv_no_bias(rng: PRNGKey, window: int, c_in: int, c_out: int, *, init: str) -> Params:
    """``{'w': (window, window, c_in, c_out)}``: a convolution followed by batch norm, whose beta
    makes a bias redundant."""
    return {"w": layers.init_conv(rng, window, c_in, c_out, init=init)["w"]}


def init_residual_block(
    rng: PRNGKey, convs: Sequence[tuple[int, int, int]], *, in_channels: int, out_channels: int, stride: int, init: str
) -> tuple[Params, ModelState]:
    """Parameters and BN statistics of a residual block: ``conv_j``/``bn_j`` per ``(window, c_in, c_out)``
    of ``convs`` (bias-free convolutions, each followed by BatchNorm), and a 1x1 projection shortcut
    ``shortcut_conv``/``shortcut_bn`` when ``stride != 1`` or the channel count changes (ResNet, ResNeXt)."""
    keys = jax.random.split(rng, len(convs) + 1)
    params: dict = {}
    state: dict = {}
    for j, (window, a, b) in enumerate(convs):
        params[f"conv_{j}"] = init_conv_no_bias(keys[j], window, a, b, init=init)
        params[f"bn_{j}"] = layers.init_norm(b)
        state[f"bn_{j}"] = layers.init_batch_norm_stats(b)
    if stride != 1 or in_channels != out_channels:
        params["shortcut_conv"] = init_conv_no_bias(keys[-1], 1, in_channels, out_channels, init=init)
        params["shortcut_bn"] = layers.init_norm(out_channels)
        state["shortcut_bn"] = layers.init_batch_norm_stats(out_channels)
    return params, state


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
