"""GoogLeNet-style Inception blocks and a small Inception network for 32x32 inputs.

An Inception block (Szegedy et al. 2015, "Inception module with dimension
reductions") runs four branches on the same input and concatenates their
channels:

  1. ``conv1x1(c1)``;
  2. ``conv1x1(r3) - relu - conv3x3(c3)``;
  3. ``conv1x1(r5) - relu - conv5x5(c5)``;
  4. ``maxpool3x3 (stride 1, same) - conv1x1(cp)``;

each convolution 'same' and followed by ReLU, so the output is ``H x W x (c1 +
c3 + c5 + cp)``. The 1x1 "reductions" ``r3``, ``r5`` keep the 3x3 and 5x5
convolutions cheap (the lecture's bottleneck argument).

The network: ``conv3x3(stem) - relu``, then stages of Inception blocks with a
2x2 max pool between stages, global average pooling (GoogLeNet's replacement
of the big affine layers) and an affine head.

References:
  Szegedy et al., "Going Deeper with Convolutions", CVPR 2015; CS231n lecture 9.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from jax231.models import _helpers, _model, layers
from jax231.types import Array, ArrayLike, ModelState, Params, PRNGKey, Shape

__all__ = ["InceptionSpec", "inception_block", "init_inception_block", "inception_net"]


class InceptionSpec(NamedTuple):
    """Channel counts of one Inception block.

    Attributes:
      c1: the 1x1 branch.
      r3: the 1x1 reduction before the 3x3 convolution.
      c3: the 3x3 branch.
      r5: the 1x1 reduction before the 5x5 convolution.
      c5: the 5x5 branch.
      cp: the 1x1 projection after the 3x3 max pool.
    """

    c1: int
    r3: int
    c3: int
    r5: int
    c5: int
    cp: int

    @property
    def out_channels(self) -> int:
        """``c1 + c3 + c5 + cp``."""
        return self.c1 + self.c3 + self.c5 + self.cp


# (key, window, field of its input channels (None: the block input), field of its output channels)
_CONVS = (
    ("b1", 1, None, "c1"),
    ("b3_reduce", 1, None, "r3"),
    ("b3", 3, "r3", "c3"),
    ("b5_reduce", 1, None, "r5"),
    ("b5", 5, "r5", "c5"),
    ("pool_proj", 1, None, "cp"),
)


def init_inception_block(rng: PRNGKey, in_channels: int, spec: InceptionSpec, *, init: str = "he") -> Params:
    """Params ``{'b1', 'b3_reduce', 'b3', 'b5_reduce', 'b5', 'pool_proj'}``, each ``{'w', 'b'}``.

    Parameter count: :math:`C(c_1 + r_3 + r_5 + c_p) + 9 r_3 c_3 + 25 r_5 c_5 +
    (c_1 + r_3 + c_3 + r_5 + c_5 + c_p)` for :math:`C` = ``in_channels``.
    """
    keys = jax.random.split(rng, len(_CONVS))
    params: dict = {}
    for key, (name, window, source, field) in zip(keys, _CONVS):
        c_in = in_channels if source is None else getattr(spec, source)
        params[name] = layers.init_conv(key, window, c_in, getattr(spec, field), init=init)
    return params


def _same_max_pool_3x3(x: Array) -> Array:
    """3x3 max pooling, stride 1, 'same' (padding of :math:`-\\infty`)."""
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 3, 3, 1), (1, 1, 1, 1), "SAME")


def inception_block(params: Params, x: ArrayLike) -> Array:
    """One Inception block (module docstring): four branches, concatenated on the channel axis.

    .. math:: y = [\\,\\rho(W_1 * x),\\ \\rho(W_3 * \\rho(R_3 * x)),\\
              \\rho(W_5 * \\rho(R_5 * x)),\\ \\rho(P * \\mathrm{maxpool}_3(x))\\,]

    with :math:`\\rho` = ReLU and :math:`*` a 'same' convolution plus bias.

    Args:
      params: from :func:`init_inception_block`.
      x: ``(N, H, W, C)``.

    Returns:
      ``(N, H, W, c1 + c3 + c5 + cp)``.
    """
    x = jnp.asarray(x)

    def conv(name: str, h: Array) -> Array:
        return layers.relu(layers.conv2d(h, params[name]["w"], params[name]["b"], padding="SAME"))

    branches = [
        conv("b1", x),
        conv("b3", conv("b3_reduce", x)),
        conv("b5", conv("b5_reduce", x)),
        conv("pool_proj", _same_max_pool_3x3(x)),
    ]
    return jnp.concatenate(branches, axis=-1)


DEFAULT_STAGES: tuple[tuple[InceptionSpec, ...], ...] = (
    (InceptionSpec(32, 48, 64, 8, 16, 16), InceptionSpec(64, 64, 96, 16, 48, 32)),
    (InceptionSpec(96, 48, 104, 8, 24, 32), InceptionSpec(80, 56, 112, 12, 32, 32)),
)
"""Two stages of two blocks: GoogLeNet's 3a/3b and 4a/4b blocks at half width."""


