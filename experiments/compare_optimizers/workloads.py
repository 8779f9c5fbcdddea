"""The workloads of ``algoperf_mini``: a dataset, a jax231 model, a loss and a validation metric.

Each workload is built from its entry of ``config.workload_configs`` by a function of
:data:`BUILDERS` and returns a :class:`Workload`: the model (from
:mod:`jax231.models`), the train / val / test arrays, the loss (a name or a
:mod:`jax231.losses` function) and the metric whose target decides time-to-target.

============== ======================== =========================================== ============
name           data                     model                                       metric
============== ======================== =========================================== ============
mnist1d_mlp    MNIST-1D (40, 1)         ``mlp`` 100-100 ReLU                        val accuracy
mnist1d_cnn    MNIST-1D                 ``cnn1d`` (3 x conv1d of 25 channels)       val accuracy
mnist1d_gru    MNIST-1D                 ``gru`` classifier, hidden 64               val accuracy
digits_mlp     scikit-learn digits 8x8  ``mlp`` 64 ReLU                             val accuracy
cifar10_cnn    CIFAR-10 copy, subset    ``three_layer_convnet`` (small)             val accuracy
char_lstm      ``pydoc_data.topics``    ``next_token_rnn`` (LSTM char LM)           val accuracy
quadratic_deep DeepOBS noisy quadratic  ``noisy_quadratic`` + ``residual_loss``      val loss
============== ======================== =========================================== ============

``cifar10_cnn`` needs the shared CIFAR-10 copy (``../shared/datasets``, or an
extracted cache); without it the builder raises :class:`WorkloadUnavailable` with
the reason and the benchmark runs the others.

The character-level text is the English reference text CPython ships in
``pydoc_data.topics`` (the help topics of the language reference): fixed for a given
Python version (:func:`pydoc_text`; the measured runs used CPython 3.11.7), no download.
"""

from __future__ import annotations

import hashlib
import sys
from typing import Any, Callable, NamedTuple

import ml_collections
import numpy as np
from pydoc_data import topics as pydoc_topics

from jax231 import losses, models

from experiments import _common as common

METRICS = {"val_accuracy": "max", "val_loss": "min"}
"""Validation metrics a target can be set on, and whether higher (``max``) or lower is better."""


class WorkloadUnavailable(Exception):
    """A workload whose data is absent here (the message says why); the benchmark skips it."""


class Workload(NamedTuple):
    """One built workload.

    Attributes:
      name: the workload name.
      model: the ``Model(init, apply)``.
      splits: train / val / test arrays (``{'image', 'label'}``).
      loss: the per-example loss: ``'softmax'`` or a :mod:`jax231.losses` callable.
      metric: ``'val_accuracy'`` or ``'val_loss'`` (a key of :data:`METRICS`).
      description: one line for the report (data sizes, model).
    """

    name: str
    model: Any
    splits: common.Splits
    loss: Any
    metric: str
    description: str


# ----------------------------------------------------------------------------- text
def pydoc_text() -> str:
    """The English text of ``pydoc_data.topics`` (CPython's help topics), topics in sorted order.

    Deterministic for a given Python version (the module is generated from the
    documentation at release time); :func:`text_fingerprint` names it in the results.
    """
    return "".join(pydoc_topics.topics[key] for key in sorted(pydoc_topics.topics))


