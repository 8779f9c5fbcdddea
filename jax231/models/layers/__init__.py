"""Layers of CS231n as pure functions.

Every function is pure and safe under ``jit``, ``grad`` and ``vmap``; shapes
are checked at trace time with a ``ValueError`` naming the argument. Parameters
are nested dicts with readable keys, built by the ``init_*`` constructors.

Layouts: images are NHWC with HWIO filters; sequences are batch-major
``(N, T, D)``; normalisation statistics are per last axis (channels).
"""

from jax231.models.layers._activations import (
    ACTIVATIONS,
    elu,
    get_activation,
    identity,
    leaky_relu,
    log_softmax,
    maxout,
    prelu,
    relu,
    selu,
    sigmoid,
    softmax,
    tanh,
)
from jax231.models.layers._conv import CONV_IMPLS, conv1d, conv2d, conv_output_size, depthwise_conv2d
from jax231.models.layers._dense import affine, flatten
from jax231.models.layers._dirac import dirac
from jax231.models.layers._dropout import drop_connect, dropout, spatial_dropout
from jax231.models.layers._fractional_pool import (
    fractional_max_pool,
    fractional_output_size,
    max_pool_regions,
    pooling_boundaries,
)
from jax231.models.layers._initializers import (
    INITIALIZERS,
    Initializer,
    fan_in,
    get_initializer,
    he,
    init_affine,
    init_batch_norm_stats,
    init_conv,
    init_norm,
    small_random,
    xavier,
)
from jax231.models.layers._native_build import NativeLibrary
from jax231.models.layers._native_build import load as native_kernels
from jax231.models.layers._noise import NOISE_MODES, gaussian_noise
from jax231.models.layers._norm import batch_norm, group_norm, layer_norm, spatial_batch_norm
from jax231.models.layers._pool import avg_pool, global_avg_pool, max_pool
from jax231.models.layers._recurrent import (
    gru,
    gru_step,
    init_rnn,
    lstm,
    lstm_step,
    rnn,
    rnn_step,
)
from jax231.models.layers._roi import roi_align, roi_pool
from jax231.models.layers._upsample import (
    PoolSwitches,
    bed_of_nails_upsample,
    bilinear_matrix,
    bilinear_upsample,
    conv_transpose2d,
    conv_transpose_output_size,
    max_pool_with_switches,
    max_unpool,
    nearest_upsample,
)
from jax231.models.layers._whitening import image_patches, whitening_filters

__all__ = [
    # Dense and convolution.
    "affine",
    "CONV_IMPLS",
    "NativeLibrary",
    "native_kernels",
    "conv1d",
    "conv2d",
    "conv_output_size",
    "depthwise_conv2d",
    "flatten",
    # Pooling.
    "avg_pool",
    "fractional_max_pool",
    "fractional_output_size",
    "global_avg_pool",
    "max_pool",
    "max_pool_regions",
    "pooling_boundaries",
    # Upsampling and regions of interest (lecture 11).
    "PoolSwitches",
    "bed_of_nails_upsample",
    "bilinear_matrix",
    "bilinear_upsample",
    "conv_transpose2d",
    "conv_transpose_output_size",
    "max_pool_with_switches",
    "max_unpool",
    "nearest_upsample",
    "roi_align",
    "roi_pool",
    # Normalisation.
    "batch_norm",
    "group_norm",
    "layer_norm",
    "spatial_batch_norm",
    # Regularisation.
    "NOISE_MODES",
    "drop_connect",
    "dropout",
    "gaussian_noise",
    "spatial_dropout",
    # Activations.
    "ACTIVATIONS",
    "elu",
    "get_activation",
    "identity",
    "leaky_relu",
    "log_softmax",
    "maxout",
    "prelu",
    "relu",
    "selu",
    "sigmoid",
    "softmax",
    "tanh",
    # Initialisers and parameter constructors.
    "INITIALIZERS",
    "Initializer",
    "fan_in",
    "get_initializer",
    "he",
    "init_affine",
    "init_batch_norm_stats",
    "init_conv",
    "init_norm",
    "init_rnn",
    "small_random",
    "xavier",
    # Data-dependent and identity initialisation (airbench).
    "dirac",
    "image_patches",
    "whitening_filters",
    # Recurrent.
    "gru",
    "gru_step",
    "lstm",
    "lstm_step",
    "rnn",
    "rnn_step",
]