def inception_net(
    *,
    stages: Sequence[Sequence[InceptionSpec]] = DEFAULT_STAGES,
    stem_width: int = 64,
    num_classes: int = 10,
    drop_rate: float = 0.0,
    init: str = "he",
) -> _model.Model:
    """A small GoogLeNet for 32x32 images (see the module docstring).

    Params: ``{'stem': {'w', 'b'}, 'stage_s': {'block_b': <inception block>}, 'head': {'w', 'b'}}``;
    no state.

    Args:
      stages: per stage, the :class:`InceptionSpec` of each block (or 6-tuples).
      stem_width: channels of the 3x3 stem convolution.
      num_classes: number of scores.
      drop_rate: dropout before the head (GoogLeNet uses 0.4).
      init: initializer name.

    Returns:
      ``Model(init, apply)`` taking ``(N, H, W, C)`` images.

    Raises:
      ValueError: for an empty stage list, non-positive channel counts, bad
        names or rates; at init when ``H`` or ``W`` is not divisible by
        ``2 ** (len(stages) - 1)``.
    """
    name = "inception_net"
    stages = tuple(tuple(InceptionSpec(*spec) for spec in stage) for stage in stages)
    if not stages or not all(stages):
        raise ValueError(f"stages: expected non-empty stages of Inception blocks, got {stages}")
    for s, stage in enumerate(stages):
        for b, spec in enumerate(stage):
            for field, value in spec._asdict().items():
                _helpers.check_positive_int(f"stages[{s}][{b}].{field}", value)
    _helpers.check_positive_int("stem_width", stem_width)
    _helpers.check_positive_int("num_classes", num_classes)
    _helpers.check_rate("drop_rate", drop_rate)
    _helpers.check_choice("init", init, tuple(layers.INITIALIZERS))
    reduction = 2 ** (len(stages) - 1)

    def init_fn(rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]:
        shape = _helpers.check_input_shape(name, input_shape, rank=3, layout="(H, W, C)")
        if shape[0] % reduction or shape[1] % reduction:
            raise ValueError(f"{name}: input_shape must have H and W divisible by {reduction}, got {shape}")
        k_stem, k_blocks, k_head = jax.random.split(rng, 3)
        params: dict = {"stem": layers.init_conv(k_stem, 3, shape[-1], stem_width, init=init)}
        c_in = stem_width
        for s, stage in enumerate(stages):
            params[f"stage_{s}"] = {}
            for b, spec in enumerate(stage):
                key = jax.random.fold_in(k_blocks, 100 * s + b)
                params[f"stage_{s}"][f"block_{b}"] = init_inception_block(key, c_in, spec, init=init)
                c_in = spec.out_channels
        params["head"] = layers.init_affine(k_head, c_in, num_classes, init=init)
        return params, {}

    def apply_fn(
        params: Params, state: ModelState, x: ArrayLike, *, train: bool, rng: Optional[PRNGKey] = None
    ) -> tuple[Array, ModelState]:
        x = jnp.asarray(x)
        _helpers.check_batch(name, x, rank=4, layout="(N, H, W, C)", channels=params["stem"]["w"].shape[2])
        _helpers.require_rng(name, rng, train=train, stochastic=drop_rate > 0)
        h = layers.relu(layers.conv2d(x, params["stem"]["w"], params["stem"]["b"], padding="SAME"))
        for s, stage in enumerate(stages):
            if s > 0:
                h = layers.max_pool(h, window=2, stride=2)
            for b in range(len(stage)):
                h = inception_block(params[f"stage_{s}"][f"block_{b}"], h)
        h = layers.global_avg_pool(h)
        if drop_rate > 0:
            h = layers.dropout(h, drop_rate=drop_rate, rng=rng, train=train)
        return layers.affine(h, params["head"]["w"], params["head"]["b"]), state

    return _model.Model(init_fn, apply_fn)