def text_fingerprint(text: str) -> str:
    """``'CPython 3.11, 464970 characters, sha256 1a2b3c4d...'``: which text a run read."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return f"CPython {sys.version_info[0]}.{sys.version_info[1]}, {len(text)} characters, sha256 {digest}"


def char_windows(
    text: str, *, context: int, stride: int, vocab: str | None = None
) -> tuple[np.ndarray, np.ndarray, str]:
    """Next-character examples: every ``stride``-th window of ``context`` characters and the one after it.

    Args:
      text: the corpus.
      context: window length ``T``.
      stride: characters between the starts of consecutive windows.
      vocab: the characters, in token order (default: the sorted distinct characters of ``text``).

    Returns:
      ``(tokens int32 (N, T), next int32 (N,), vocab)`` with window ``i`` starting at
      ``i * stride``.

    Raises:
      ValueError: for ``context`` or ``stride`` < 1, a text shorter than ``context + 1``,
        or characters missing from ``vocab``.
    """
    if context < 1 or stride < 1:
        raise ValueError(f"context, stride: expected integers >= 1, got {context}, {stride}")
    if len(text) < context + 1:
        raise ValueError(f"text: expected at least context + 1 = {context + 1} characters, got {len(text)}")
    vocab = "".join(sorted(set(text))) if vocab is None else vocab
    index = {ch: i for i, ch in enumerate(vocab)}
    missing = sorted(set(text) - set(index))
    if missing:
        raise ValueError(f"vocab: expected every character of the text, got none for {missing[:5]}")
    ids = np.fromiter((index[ch] for ch in text), np.int32, count=len(text))
    starts = np.arange(0, len(text) - context, stride)
    tokens = ids[starts[:, None] + np.arange(context)[None, :]]
    return tokens, ids[starts + context], vocab


# ----------------------------------------------------------------------------- builders
def _sizes(cfg: ml_collections.ConfigDict) -> dict[str, int | None]:
    return {"train_size": cfg.get("train_size", 0) or None, "test_size": cfg.get("test_size", 0) or None}


def _image_workload(
    name: str, dataset: str, model_name: str, cfg: ml_collections.ConfigDict, data_dir: str | None = None
) -> Workload:
    try:
        splits = common.load_splits(dataset, val_size=cfg.val_size, data_dir=data_dir, **_sizes(cfg))
    except FileNotFoundError as err:
        raise WorkloadUnavailable(f"{name}: {dataset} is absent here ({' '.join(str(err).split())})") from None
    kwargs = dict(cfg.get("model", {}))
    model = models.get(model_name, num_classes=splits.num_classes, **kwargs)
    described = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    return Workload(
        name,
        model,
        splits,
        "softmax",
        "val_accuracy",
        f"{dataset}: {len(splits.train['label'])} train / {len(splits.val['label'])} val, {model_name}({described})",
    )


def mnist1d_mlp(cfg: ml_collections.ConfigDict) -> Workload:
    """MNIST-1D with an MLP."""
    return _image_workload("mnist1d_mlp", "mnist1d", "mlp", cfg)


def mnist1d_cnn(cfg: ml_collections.ConfigDict) -> Workload:
    """MNIST-1D with the 1-D convnet of the MNIST-1D paper."""
    return _image_workload("mnist1d_cnn", "mnist1d", "cnn1d", cfg)


def mnist1d_gru(cfg: ml_collections.ConfigDict) -> Workload:
    """MNIST-1D read as a sequence of 40 scalars by a GRU."""
    return _image_workload("mnist1d_gru", "mnist1d", "gru", cfg)


def digits_mlp(cfg: ml_collections.ConfigDict) -> Workload:
    """scikit-learn's 8x8 digits with an MLP."""
    return _image_workload("digits_mlp", "digits", "mlp", cfg)


def cifar10_cnn(cfg: ml_collections.ConfigDict) -> Workload:
    """A subset of the shared CIFAR-10 copy with the course's three-layer convnet (small)."""
    return _image_workload(
        "cifar10_cnn", "cifar10_shared", "three_layer_convnet", cfg, data_dir=cfg.get("data_dir", "") or None
    )


