"""Recurrent models: many-to-one sequence classifiers and a character-level language model.

Both run the cells of :mod:`jax231.models.layers` (vanilla RNN, LSTM, GRU)
over time with ``lax.scan``; sequences are batch-major, ``(N, T, D)``.

* :func:`rnn_classifier`, :func:`lstm_classifier`, :func:`gru_classifier`:
  the uniform :class:`~jax231.models.Model` API; the scores are an affine map
  of the last hidden state (MNIST-1D signals are ``(N, 40, 1)``).
* :func:`char_lm`: a :class:`CharLM` with ``init``, ``apply`` (logits over the
  vocabulary, carrying the recurrent state), ``loss`` (mean next-character
  cross-entropy, gradient stopped at the incoming state), ``sample`` (at a
  temperature) and ``initial_carry``; :func:`train_tbptt` trains it with
  truncated backpropagation through time over long sequences.

References:
  CS231n lecture 10 "Recurrent Neural Networks" and assignment 3;
  Karpathy, "The Unreasonable Effectiveness of Recurrent Neural Networks", 2015
  (char-rnn); Williams & Peng 1990 (truncated BPTT).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
from jax import lax

from jax231.models import _helpers, _model, layers
from jax231.types import Array, ArrayLike, ModelState, OptState, Params, PRNGKey, Shape

__all__ = [
    "CELLS",
    "CharLM",
    "char_lm",
    "gru_classifier",
    "lstm_classifier",
    "rnn_classifier",
    "run_cell",
    "run_stack",
    "train_tbptt",
]

CELLS = ("rnn", "lstm", "gru")

Carry = Union[Array, tuple[Array, Array]]
"""Recurrent state: ``h`` of shape ``(N, H)``, or ``(h, c)`` for an LSTM."""


def zero_carry(cell: str, batch_size: int, hidden_dim: int, dtype: Any = jnp.float32) -> Carry:
    """The all-zeros initial state of ``cell`` (the course's ``h0 = 0``)."""
    h = jnp.zeros((batch_size, hidden_dim), dtype)
    return (h, h) if cell == "lstm" else h


def run_cell(cell: str, params: Params, xs: Array, carry: Carry) -> tuple[Array, Carry]:
    """Runs ``cell`` over ``xs`` (N, T, D) from ``carry``; returns ``(hs (N, T, H), final carry)``."""
    if cell == "lstm":
        h0, c0 = carry
        return layers.lstm(params, xs, h0, c0)
    scan = layers.rnn if cell == "rnn" else layers.gru
    hs = scan(params, xs, carry)  # type: ignore[arg-type]  # rnn/gru carry is one array
    return hs, hs[:, -1]


# ----------------------------------------------------------------------------
# Stacked (multi-layer) recurrent nets.
# ----------------------------------------------------------------------------


def init_stack(
    rng: PRNGKey, cell: str, input_dim: int, hidden_dim: int, num_layers: int, *, init: str, **extra: Any
) -> Params:
    """Params of ``num_layers`` stacked cells: ``{'cell': ...}`` for one layer (the single-layer
    layout), ``{'cells': {'layer_0': ..., 'layer_{L-1}': ...}}`` for more; layer ``l > 0`` reads
    the hidden states of layer ``l - 1``."""
    # One layer keeps `rng` itself, so single-layer models initialise exactly as before stacking existed.
    keys = [rng] if num_layers == 1 else list(jax.random.split(rng, num_layers))
    cells = [
        layers.init_rnn(key, input_dim if i == 0 else hidden_dim, hidden_dim, cell=cell, init=init, **extra)
        for i, key in enumerate(keys)
    ]
    return {"cell": cells[0]} if num_layers == 1 else {"cells": {f"layer_{i}": c for i, c in enumerate(cells)}}


def stack_layers(params: Params) -> list[Params]:
    """The per-layer cell params of :func:`init_stack`'s layout, bottom layer first."""
    if "cell" in params:
        return [params["cell"]]
    return [params["cells"][f"layer_{i}"] for i in range(len(params["cells"]))]


def run_stack(cell: str, cells: list[Params], xs: Array, carries: tuple[Carry, ...]) -> tuple[Array, tuple[Carry, ...]]:
    """Runs stacked cells: layer ``layer`` scans the hidden states of layer ``layer - 1``.

    .. math:: h^{(0)}_t = x_t, \\qquad h^{(l)}_t = \\mathrm{cell}_l(h^{(l)}_{t-1}, h^{(l-1)}_t), \\quad l = 1..L

    Args:
      cell: ``'rnn'``, ``'lstm'`` or ``'gru'``.
      cells: the ``L`` cells' params (:func:`stack_layers`).
      xs: ``(N, T, D)``.
      carries: one initial carry per layer.

    Returns:
      ``(hs (N, T, H)`` of the top layer, the ``L`` final carries).

    References:
      Graves, Mohamed & Hinton, "Speech recognition with deep recurrent neural
      networks", 2013; CS231n lecture 10 (multilayer RNNs).
    """
    finals = []
    hs = xs
    for params, carry in zip(cells, carries):
        hs, final = run_cell(cell, params, hs, carry)
        finals.append(final)
    return hs, tuple(finals)


# ----------------------------------------------------------------------------
# Many-to-one classifiers.
# ----------------------------------------------------------------------------


def _recurrent_classifier(
    cell: str, *, hidden_dim: int, num_classes: int, init: str, forget_bias: float, num_layers: int = 1
) -> _model.Model:
    name = cell
    _helpers.check_choice("cell", cell, CELLS)
    _helpers.check_positive_int("hidden_dim", hidden_dim)
    _helpers.check_positive_int("num_layers", num_layers)
    _helpers.check_positive_int("num_classes", num_classes)
    _helpers.check_choice("init", init, tuple(layers.INITIALIZERS))

    def init_fn(rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]:
        shape = _helpers.check_input_shape(name, input_shape, rank=2, layout="(T, D)")
        k_cell, k_head = jax.random.split(rng)
        extra = {"forget_bias": forget_bias} if cell == "lstm" else {}
        params = init_stack(k_cell, cell, shape[-1], hidden_dim, num_layers, init=init, **extra)
        params["head"] = layers.init_affine(k_head, hidden_dim, num_classes, init=init)
        return params, {}

    def apply_fn(
        params: Params, state: ModelState, x: ArrayLike, *, train: bool, rng: Optional[PRNGKey] = None
    ) -> tuple[Array, ModelState]:
        del train, rng  # deterministic model
        x = jnp.asarray(x)
        cells = stack_layers(params)
        _helpers.check_batch(name, x, rank=3, layout="(N, T, D)", channels=cells[0]["wx"].shape[0])
        carries = tuple(zero_carry(cell, x.shape[0], c["wh"].shape[0], x.dtype) for c in cells)
        hs, _ = run_stack(cell, cells, x, carries)
        return layers.affine(hs[:, -1], params["head"]["w"], params["head"]["b"]), state

    return _model.Model(init_fn, apply_fn)


_CLASSIFIER_DOC = """A many-to-one {title} classifier: ``scores = h_T W + b`` after scanning the sequence.

    ``h_0 = 0``; ``h_t`` follows :func:`jax231.models.layers.{cell}_step`; the head
    reads the last hidden state. Params: ``{{'cell': {{'wx', 'wh', {biases}}}, 'head':
    {{'w', 'b'}}}}``; no state. Parameters for ``(T, D)`` inputs and hidden size ``H``:
    ``{gates}(D H + H H + {nbias} H) + H C + C``.

    With ``num_layers = L > 1`` the cells are stacked (:func:`run_stack`; layer
    ``l`` reads the hidden states of layer ``l - 1``, the head the top layer's
    last one): params ``{{'cells': {{'layer_0', ..., 'layer_{{L-1}}'}}, 'head'}}`` and
    ``(L - 1) {gates}(2 H H + {nbias} H)`` more parameters.

    Args:
      hidden_dim: hidden size ``H``.
      num_classes: number of scores ``C``.
      init: initializer name of the weights (biases are zero).
      num_layers: number ``L`` of stacked recurrent layers.{extra}

    Returns:
      ``Model(init, apply)`` taking ``x`` of shape ``(N, T, D)``.
    """


def rnn_classifier(
    *, hidden_dim: int = 64, num_classes: int = 10, init: str = "xavier", num_layers: int = 1
) -> _model.Model:
    return _recurrent_classifier(
        "rnn", hidden_dim=hidden_dim, num_classes=num_classes, init=init, forget_bias=0.0, num_layers=num_layers
    )


def lstm_classifier(
    *,
    hidden_dim: int = 64,
    num_classes: int = 10,
    init: str = "xavier",
    forget_bias: float = 1.0,
    num_layers: int = 1,
) -> _model.Model:
    return _recurrent_classifier(
        "lstm",
        hidden_dim=hidden_dim,
        num_classes=num_classes,
        init=init,
        forget_bias=forget_bias,
        num_layers=num_layers,
    )


def gru_classifier(
    *, hidden_dim: int = 64, num_classes: int = 10, init: str = "xavier", num_layers: int = 1
) -> _model.Model:
    return _recurrent_classifier(
        "gru", hidden_dim=hidden_dim, num_classes=num_classes, init=init, forget_bias=0.0, num_layers=num_layers
    )


rnn_classifier.__doc__ = _CLASSIFIER_DOC.format(
    title="vanilla RNN", cell="rnn", biases="'b'", gates=1, nbias=1, extra=""
)
lstm_classifier.__doc__ = _CLASSIFIER_DOC.format(
    title="LSTM",
    cell="lstm",
    biases="'b'",
    gates=4,
    nbias=1,
    extra="\n      forget_bias: initial forget-gate bias (1.0, Jozefowicz et al. 2015).",
)
gru_classifier.__doc__ = _CLASSIFIER_DOC.format(
    title="GRU", cell="gru", biases="'bx', 'bh'", gates=3, nbias=2, extra=""
)


# ----------------------------------------------------------------------------
# Character-level language model.
# ----------------------------------------------------------------------------


class CharLM(NamedTuple):
    """A character-level language model as pure functions (built by :func:`char_lm`).

    Attributes:
      init: ``init(rng) -> params`` with ``{'embed': (V, E), 'cell': {...}, 'head': {'w': (H, V), 'b'}}``.
      apply: ``apply(params, tokens, carry=None) -> (logits, carry)``; ``tokens``
        int ``(N, T)``, logits ``(N, T, V)``; ``carry=None`` starts from zeros.
      loss: ``loss(params, inputs, targets, carry) -> (mean_loss, new_carry)``: mean
        cross-entropy of predicting ``targets[n, t]`` from ``inputs[n, :t+1]``;
        the incoming ``carry`` is wrapped in ``lax.stop_gradient`` (the truncation
        of truncated BPTT) and the outgoing one is returned for the next chunk.
      sample: ``sample(params, rng, prefix, length, *, temperature=1.0) -> (length,)``
        int tokens drawn after feeding ``prefix`` (int ``(P,)``, ``P >= 1``), from
        ``softmax(logits / temperature)``.
      initial_carry: ``initial_carry(batch_size) -> carry`` of zeros.
      cell: ``'rnn'``, ``'lstm'`` or ``'gru'``.
      vocab_size: ``V``.
    """

    init: Callable[[PRNGKey], Params]
    apply: Callable[..., tuple[Array, Carry]]
    loss: Callable[[Params, ArrayLike, ArrayLike, Carry], tuple[Array, Carry]]
    sample: Callable[..., Array]
    initial_carry: Callable[[int], Carry]
    cell: str
    vocab_size: int


def char_lm(
    *,
    vocab_size: int,
    hidden_dim: int = 128,
    embed_dim: int = 32,
    cell: str = "lstm",
    init: str = "xavier",
    num_layers: int = 1,
) -> CharLM:
    """A character-level language model: embedding - recurrent cell - affine over the vocabulary.

    .. math::  e_t = E[x_t], \\quad h_t = \\mathrm{cell}(h_{t-1}, e_t), \\quad
               s_t = h_t W + b \\in \\mathbb{R}^V

    and :math:`p(x_{t+1} \\mid x_{\\le t}) = \\mathrm{softmax}(s_t)`.
    Sampling at temperature :math:`\\tau` draws from
    :math:`\\mathrm{softmax}(s_t / \\tau)`: :math:`\\tau \\to 0` is greedy decoding,
    :math:`\\tau > 1` flattens the distribution.

    Args:
      vocab_size: number of characters ``V``.
      hidden_dim: hidden size ``H``.
      embed_dim: embedding size ``E``.
      cell: ``'rnn'``, ``'lstm'`` or ``'gru'``.
      init: initializer name of the embedding and weights.
      num_layers: number ``L`` of stacked recurrent layers (:func:`run_stack`);
        with ``L > 1`` params hold ``'cells': {'layer_l'}`` instead of ``'cell'``
        and the carry is a tuple of the ``L`` layers' carries.

    Returns:
      A :class:`CharLM`.

    Raises:
      ValueError: for an unknown cell or init, non-positive sizes; at call time
        for tokens that are not an integer ``(N, T)`` array, an empty prefix or a
        non-positive temperature.
    """
    for arg, val in (
        ("vocab_size", vocab_size),
        ("hidden_dim", hidden_dim),
        ("embed_dim", embed_dim),
        ("num_layers", num_layers),
    ):
        _helpers.check_positive_int(arg, val)
    _helpers.check_choice("cell", cell, CELLS)
    _helpers.check_choice("init", init, tuple(layers.INITIALIZERS))

    def init_fn(rng: PRNGKey) -> Params:
        k_embed, k_cell, k_head = jax.random.split(rng, 3)
        return {
            "embed": layers.get_initializer(init)(k_embed, (vocab_size, embed_dim)),
            **init_stack(k_cell, cell, embed_dim, hidden_dim, num_layers, init=init),
            "head": layers.init_affine(k_head, hidden_dim, vocab_size, init=init),
        }

    def initial_carry(batch_size: int) -> Carry:
        carry = zero_carry(cell, batch_size, hidden_dim)
        return carry if num_layers == 1 else tuple(carry for _ in range(num_layers))  # type: ignore[return-value]  # stack: per-layer carries

    def apply_fn(params: Params, tokens: ArrayLike, carry: Optional[Carry] = None) -> tuple[Array, Carry]:
        tokens = jnp.asarray(tokens)
        if tokens.ndim != 2 or not jnp.issubdtype(tokens.dtype, jnp.integer):
            _helpers.fail("char_lm tokens", "an integer array (N, T)", None, got_text=f"{tokens.dtype} {tokens.shape}")
        if carry is None:
            carry = initial_carry(tokens.shape[0])
        xs = jnp.take(params["embed"], tokens, axis=0)  # (N, T, E)
        if num_layers == 1:
            hs, carry = run_cell(cell, params["cell"], xs, carry)
        else:
            hs, carry = run_stack(cell, stack_layers(params), xs, tuple(carry))  # type: ignore[assignment]  # per-layer carries
        return layers.affine(hs, params["head"]["w"], params["head"]["b"]), carry

    def loss_fn(params: Params, inputs: ArrayLike, targets: ArrayLike, carry: Carry) -> tuple[Array, Carry]:
        targets = jnp.asarray(targets)
        if targets.shape != jnp.shape(inputs):
            _helpers.fail("char_lm targets", f"the shape of inputs {jnp.shape(inputs)}", targets.shape)
        logits, new_carry = apply_fn(params, inputs, lax.stop_gradient(carry))
        logp = layers.log_softmax(logits)
        nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
        return nll.mean(), new_carry

    def sample_fn(
        params: Params, rng: PRNGKey, prefix: ArrayLike, length: int, *, temperature: float | ArrayLike = 1.0
    ) -> Array:
        prefix = jnp.asarray(prefix)
        if prefix.ndim != 1 or prefix.shape[0] < 1:
            _helpers.fail(
                "char_lm.sample prefix", "a non-empty (P,) token array", None, got_text=f"shape {prefix.shape}"
            )
        _helpers.check_positive_int("length", length)
        try:
            concrete = float(temperature)  # type: ignore[arg-type]  # traced raises below
        except (TypeError, jax.errors.ConcretizationTypeError):
            concrete = None  # traced (e.g. a vmapped sweep over temperatures): not checked
        if concrete is not None and not concrete > 0:
            _helpers.fail("char_lm.sample temperature", "a number > 0", temperature)
        logits, carry = apply_fn(params, prefix[None, :])

        def step(state, key):
            last_logits, carry = state
            token = jax.random.categorical(key, last_logits / temperature, axis=-1)  # (1,)
            next_logits, carry = apply_fn(params, token[:, None], carry)
            return (next_logits[:, -1], carry), token[0]

        _, tokens = lax.scan(step, (logits[:, -1], carry), jax.random.split(rng, length))
        return tokens

    return CharLM(init_fn, apply_fn, loss_fn, sample_fn, initial_carry, cell, vocab_size)


def train_tbptt(
    lm: CharLM,
    optimizer: Any,
    params: Params,
    opt_state: OptState,
    tokens: ArrayLike,
    *,
    chunk_length: int,
    max_grad_norm: Optional[float] = None,
) -> tuple[Params, OptState, Array]:
    """One pass of truncated backpropagation through time over long sequences.

    ``tokens`` (N, L) are cut into ``K = (L - 1) // chunk_length`` consecutive
    chunks (a remainder is dropped); chunk ``k`` predicts
    ``tokens[:, k c + 1 : (k + 1) c + 1]`` from ``tokens[:, k c : (k + 1) c]``.
    One optimizer step is taken per chunk; the recurrent state flows forward
    from chunk to chunk but gradients stop at chunk boundaries (:attr:`CharLM.loss`).
    The whole pass is one ``lax.scan``, so it jits.

    With ``max_grad_norm = c`` every chunk's gradient is clipped by its global
    norm before the update, :math:`g \\leftarrow g \\min(1, c / \\|g\\|_2)`
    (:func:`jax231.optimizers.clip_by_global_norm`), the standard guard against
    the exploding gradients of backpropagation through time (Pascanu et al.
    2013; char-rnn clips at 5).

    Args:
      lm: the language model.
      optimizer: an optax-protocol ``GradientTransformation`` (``init``/``update``).
      params: model parameters.
      opt_state: ``optimizer.init(params)`` or a later state.
      tokens: int array ``(N, L)`` with ``L > chunk_length``.
      chunk_length: truncation length ``c`` (static).
      max_grad_norm: clip each chunk's gradient to this global norm (> 0);
        ``None`` (the default) does not clip.

    Returns:
      ``(params, opt_state, losses)`` with the ``(K,)`` chunk losses (before each step).

    Raises:
      ValueError: when ``tokens`` is not ``(N, L)`` with ``L >= chunk_length + 1``, or
        ``max_grad_norm`` <= 0.
    """
    _helpers.check_positive_int("chunk_length", chunk_length)
    if max_grad_norm is not None and not float(max_grad_norm) > 0:
        raise ValueError(f"max_grad_norm: expected a value > 0 or None, got {max_grad_norm!r}")
    tokens = jnp.asarray(tokens)
    if tokens.ndim != 2 or tokens.shape[1] < chunk_length + 1:
        _helpers.fail("tokens", f"shape (N, L) with L >= chunk_length + 1 = {chunk_length + 1}", tokens.shape)
    n, length = tokens.shape
    num_chunks = (length - 1) // chunk_length
    used = num_chunks * chunk_length

    def chunks(t: Array) -> Array:  # (N, used) -> (K, N, c)
        return jnp.swapaxes(t[:, :used].reshape(n, num_chunks, chunk_length), 0, 1)

    inputs, targets = chunks(tokens[:, :-1]), chunks(tokens[:, 1:])
    grad_fn = jax.value_and_grad(lm.loss, has_aux=True)

    def step(state, batch):
        params, opt_state, carry = state
        (loss, carry), grads = grad_fn(params, batch[0], batch[1], carry)
        if max_grad_norm is not None:  # optimizers.clip_by_global_norm's rule, inline: models do not import optimizers
            norm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree_util.tree_leaves(grads)))
            factor = jnp.where(norm > max_grad_norm, max_grad_norm / norm, 1.0)
            grads = jax.tree_util.tree_map(lambda g: (g * factor).astype(g.dtype), grads)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = jax.tree_util.tree_map(lambda p, u: p + u, params, updates)
        return (params, opt_state, carry), loss

    (params, opt_state, _), losses = lax.scan(step, (params, opt_state, lm.initial_carry(n)), (inputs, targets))
    return params, opt_state, losses
