"""GAN networks: a DCGAN-style convolutional generator and discriminator, and MLP ones for 2-D data.

Every network is a :class:`~jax231.models.Model` ``(init, apply)``; a generator's
``input_shape`` is the latent shape ``(Z,)`` and its ``apply`` maps latents
``(N, Z)`` to samples, a discriminator's maps samples to one logit ``(N, 1)``
(:math:`D(x) = \\sigma(\\text{logit})`, the probability that ``x`` is real).

DCGAN guidelines followed (Radford et al., 2016): no pooling (strided
convolutions in the discriminator), batch normalisation in the generator,
ReLU in the generator and LeakyReLU (slope 0.2) in the discriminator. The
generator upsamples by nearest-neighbour resizing followed by a 3 x 3
convolution ("resize-convolution", Odena et al., 2016) where DCGAN uses
fractionally strided convolutions; the two have the same capacity and the
former avoids checkerboard artefacts. The discriminator has no batch norm, so
real and fake batches never share statistics.

References:
  Goodfellow et al., "Generative Adversarial Nets", 2014;
  Radford et al., "Unsupervised Representation Learning with Deep Convolutional GANs", 2016;
  CS231n lecture 13 and assignment 3 ("Generative Adversarial Networks").
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jax231.models import _generative_checks as checks
from jax231.models import _helpers, _model, layers
from jax231.types import Array, ArrayLike, ModelState, Params, PRNGKey, Shape

__all__ = ["dcgan_discriminator", "dcgan_generator", "mlp_discriminator", "mlp_generator"]

_LEAK = 0.2


def _upsample(x: Array) -> Array:
    """Nearest-neighbour x2 upsampling of NHWC maps."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def dcgan_generator(
    *, image_shape: Shape, width: int = 32, bn_momentum: float = 0.9, conv_impl: str = "auto"
) -> _model.Model:
    """DCGAN-style generator: ``z -> affine -> (H/4, W/4, 4w) -> up, conv (2w) -> up, conv (w) -> conv (C)``.

    Each hidden layer is batch norm then ReLU; the output is ``sigmoid``, images in ``(0, 1)``.
    Params: ``{'project', 'conv_1', 'conv_2', 'out'}`` with ``{'w', 'b'}`` and ``'bn_0'..'bn_2'``
    ``{'gamma', 'beta'}``; state: ``'bn_0'..'bn_2'`` running statistics.

    Args:
      image_shape: ``(H, W, C)``, ``H`` and ``W`` multiples of 4.
      width: ``w``, channels of the last hidden layer.
      bn_momentum: momentum of the running statistics.
      conv_impl: implementation of the convolutions (``'im2col'``, ``'xla'``, ``'auto'``; see
        :func:`jax231.models.layers.conv2d`, the same function). Inside the training core's
        compiled loop XLA's CPU convolution is far slower than in plain ``jit``, so
        ``'im2col'`` pays there (``experiments/generative`` uses it); measured on the
        2-core CPU (digits, width 32, batch 64), one GAN step (both networks) ~0.24 CPU-s
        with ``'auto'`` against ~0.03 with ``'im2col'`` (eager, op by op, ``'im2col'`` is
        the slower one).

    Raises:
      ValueError: bad sizes; at ``init`` a latent shape that is not ``(Z,)`` with ``Z >= 1``.
    """
    h, w, c = _image_shape(image_shape)
    if h % 4 or w % 4:
        raise ValueError(f"image_shape: expected height and width multiples of 4, got {(h, w, c)}")
    width = checks.check_positive_int("width", width)
    checks.check_choice("conv_impl", conv_impl, layers.CONV_IMPLS)
    base = (h // 4, w // 4, 4 * width)

    def init_fn(rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]:
        latent_dim = _latent_dim(input_shape)
        k = jax.random.split(rng, 4)
        params = {
            "project": layers.init_affine(k[0], latent_dim, math.prod(base)),
            "conv_1": layers.init_conv(k[1], 3, 4 * width, 2 * width),
            "conv_2": layers.init_conv(k[2], 3, 2 * width, width),
            "out": layers.init_conv(k[3], 3, width, c, init="xavier"),
        }
        channels = (math.prod(base), 2 * width, width)
        params |= {f"bn_{i}": layers.init_norm(n) for i, n in enumerate(channels)}
        return params, {f"bn_{i}": layers.init_batch_norm_stats(n) for i, n in enumerate(channels)}

    def apply_fn(
        params: Params, state: ModelState, z: ArrayLike, *, train: bool, rng: PRNGKey | None = None
    ) -> tuple[Array, ModelState]:
        del rng
        z = jnp.asarray(z)
        _helpers.check_batch("dcgan_generator", z, rank=2, layout="(N, Z)")
        new_state = {}

        def bn_relu(i, x):
            y, new_state[f"bn_{i}"] = _helpers.batch_norm(
                params[f"bn_{i}"], state[f"bn_{i}"], x, train=train, momentum=bn_momentum, axis_name=None
            )
            return layers.relu(y)

        x = bn_relu(0, layers.affine(z, params["project"]["w"], params["project"]["b"]))
        x = x.reshape(z.shape[0], *base)
        for i in (1, 2):
            x = layers.conv2d(
                _upsample(x), params[f"conv_{i}"]["w"], params[f"conv_{i}"]["b"], padding=1, impl=conv_impl
            )
            x = bn_relu(i, x)
        x = layers.conv2d(x, params["out"]["w"], params["out"]["b"], padding=1, impl=conv_impl)
        return jax.nn.sigmoid(x), new_state

    return _model.Model(init_fn, apply_fn)  # type: ignore[arg-type]  # input named `z`, not `x`


def dcgan_discriminator(*, width: int = 32, conv_impl: str = "auto") -> _model.Model:
    """DCGAN-style discriminator: two 4 x 4 stride-2 convolutions (``w``, ``2w``), LeakyReLU 0.2, affine to a logit.

    Images in ``[0, 1]`` are centred to ``2x - 1``. Params: ``{'conv_1', 'conv_2', 'head'}``; state ``{}``.

    Args:
      width: ``w``, channels of the first convolution.
      conv_impl: implementation of the convolutions, as in :func:`dcgan_generator` (measured there).

    Raises:
      ValueError: bad width or ``conv_impl``; at ``init`` an image height or width that is not a multiple of 4.
    """
    width = checks.check_positive_int("width", width)
    checks.check_choice("conv_impl", conv_impl, layers.CONV_IMPLS)

    def init_fn(rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]:
        h, w, c = _image_shape(input_shape, name="input_shape")
        if h % 4 or w % 4:
            raise ValueError(f"input_shape: expected height and width multiples of 4, got {(h, w, c)}")
        k = jax.random.split(rng, 3)
        params = {
            "conv_1": layers.init_conv(k[0], 4, c, width),
            "conv_2": layers.init_conv(k[1], 4, width, 2 * width),
            "head": layers.init_affine(k[2], (h // 4) * (w // 4) * 2 * width, 1, init="xavier"),
        }
        return params, {}

    def apply_fn(
        params: Params, state: ModelState, x: ArrayLike, *, train: bool, rng: PRNGKey | None = None
    ) -> tuple[Array, ModelState]:
        del train, rng
        x = jnp.asarray(x)
        _helpers.check_batch("dcgan_discriminator", x, rank=4, layout="(N, H, W, C)")
        h = 2.0 * x - 1.0
        for name in ("conv_1", "conv_2"):
            h = layers.leaky_relu(
                layers.conv2d(h, params[name]["w"], params[name]["b"], stride=2, padding=1, impl=conv_impl), _LEAK
            )
        return layers.affine(layers.flatten(h), params["head"]["w"], params["head"]["b"]), state

    return _model.Model(init_fn, apply_fn)


def mlp_generator(*, out_dim: int = 2, hidden_dim: int = 128, num_layers: int = 2) -> _model.Model:
    """An MLP generator ``z -> (affine, ReLU) x num_layers -> affine (out_dim)`` for low-dimensional data.

    Params: ``{'dense_i': {'w', 'b'}, 'out': {'w', 'b'}}``; state ``{}``.
    """
    return _mlp_net(out_dim=out_dim, hidden_dim=hidden_dim, num_layers=num_layers, activation=layers.relu)


def mlp_discriminator(*, hidden_dim: int = 128, num_layers: int = 2) -> _model.Model:
    """An MLP discriminator ``x -> (affine, LeakyReLU 0.2) x num_layers -> affine (1 logit)``."""
    return _mlp_net(
        out_dim=1, hidden_dim=hidden_dim, num_layers=num_layers, activation=lambda x: layers.leaky_relu(x, _LEAK)
    )


def _mlp_net(*, out_dim: int, hidden_dim: int, num_layers: int, activation) -> _model.Model:
    out_dim = checks.check_positive_int("out_dim", out_dim)
    hidden_dim = checks.check_positive_int("hidden_dim", hidden_dim)
    num_layers = checks.check_positive_int("num_layers", num_layers)

    def init_fn(rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]:
        in_dim = _latent_dim(input_shape)
        k = jax.random.split(rng, num_layers + 1)
        sizes = [in_dim] + [hidden_dim] * num_layers
        params = {f"dense_{i}": layers.init_affine(k[i], sizes[i], sizes[i + 1]) for i in range(num_layers)}
        params["out"] = layers.init_affine(k[-1], hidden_dim, out_dim, init="xavier")
        return params, {}

    def apply_fn(
        params: Params, state: ModelState, x: ArrayLike, *, train: bool, rng: PRNGKey | None = None
    ) -> tuple[Array, ModelState]:
        del train, rng
        h = jnp.asarray(x)
        _helpers.check_batch("mlp", h, rank=2, layout="(N, D)")
        for i in range(num_layers):
            h = activation(layers.affine(h, params[f"dense_{i}"]["w"], params[f"dense_{i}"]["b"]))
        return layers.affine(h, params["out"]["w"], params["out"]["b"]), state

    return _model.Model(init_fn, apply_fn)


def _latent_dim(input_shape: Shape) -> int:
    shape = tuple(input_shape)
    if len(shape) != 1:
        raise ValueError(f"latent_dim: expected an input_shape (Z,) with Z >= 1, got {shape!r}")
    return checks.check_positive_int("latent_dim", shape[0])


def _image_shape(shape: Shape, *, name: str = "image_shape") -> tuple[int, int, int]:
    shape = tuple(shape)
    if len(shape) != 3:
        raise ValueError(f"{name}: expected (H, W, C), got {shape!r}")
    return tuple(checks.check_positive_int(name, s) for s in shape)  # type: ignore[return-value]