def char_lstm(cfg: ml_collections.ConfigDict) -> Workload:
    """Next-character prediction on the pydoc text: first 90% train (and test), last 10% val.

    The text is cut at 90% of its length; training windows come from the first part,
    validation windows from the rest, each at ``cfg.stride``; ``train_size`` and
    ``val_size`` keep the first windows of each (evenly spread over the part).
    """
    text = pydoc_text()
    vocab = "".join(sorted(set(text)))
    cut = int(0.9 * len(text))
    parts = {}
    for split, part, size in (("train", text[:cut], cfg.train_size), ("val", text[cut:], cfg.val_size)):
        tokens, labels, _ = char_windows(part, context=cfg.context, stride=cfg.stride, vocab=vocab)
        keep = np.linspace(0, len(labels) - 1, min(size, len(labels))).astype(int)
        parts[split] = {"image": tokens[keep], "label": labels[keep]}
    splits = common.Splits(
        train=parts["train"], val=parts["val"], test=parts["val"], num_classes=len(vocab), input_shape=(cfg.context,)
    )
    kwargs = dict(cfg.get("model", {}))
    model = models.get("next_token_rnn", vocab_size=len(vocab), **kwargs)
    return Workload(
        "char_lstm",
        model,
        splits,
        "softmax",
        "val_accuracy",
        f"{text_fingerprint(text)}; {len(vocab)} characters; windows of {cfg.context} at stride "
        f"{cfg.stride}: {len(parts['train']['label'])} train / {len(parts['val']['label'])} val; "
        f"next_token_rnn({', '.join(f'{k}={v}' for k, v in kwargs.items())})",
    )


def quadratic_data(*, num: int, dim: int, noise_level: float, seed: int) -> np.ndarray:
    """DeepOBS's quadratic data: ``RandomState(seed).normal(0, noise_level, (num, dim))`` as float32."""
    return np.float32(np.random.RandomState(seed).normal(0.0, noise_level, (num, dim)))


def quadratic_deep(cfg: ml_collections.ConfigDict) -> Workload:
    """DeepOBS ``quadratic_deep``: train data ``RandomState(42)``, val data ``RandomState(43)`` (its test set)."""
    problem = models.deep_quadratic_hessian()
    dim = problem.hessian.shape[0]
    train = quadratic_data(num=cfg.train_size, dim=dim, noise_level=cfg.noise_level, seed=42)
    val = quadratic_data(num=cfg.val_size, dim=dim, noise_level=cfg.noise_level, seed=43)
    arrays = {name: {"image": x, "label": np.zeros(len(x), np.int32)} for name, x in (("train", train), ("val", val))}
    splits = common.Splits(
        train=arrays["train"], val=arrays["val"], test=arrays["val"], num_classes=dim, input_shape=(dim,)
    )
    model = models.noisy_quadratic(hessian=problem.hessian)
    eig = problem.eigenvalues
    return Workload(
        "quadratic_deep",
        model,
        splits,
        losses.residual_loss,
        "val_loss",
        f"DeepOBS quadratic_deep: D={dim}, eigenvalues {eig.min():.3g}..{eig.max():.3g} "
        f"(90 in (0,1), 10 in (30,60)), noise {cfg.noise_level}, {cfg.train_size} train / "
        f"{cfg.val_size} val, theta_0 = 1",
    )


BUILDERS: dict[str, Callable[[ml_collections.ConfigDict], Workload]] = {
    f.__name__: f for f in (mnist1d_mlp, mnist1d_cnn, mnist1d_gru, digits_mlp, cifar10_cnn, char_lstm, quadratic_deep)
}
"""Workload name -> builder, in the order of the report."""

NAMES: tuple[str, ...] = tuple(BUILDERS)
"""Valid workload names."""


def build(name: str, cfg: ml_collections.ConfigDict) -> Workload:
    """Builds workload ``name`` from its config entry.

    Raises:
      UsageError: for an unknown name (listing the valid ones).
      WorkloadUnavailable: when its data is absent here.
    """
    common.parse_choices("config.workloads", [name], NAMES)
    return BUILDERS[name](cfg)


__all__ = [
    "BUILDERS",
    "METRICS",
    "NAMES",
    "Workload",
    "WorkloadUnavailable",
    "build",
    "char_windows",
    "pydoc_text",
    "quadratic_data",
    "text_fingerprint",
]
