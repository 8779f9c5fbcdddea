"""Plain convolutional networks: the course's three-layer convnet, a VGG-style stack, a 1-D convnet.

ResNets live in :mod:`jax231.models.resnet` and MobileNets in
:mod:`jax231.models.mobilenet`. All inputs are channels-last: ``(N, H, W, C)``
for images and ``(N, W, C)`` for signals (MNIST-1D is ``(N, 40, 1)``).

References:
  CS231n notes, "Convolutional Neural Networks: Architectures, Convolution /
  Pooling Layers" (https://cs231n.github.io/convolutional-networks/);
  Simonyan & Zisserman 2015 (VGG); Greydanus 2020, "Scaling down deep learning"
  (MNIST-1D).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp

from jax231.models import _helpers, _model, layers
from jax231.types import Array, ArrayLike, ModelState, Params, PRNGKey, Shape

__all__ = ["three_layer_convnet", "vgg", "cnn1d"]


def _checked_activation(activation: str, *, init: str, drop_rate: float) -> Callable[[Array], Array]:
    """Validates the ``activation``, ``init`` and ``drop_rate`` options every factory here takes;
    returns the activation function."""
    _helpers.check_choice("activation", activation, tuple(layers.ACTIVATIONS))
    _helpers.check_choice("init", init, tuple(layers.INITIALIZERS))
    _helpers.check_rate("drop_rate", drop_rate)
    return layers.get_activation(activation)


def _head_init(rng: PRNGKey, in_dim: int, hidden_dims: Sequence[int], num_classes: int, init: str) -> Params:
    """``{'fc_i': ..., 'head': ...}`` affine layers after the flattened features."""
    sizes = (in_dim, *hidden_dims)
    keys = jax.random.split(rng, len(hidden_dims) + 1)
    params = {
        f"fc_{i}": layers.init_affine(keys[i], a, b, init=init) for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))
    }
    params["head"] = layers.init_affine(keys[-1], sizes[-1], num_classes, init=init)
    return params


def _head_apply(
    params: Params,
    h: Array,
    *,
    num_hidden: int,
    act: Callable[[Array], Array],
    drop_rate: float,
    rng: Optional[PRNGKey],
    train: bool,
) -> Array:
    """``[affine - act - dropout] * num_hidden - affine`` on flattened features."""
    for i in range(num_hidden):
        h = act(layers.affine(h, params[f"fc_{i}"]["w"], params[f"fc_{i}"]["b"]))
        if drop_rate > 0:
            h = layers.dropout(h, drop_rate=drop_rate, rng=_helpers.fold_rng(rng, 1000 + i), train=train)
    return layers.affine(h, params["head"]["w"], params["head"]["b"])


def _flat_dim(features: Callable[[Params, Array], Array], params: Params, input_shape: Shape) -> int:
    """Size of the flattened features for one example, by abstract evaluation (no FLOPs)."""
    out = jax.eval_shape(features, params, _helpers.zeros_batch(input_shape))
    return int(out.shape[-1])


def three_layer_convnet(
    *,
    num_filters: int = 32,
    filter_size: int = 7,
    hidden_dim: int = 100,
    num_classes: int = 10,
    activation: str = "relu",
    drop_rate: float = 0.0,
    init: str = "he",
) -> _model.Model:
    """The course's three-layer convnet: ``conv - relu - 2x2 max pool - affine - relu - affine``.

    The convolution has stride 1 and ``(filter_size - 1) / 2`` zero padding, so
    it preserves ``H x W``; the pool halves it. For a ``(H, W, C)`` input the
    parameter count is ``F*F*C*K + K + (H/2)(W/2)K*Hd + Hd + Hd*C_out + C_out``
    (``K`` filters, ``Hd`` hidden units).

    Params: ``{'conv': {'w': (F, F, C, K), 'b'}, 'fc_0': {'w', 'b'}, 'head': {'w', 'b'}}``; no state.

    Args:
      num_filters: number of filters ``K``.
      filter_size: odd filter size ``F``.
      hidden_dim: width of the hidden affine layer.
      num_classes: number of scores.
      activation: activation name.
      drop_rate: dropout on the hidden affine layer's output.
      init: initializer name.

    Returns:
      ``Model(init, apply)``.

    Raises:
      ValueError: for an even ``filter_size``, bad names or rates; at init for a
        non-``(H, W, C)`` shape or odd ``H``/``W`` (the pool needs even sizes).
    """
    name = "three_layer_convnet"
    for arg, val in (
        ("num_filters", num_filters),
        ("filter_size", filter_size),
        ("hidden_dim", hidden_dim),
        ("num_classes", num_classes),
    ):
        _helpers.check_positive_int(arg, val)
    if filter_size % 2 != 1:
        _helpers.fail("filter_size", "an odd int (to preserve H x W with stride 1)", filter_size)
    act = _checked_activation(activation, init=init, drop_rate=drop_rate)
    pad = (filter_size - 1) // 2

    def features(params: Params, x: Array) -> Array:
        h = layers.conv2d(x, params["conv"]["w"], params["conv"]["b"], stride=1, padding=pad)
        return layers.flatten(layers.max_pool(act(h), window=2, stride=2))

    def init_fn(rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]:
        shape = _helpers.check_input_shape(name, input_shape, rank=3, layout="(H, W, C)")
        k_conv, k_head = jax.random.split(rng)
        params = {"conv": layers.init_conv(k_conv, filter_size, shape[-1], num_filters, init=init)}
        flat = _flat_dim(features, params, shape)
        params.update(_head_init(k_head, flat, (hidden_dim,), num_classes, init))
        return params, {}

    def apply_fn(
        params: Params, state: ModelState, x: ArrayLike, *, train: bool, rng: Optional[PRNGKey] = None
    ) -> tuple[Array, ModelState]:
        x = jnp.asarray(x)
        _helpers.check_batch(name, x, rank=4, layout="(N, H, W, C)", channels=params["conv"]["w"].shape[2])
        _helpers.require_rng(name, rng, train=train, stochastic=drop_rate > 0)
        h = features(params, x)
        _helpers.check_features(name, h, params["fc_0"]["w"].shape[0], what="the pooled feature map")
        scores = _head_apply(params, h, num_hidden=1, act=act, drop_rate=drop_rate, rng=rng, train=train)
        return scores, state

    return _model.Model(init_fn, apply_fn)


def vgg(
    *,
    stage_widths: Sequence[int] = (64, 128, 256, 512, 512),
    convs_per_stage: Sequence[int] = (2, 2, 3, 3, 3),
    hidden_dims: Sequence[int] = (512,),
    num_classes: int = 10,
    norm: Optional[str] = None,
    activation: str = "relu",
    drop_rate: float = 0.0,
    init: str = "he",
    bn_momentum: float = 0.9,
    bn_axis_name: Optional[str] = None,
) -> _model.Model:
    """A VGG-style network: stages of 3x3 'same' convolutions, each stage ending in a 2x2 max pool.

    Stage ``s`` has ``convs_per_stage[s]`` layers ``conv3x3(stage_widths[s]) -
    [batch norm] - activation``, then ``max_pool(2, 2)``; the flattened features
    go through ``[affine - activation - dropout]`` for each of ``hidden_dims``
    and an affine head. The defaults are VGG-16's convolutional part (for
    32x32 inputs: five pools leave 1x1x512) with one 512-wide hidden layer.

    Params: ``{'stage_s': {'conv_j': {'w', 'b'}, 'bn_j': {'gamma', 'beta'}}, 'fc_i': ..., 'head': ...}``
    (convolutions followed by batch norm have no bias); state: ``{'stage_s': {'bn_j': {'mean', 'var'}}}``
    with ``norm='batch'``, else ``{}``.

    Args:
      stage_widths: output channels of each stage.
      convs_per_stage: number of 3x3 convolutions per stage (same length).
      hidden_dims: widths of the hidden affine layers after flattening.
      num_classes: number of scores.
      norm: ``None`` or ``'batch'`` (batch norm after every convolution).
      activation: activation name.
      drop_rate: dropout after every hidden affine layer (as in VGG's classifier).
      init: initializer name.
      bn_momentum: batch-norm running-statistics momentum.
      bn_axis_name: mapped axis name for synchronised batch norm.

    Returns:
      ``Model(init, apply)``.

    Raises:
      ValueError: for mismatched stage lists, bad names or rates; at init when
        the input's spatial size is not divisible by ``2**len(stage_widths)``.

    References:
      Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale
      Image Recognition", ICLR 2015.
    """
    name = "vgg"
    stage_widths, convs_per_stage, hidden_dims = tuple(stage_widths), tuple(convs_per_stage), tuple(hidden_dims)
    if len(stage_widths) != len(convs_per_stage) or not stage_widths:
        _helpers.fail(
            "stage_widths, convs_per_stage",
            "non-empty sequences of equal length",
            None,
            got_text=f"{stage_widths} and {convs_per_stage}",
        )
    for arg, seq in (
        ("stage_widths", stage_widths),
        ("convs_per_stage", convs_per_stage),
        ("hidden_dims", hidden_dims),
    ):
        for i, v in enumerate(seq):
            _helpers.check_positive_int(f"{arg}[{i}]", v)
    _helpers.check_positive_int("num_classes", num_classes)
    _helpers.check_choice("norm", norm, (None, "batch"))
    act = _checked_activation(activation, init=init, drop_rate=drop_rate)
    use_bn = norm == "batch"

    def features(params: Params, x: Array, state: ModelState, train: bool) -> tuple[Array, ModelState]:
        new_state: dict = {}
        for s, num_convs in enumerate(convs_per_stage):
            stage = params[f"stage_{s}"]
            new_state[f"stage_{s}"] = {}
            for j in range(num_convs):
                conv = stage[f"conv_{j}"]
                x = layers.conv2d(x, conv["w"], conv.get("b"), stride=1, padding=1)
                if use_bn:
                    bn = stage[f"bn_{j}"]
                    stats = state[f"stage_{s}"][f"bn_{j}"]
                    x, mean, var = layers.batch_norm(
                        x,
                        bn["gamma"],
                        bn["beta"],
                        stats["mean"],
                        stats["var"],
                        train=train,
                        momentum=bn_momentum,
                        axis_name=bn_axis_name,
                    )
                    new_state[f"stage_{s}"][f"bn_{j}"] = {"mean": mean, "var": var}
                x = act(x)
            x = layers.max_pool(x, window=2, stride=2)
        return layers.flatten(x), (new_state if use_bn else {})

    def init_fn(rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]:
        shape = _helpers.check_input_shape(name, input_shape, rank=3, layout="(H, W, C)")
        factor = 2 ** len(stage_widths)
        if shape[0] % factor or shape[1] % factor:
            _helpers.fail(
                f"{name} input_shape",
                f"H and W divisible by 2**len(stage_widths) = {factor} (one 2x2 pool per stage)",
                shape,
            )
        params: dict = {}
        state: dict = {}
        c_in = shape[-1]
        for s, (width, num_convs) in enumerate(zip(stage_widths, convs_per_stage)):
            rng, *keys = jax.random.split(rng, num_convs + 1)
            params[f"stage_{s}"] = {}
            for j in range(num_convs):
                conv = layers.init_conv(keys[j], 3, c_in, width, init=init)
                if use_bn:
                    del conv["b"]  # redundant before batch norm's beta
                    params[f"stage_{s}"][f"bn_{j}"] = layers.init_norm(width)
                    state.setdefault(f"stage_{s}", {})[f"bn_{j}"] = layers.init_batch_norm_stats(width)
                params[f"stage_{s}"][f"conv_{j}"] = conv
                c_in = width
        flat = int(
            jax.eval_shape(lambda p, x: features(p, x, state, False)[0], params, _helpers.zeros_batch(shape)).shape[-1]
        )
        params.update(_head_init(rng, flat, hidden_dims, num_classes, init))
        return params, state

    def apply_fn(
        params: Params, state: ModelState, x: ArrayLike, *, train: bool, rng: Optional[PRNGKey] = None
    ) -> tuple[Array, ModelState]:
        x = jnp.asarray(x)
        c_in = params["stage_0"]["conv_0"]["w"].shape[2]
        _helpers.check_batch(name, x, rank=4, layout="(N, H, W, C)", channels=c_in)
        _helpers.require_rng(name, rng, train=train, stochastic=drop_rate > 0 and len(hidden_dims) > 0)
        h, new_state = features(params, x, state, train)
        first = params["fc_0"] if hidden_dims else params["head"]
        _helpers.check_features(name, h, first["w"].shape[0], what="the flattened feature map")
        scores = _head_apply(params, h, num_hidden=len(hidden_dims), act=act, drop_rate=drop_rate, rng=rng, train=train)
        return scores, (new_state if train else state)

    return _model.Model(init_fn, apply_fn)


def cnn1d(
    *,
    channels: int = 25,
    num_layers: int = 3,
    kernel_size: int = 5,
    stride: int = 2,
    num_classes: int = 10,
    activation: str = "relu",
    drop_rate: float = 0.0,
    init: str = "he",
) -> _model.Model:
    """A 1-D convnet for signals such as MNIST-1D: ``[conv1d - activation] * num_layers - affine``.

    The MNIST-1D paper's CNN with the defaults: three convolutions of 25
    channels, kernel 5, stride 2, 'SAME' padding (length 40 -> 20 -> 10 -> 5),
    ReLU, then a linear layer on the ``5 * 25 = 125`` flattened features.
    Parameters for ``(40, 1)`` inputs: ``(5*1*25 + 25) + 2*(5*25*25 + 25) + 125*10 + 10 = 7710``.

    Params: ``{'conv_i': {'w': (K, C_in, C), 'b': (C,)}, 'head': {'w', 'b'}}``; no state.

    Args:
      channels: channels of every convolution.
      num_layers: number of convolutions.
      kernel_size: kernel width.
      stride: stride of every convolution.
      num_classes: number of scores.
      activation: activation name.
      drop_rate: dropout on the flattened features before the head.
      init: initializer name.

    Returns:
      ``Model(init, apply)`` taking ``x`` of shape ``(N, W, C)``.

    References:
      Greydanus, "Scaling down Deep Learning", 2020 (MNIST-1D).
    """
    name = "cnn1d"
    for arg, val in (
        ("channels", channels),
        ("num_layers", num_layers),
        ("kernel_size", kernel_size),
        ("stride", stride),
        ("num_classes", num_classes),
    ):
        _helpers.check_positive_int(arg, val)
    act = _checked_activation(activation, init=init, drop_rate=drop_rate)

    def features(params: Params, x: Array) -> Array:
        for i in range(num_layers):
            conv = params[f"conv_{i}"]
            x = act(layers.conv1d(x, conv["w"], conv["b"], stride=stride, padding="SAME"))
        return layers.flatten(x)

    def init_fn(rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]:
        shape = _helpers.check_input_shape(name, input_shape, rank=2, layout="(W, C)")
        keys = jax.random.split(rng, num_layers + 1)
        params: dict = {}
        c_in = shape[-1]
        for i in range(num_layers):
            params[f"conv_{i}"] = layers.init_conv(keys[i], kernel_size, c_in, channels, init=init, spatial_dims=1)
            c_in = channels
        flat = _flat_dim(features, params, shape)
        params["head"] = layers.init_affine(keys[-1], flat, num_classes, init=init)
        return params, {}

    def apply_fn(
        params: Params, state: ModelState, x: ArrayLike, *, train: bool, rng: Optional[PRNGKey] = None
    ) -> tuple[Array, ModelState]:
        x = jnp.asarray(x)
        _helpers.check_batch(name, x, rank=3, layout="(N, W, C)", channels=params["conv_0"]["w"].shape[1])
        _helpers.require_rng(name, rng, train=train, stochastic=drop_rate > 0)
        h = features(params, x)
        _helpers.check_features(name, h, params["head"]["w"].shape[0], what="the flattened feature map")
        if drop_rate > 0:
            h = layers.dropout(h, drop_rate=drop_rate, rng=rng, train=train)
        return layers.affine(h, params["head"]["w"], params["head"]["b"]), state

    return _model.Model(init_fn, apply_fn)
