"""Image captioning: a CNN encoder feeding an RNN/LSTM decoder, with optional soft attention.

Encoder: ``len(widths)`` blocks of ``conv3x3 -> ReLU -> 2x2 max-pool`` give the grid of
features :math:`a_i \\in R^C`, ``i = 1..L`` (``L = (H / 2^k)(W / 2^k)``).

* plain decoder (CS231n assignment 3): :math:`h_0 = \\mathrm{flatten}(a) W_p + b_p`, and the
  cell reads the word embedding :math:`x_t = E[w_t]` alone;
* attention decoder (Show, Attend and Tell, soft attention): :math:`h_0 = \\bar a W_p + b_p`,
  and at step ``t``

  .. math::
      e_{t,i} = v^\\top \\tanh(a_i W_a + h_{t-1} W_h + b_a), \\quad
      \\alpha_t = \\mathrm{softmax}(e_t), \\quad z_t = \\sum_i \\alpha_{t,i} a_i,

  the cell reads :math:`[x_t, z_t]` and the scores read :math:`[h_t, z_t]`.

With ``positions``, a learned embedding is added first, :math:`a_i \\leftarrow a_i + P_i`, so the
attended summary :math:`z_t` says where it was taken from (to read objects left to right).
:func:`encoder_classifier` is the same encoder with a global max-pool and an affine head, to
pretrain it as a classifier before captioning (captioners start from a pretrained CNN).

Scores: :math:`s_t = h_t W_o + b_o` (attention: :math:`[h_t, z_t] W_o + b_o`) over the vocabulary.
Training is teacher forcing: the input at step ``t`` is the true word ``w_t`` and the target is
``w_{t+1}``; the per-example loss is the cross-entropy summed over the non-``<pad>`` targets.
At test time :meth:`Captioner.sample` feeds back its own words: greedy (argmax) or drawn from
``softmax(s_t / temperature)``.

References:
  CS231n lecture 10 and assignment 3 (``CaptioningRNN``); Vinyals et al. 2015, "Show and Tell";
  Xu et al. 2015, "Show, Attend and Tell".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jax231.models import layers
from jax231.models._model import Model
from jax231.types import Array, ArrayLike, Params, PRNGKey

CELLS = ("rnn", "lstm")
PAD, START, END = 0, 1, 2
"""Ids of ``<pad>``, ``<start>`` and ``<end>`` (as in :mod:`jax231.pipelines`' captions)."""


class CaptionSample(NamedTuple):
    """What :meth:`Captioner.sample` returns.

    Attributes:
      tokens: ``(N, max_length)`` int32: ``<start>``, the generated words, ``<end>``, then ``<pad>``.
      attention: ``(N, max_length - 1, L)`` attention weights of each step (uniform ``1 / L`` for
        the plain decoder, which does not attend).
    """

    tokens: Array
    attention: Array


class Captioner(NamedTuple):
    """A captioning model as pure functions (built by :func:`captioner`).

    Attributes:
      init: ``rng -> params``.
      apply: ``(params, images (N, H, W, C), captions (N, T)) -> logits (N, T - 1, V)``, teacher-forced.
      loss: ``(params, images, captions) -> (N,)`` summed cross-entropy over the non-pad targets.
      sample: ``(params, images, *, temperature=None, rng=None) -> CaptionSample``; greedy when
        ``temperature`` is None.
    """

    init: Callable[[PRNGKey], Params]
    apply: Callable[[Params, ArrayLike, ArrayLike], Array]
    loss: Callable[[Params, ArrayLike, ArrayLike], Array]
    sample: Callable[..., CaptionSample]


def _check_positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    return value


def check_temperature(temperature) -> float:
    """``temperature`` as a float, or ValueError unless it is a real number > 0."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"temperature: expected a float > 0, got {temperature!r}")
    return float(temperature)


def captioner(
    *,
    image_shape: Sequence[int],
    vocab_size: int,
    max_length: int,
    widths: Sequence[int] = (16, 32, 64),
    embed_dim: int = 32,
    hidden_dim: int = 128,
    cell: str = "lstm",
    attention: bool = False,
    attention_dim: int = 64,
    positions: bool = False,
) -> Captioner:
    """An encoder-decoder captioner (see the module docstring for the equations).

    Args:
      image_shape: ``(H, W, C)``; ``H`` and ``W`` divisible by ``2 ** len(widths)``.
      vocab_size: ``V`` (ids ``0, 1, 2`` are ``<pad>``, ``<start>``, ``<end>``).
      max_length: tokens of a sampled caption, ``<start>`` and ``<end>`` included.
      widths: channels of the encoder's conv blocks.
      embed_dim: word-embedding size ``E``.
      hidden_dim: recurrent state size ``H``.
      cell: ``'lstm'`` or ``'rnn'``.
      attention: soft attention over the feature grid (Show, Attend and Tell).
      attention_dim: size of the attention MLP's hidden layer.
      positions: add a learned position embedding ``P (L, C)`` to the feature grid,
        :math:`a_i \\leftarrow a_i + P_i`: attention weights alone say *where* the decoder
        looked only if the attended features carry their place (a conv grid is translation
        equivariant), which reading digits left to right needs.

    Returns:
      A :class:`Captioner`.

    Raises:
      ValueError: one line naming the bad argument.
    """
    image_shape = tuple(int(s) for s in image_shape)
    if len(image_shape) != 3:
        raise ValueError(f"image_shape: expected (H, W, C), got {image_shape!r}")
    for name, value in (
        ("vocab_size", vocab_size),
        ("max_length", max_length),
        ("embed_dim", embed_dim),
        ("hidden_dim", hidden_dim),
        ("attention_dim", attention_dim),
        *((f"widths[{k}]", w) for k, w in enumerate(widths)),
    ):
        _check_positive(name, value)
    if cell not in CELLS:
        raise ValueError(f"cell: expected one of {CELLS}, got {cell!r}")
    if max_length < 2 or vocab_size <= END:
        raise ValueError(f"max_length: expected >= 2 with vocab_size > {END}, got {max_length!r}, {vocab_size!r}")
    factor = 2 ** len(widths)
    h, w, c = image_shape
    if not widths or h % factor or w % factor:
        raise ValueError(f"image_shape: expected H, W divisible by 2**len(widths) = {factor}, got {image_shape!r}")
    grid = (h // factor) * (w // factor)
    feature_dim = widths[-1]

    def init(rng: PRNGKey) -> Params:
        keys = iter(jax.random.split(rng, len(widths) + 8))
        params = {
            "encoder": _init_encoder([next(keys) for _ in widths], (c, *widths)),
            "embed": 0.1 * jax.random.normal(next(keys), (vocab_size, embed_dim)),
            "init_h": layers.init_affine(
                next(keys), feature_dim * (1 if attention else grid), hidden_dim, init="xavier"
            ),
            "cell": layers.init_rnn(
                next(keys),
                embed_dim + (feature_dim if attention else 0),
                hidden_dim,
                cell=cell,
                forget_bias=1.0 if cell == "lstm" else 0.0,
            ),
            "output": layers.init_affine(
                next(keys), hidden_dim + (feature_dim if attention else 0), vocab_size, init="xavier"
            ),
        }
        if positions:
            params["positions"] = 0.1 * jax.random.normal(next(keys), (grid, feature_dim))
        if attention:
            params["attention"] = {
                "wa": layers.init_affine(next(keys), feature_dim, attention_dim, init="xavier"),
                "wh": layers.init_affine(next(keys), hidden_dim, attention_dim, init="xavier")["w"],
                "v": layers.init_affine(next(keys), attention_dim, 1, init="xavier")["w"][:, 0],
            }
        return params

    def check_images(images: ArrayLike) -> Array:
        images = jnp.asarray(images)
        if images.ndim != 4 or tuple(images.shape[1:]) != image_shape:
            raise ValueError(f"images: expected shape (N, {h}, {w}, {c}), got {tuple(images.shape)}")
        return images

    def encode(params: Params, images: Array) -> tuple[Array, tuple]:
        """The feature grid ``a (N, L, C)`` and the initial recurrent state."""
        a = _feature_grid(params["encoder"], images).reshape(images.shape[0], grid, feature_dim)
        if positions:
            a = a + params["positions"]
        summary = a.mean(axis=1) if attention else a.reshape(a.shape[0], -1)
        h0 = layers.affine(summary, params["init_h"]["w"], params["init_h"]["b"])
        return a, ((h0, jnp.zeros_like(h0)) if cell == "lstm" else h0)  # type: ignore[return-value]  # an RNN carries h alone

    def step(params: Params, a: Array, carry, word: Array):
        """One decoder step: ``(carry, word (N,)) -> (logits (N, V), carry, alpha (N, L))``."""
        h_prev = carry[0] if cell == "lstm" else carry
        x = params["embed"][word]
        if attention:
            p = params["attention"]
            # e_{t,i} = v . tanh(a_i W_a + h_{t-1} W_h + b_a); alpha = softmax(e); z = sum_i alpha_i a_i.
            e = jnp.tanh(layers.affine(a, p["wa"]["w"], p["wa"]["b"]) + (h_prev @ p["wh"])[:, None, :]) @ p["v"]
            alpha = jax.nn.softmax(e, axis=-1)
            z = jnp.einsum("nl,nlc->nc", alpha, a)
            x = jnp.concatenate([x, z], axis=-1)
        else:
            alpha = jnp.full((a.shape[0], grid), 1.0 / grid, a.dtype)
        carry = (
            layers.lstm_step(params["cell"], carry, x) if cell == "lstm" else layers.rnn_step(params["cell"], carry, x)
        )
        h_new = carry[0] if cell == "lstm" else carry
        out = jnp.concatenate([h_new, z], axis=-1) if attention else h_new
        return layers.affine(out, params["output"]["w"], params["output"]["b"]), carry, alpha

    def apply(params: Params, images: ArrayLike, captions: ArrayLike) -> Array:
        images, captions = check_images(images), jnp.asarray(captions)
        if captions.ndim != 2 or captions.shape[0] != images.shape[0] or captions.shape[1] < 2:
            raise ValueError(f"captions: expected shape ({images.shape[0]}, T >= 2), got {tuple(captions.shape)}")
        a, carry = encode(params, images)

        def body(carry, word):
            logits, carry, _ = step(params, a, carry, word)
            return carry, logits

        _, logits = lax.scan(body, carry, captions[:, :-1].T)
        return jnp.swapaxes(logits, 0, 1)

    def loss(params: Params, images: ArrayLike, captions: ArrayLike) -> Array:
        captions = jnp.asarray(captions)
        logits = apply(params, images, captions)
        targets = captions[:, 1:]
        # jax231.losses.softmax_cross_entropy's formula, inline (models do not import losses).
        log_probs = jax.nn.log_softmax(logits, axis=-1)
        per_token = -jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
        return jnp.sum(jnp.where(targets != PAD, per_token, 0.0), axis=1)

    def sample(
        params: Params, images: ArrayLike, *, temperature: float | None = None, rng: PRNGKey | None = None
    ) -> CaptionSample:
        images = check_images(images)
        if temperature is not None:
            temperature = check_temperature(temperature)
            if rng is None:
                raise ValueError("rng: expected a PRNG key when sampling at a temperature, got None")
        n = images.shape[0]
        a, carry = encode(params, images)
        keys = jax.random.split(rng if rng is not None else jax.random.PRNGKey(0), max_length - 1)

        def body(state, key):
            carry, word, done = state
            logits, carry, alpha = step(params, a, carry, word)
            if temperature is None:
                nxt = jnp.argmax(logits, axis=-1)
            else:
                nxt = jax.random.categorical(key, logits / temperature, axis=-1)
            nxt = jnp.where(done, PAD, nxt).astype(jnp.int32)
            return (carry, nxt, done | (nxt == END)), (nxt, alpha)

        start = jnp.full((n,), START, jnp.int32)
        _, (words, alphas) = lax.scan(body, (carry, start, jnp.zeros((n,), bool)), keys)
        return CaptionSample(jnp.concatenate([start[:, None], words.T], axis=1), jnp.swapaxes(alphas, 0, 1))

    return Captioner(init, apply, loss, sample)


def _init_encoder(keys: Sequence[PRNGKey], channels: Sequence[int]) -> Params:
    """``{'conv<k>': conv3x3 channels[k] -> channels[k + 1]}``, one key per block."""
    return {f"conv{k}": layers.init_conv(key, 3, channels[k], channels[k + 1]) for k, key in enumerate(keys)}


def _feature_grid(encoder: Params, images: Array) -> Array:
    """``(N, H / 2^k, W / 2^k, C)``: the ``k`` blocks ``conv3x3 -> ReLU -> 2x2 max-pool``."""
    x = images
    for k in range(len(encoder)):
        p = encoder[f"conv{k}"]
        x = layers.max_pool(jax.nn.relu(layers.conv2d(x, p["w"], p["b"], padding=1)))
    return x


def encoder_classifier(*, image_shape: Sequence[int], widths: Sequence[int], num_classes: int) -> Model:
    """The captioner's encoder with a global max-pool and an affine head, to pretrain it.

    :math:`s = \\max_i a_i W + b` over the cells ``i`` of the feature grid: trained as a
    classifier (e.g. of single-object canvases), its ``params['encoder']`` has the structure of
    a :func:`captioner`'s and can initialise it, as captioners start from a pretrained CNN (the
    assignment's ImageNet features; Show, Attend and Tell's VGG).

    Args:
      image_shape: ``(H, W, C)``; ``H`` and ``W`` divisible by ``2 ** len(widths)``.
      widths: channels of the conv blocks (as the captioner's).
      num_classes: ``K``, the classes of the head.

    Returns:
      A :class:`~jax231.models.Model` (no batch-norm state: ``state = {}``).
    """
    image_shape = tuple(int(s) for s in image_shape)
    factor = 2 ** len(widths)
    if len(image_shape) != 3 or not widths or image_shape[0] % factor or image_shape[1] % factor:
        raise ValueError(
            f"image_shape: expected (H, W, C) with H, W divisible by 2**len(widths) = {factor}, got {image_shape!r}"
        )
    for name, value in (("num_classes", num_classes), *((f"widths[{k}]", w) for k, w in enumerate(widths))):
        _check_positive(name, value)

    def init(rng: PRNGKey, input_shape: Sequence[int] = image_shape) -> tuple[Params, dict]:
        del input_shape  # fixed by image_shape
        keys = jax.random.split(rng, len(widths) + 1)
        return {
            "encoder": _init_encoder(list(keys[:-1]), (image_shape[-1], *widths)),
            "head": layers.init_affine(keys[-1], widths[-1], num_classes, init="xavier"),
        }, {}

    def apply(params: Params, state: dict, x: ArrayLike, *, train: bool = False, rng: PRNGKey | None = None):
        del train, rng  # no dropout, no batch norm
        pooled = _feature_grid(params["encoder"], jnp.asarray(x)).max(axis=(1, 2))
        return layers.affine(pooled, params["head"]["w"], params["head"]["b"]), state

    return Model(init, apply)


def num_grid_cells(image_shape: Sequence[int], widths: Sequence[int]) -> int:
    """``L``, the cells of the encoder's feature grid."""
    factor = 2 ** len(widths)
    return math.prod(int(s) // factor for s in tuple(image_shape)[:2])
