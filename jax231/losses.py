"""Losses of CS231n: multiclass SVM, softmax and binary cross-entropy, least squares, penalties, accuracy.

Per-example losses take keyword-only ``logits=`` and ``labels=`` and return one
value per example; reduce with ``.mean()`` or with :func:`mean_loss`.

Labels are integer class indices in ``[0, C)``. Their range is checked when
they are concrete (eager calls, or constants closed over by a jitted
function); under ``jit`` with traced labels an out-of-range label cannot be
seen at trace time and is the caller's responsibility (``take_along_axis``
would clamp it silently).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jax231._validation import check_values
from jax231.types import Array, ArrayLike, Params

KeyPath = tuple[str, ...]
"""A leaf's position in a pytree as a tuple of names, e.g. ``('conv1', 'w')``."""

NO_DECAY_NAMES = frozenset({"b", "bias", "bx", "bh", "beta", "gamma", "scale", "alpha", "mean", "var"})
"""Leaf names that :func:`default_exclude` leaves out of penalties: biases
(``b``, ``bias``, GRU ``bx``/``bh``), normalisation parameters (``gamma``,
``beta``, flax's ``scale``), PReLU slopes (``alpha``, as He et al. 2015) and
batch-norm statistics (``mean``, ``var``)."""


# --------------------------------------------------------------------------- labels


def _check_logits_labels(logits: ArrayLike, labels: ArrayLike) -> tuple[Array, Array]:
    """Checks ``logits (..., C)`` against integer ``labels (...)`` in ``[0, C)``."""
    if jnp.ndim(logits) < 1:
        raise ValueError(f"`logits` must have shape (..., C); got a scalar of shape {jnp.shape(logits)}.")
    logits = jnp.asarray(logits)
    expected = logits.shape[:-1]
    if tuple(jnp.shape(labels)) != expected:
        raise ValueError(
            f"`labels` must have shape {expected} (logits {logits.shape} without the class axis); "
            f"got {tuple(jnp.shape(labels))}."
        )
    labels_dtype = jnp.result_type(labels)
    if not jnp.issubdtype(labels_dtype, jnp.integer) or labels_dtype == jnp.bool_:
        raise ValueError(f"`labels` must hold integer class indices; got dtype {labels_dtype}.")
    num_classes = logits.shape[-1]
    if not isinstance(labels, jax.core.Tracer):
        values = np.asarray(labels)
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"`labels` must lie in [0, {num_classes}) for logits with {num_classes} classes; "
                f"got values in [{values.min()}, {values.max()}]."
            )
    return logits, jnp.asarray(labels)


def _correct_class_scores(logits: Array, labels: Array) -> Array:
    return jnp.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]


# --------------------------------------------------------------------------- per-example losses


def svm_loss(*, logits: ArrayLike, labels: ArrayLike, margin: float = 1.0, squared: bool = False) -> Array:
    """Multiclass SVM (Weston–Watkins) hinge loss per example.

    .. math:: L_i = \\sum_{j \\ne y_i} \\max(0,\\ s_j - s_{y_i} + \\Delta)^p

    with :math:`s` = ``logits``, :math:`y` = ``labels``, :math:`\\Delta` =
    ``margin`` and :math:`p = 2` when ``squared`` (the squared hinge / L2-SVM),
    else :math:`p = 1`. The correct class is excluded from the sum. At small
    weights every score is ≈ 0, so :math:`L_i \\approx (C - 1)\\Delta`. The
    gradient at the kink (margin exactly 0) is taken as 0, as in the course.

    Args:
      logits: class scores, shape ``(..., C)``.
      labels: integer classes in ``[0, C)``, shape ``(...)``.
      margin: :math:`\\Delta > 0`.
      squared: square each hinge term.

    Returns:
      Per-example losses, shape ``(...)`` (``(N,)`` for ``(N, C)`` logits).

    Raises:
      ValueError: on mismatched shapes, non-integer labels, (when concrete)
        labels outside ``[0, C)``, or a margin that is not finite and > 0.

    References:
      CS231n notes, "Linear classification: Support Vector Machine".
    """
    check_values("margin", margin, low=0.0, low_open=True)
    logits, labels = _check_logits_labels(logits, labels)
    correct = _correct_class_scores(logits, labels)
    margins = logits - correct[..., None] + margin
    is_wrong_class = jnp.arange(logits.shape[-1]) != labels[..., None]
    hinge = jnp.where((margins > 0) & is_wrong_class, margins, jnp.zeros_like(margins))
    if squared:
        hinge = jnp.square(hinge)
    return jnp.sum(hinge, axis=-1)


def softmax_cross_entropy(*, logits: ArrayLike, labels: ArrayLike) -> Array:
    """Softmax cross-entropy from logits per example, computed stably.

    .. math:: L_i = -\\log \\frac{e^{s_{y_i}}}{\\sum_j e^{s_j}} = \\log\\sum_j e^{s_j} - s_{y_i}

    with :math:`s` = ``logits`` and :math:`y` = ``labels``. Both terms are
    computed on :math:`s - \\max_j s_j`, so large scores neither overflow nor
    cancel. At small weights every score is ≈ 0, so :math:`L_i \\approx \\log C`.

    Args:
      logits: class scores, shape ``(..., C)``.
      labels: integer classes in ``[0, C)``, shape ``(...)``.

    Returns:
      Per-example losses, shape ``(...)``.

    Raises:
      ValueError: as :func:`svm_loss`.

    References:
      CS231n notes, "Linear classification: Softmax classifier".
    """
    logits, labels = _check_logits_labels(logits, labels)
    # Shift by the (constant) max: log Σ exp(s - max) - (s_y - max) never cancels large terms.
    shifted = logits - jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
    return jnp.log(jnp.sum(jnp.exp(shifted), axis=-1)) - _correct_class_scores(shifted, labels)


def smoothed_cross_entropy(*, logits: ArrayLike, labels: ArrayLike, smoothing: float) -> Array:
    """Softmax cross-entropy against label-smoothed targets, per example.

    .. math:: L_i = -\\sum_j q_{ij} \\log \\mathrm{softmax}(s_i)_j, \\qquad
              q_{ij} = (1 - \\alpha)\\,[j = y_i] + \\alpha / C

    with :math:`s` = ``logits``, :math:`y` = ``labels`` and :math:`\\alpha` =
    ``smoothing``; :math:`\\alpha = 0` is :func:`softmax_cross_entropy`. The
    targets never reach 0 or 1, so the logits are not pushed to infinity
    (Szegedy et al.'s regulariser; airbench uses :math:`\\alpha = 0.2`).
    Equals ``optax.softmax_cross_entropy(logits, optax.smooth_labels(onehot, alpha))``
    and PyTorch's ``cross_entropy(..., label_smoothing=alpha)``.

    Args:
      logits: class scores, shape ``(..., C)``.
      labels: integer classes in ``[0, C)``, shape ``(...)``.
      smoothing: :math:`\\alpha` in ``[0, 1]``.

    Returns:
      Per-example losses, shape ``(...)``.

    Raises:
      ValueError: as :func:`svm_loss`, or for ``smoothing`` outside ``[0, 1]``.

    References:
      Szegedy et al., "Rethinking the Inception Architecture", CVPR 2016, section 7.
    """
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"smoothing: expected a float in [0, 1], got {smoothing!r}")
    logits, labels = _check_logits_labels(logits, labels)
    log_p = jax.nn.log_softmax(logits, axis=-1)
    nll = -_correct_class_scores(log_p, labels)
    return (1.0 - smoothing) * nll - smoothing * jnp.mean(log_p, axis=-1)


def _check_same_shape(logits: ArrayLike, labels: ArrayLike) -> tuple[Array, Array]:
    """``logits`` and floating ``labels`` of one shape (binary and regression losses)."""
    logits = jnp.asarray(logits)
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        raise ValueError(f"logits: expected a floating array, got dtype {logits.dtype}")
    if tuple(jnp.shape(labels)) != logits.shape:
        raise ValueError(f"labels: expected the shape of logits {logits.shape}, got {tuple(jnp.shape(labels))}")
    return logits, jnp.asarray(labels, logits.dtype)


def sigmoid_binary_cross_entropy(*, logits: ArrayLike, labels: ArrayLike) -> Array:
    """Binary logistic-regression loss (sigmoid cross-entropy) from logits, elementwise.

    .. math:: L = -y \\log \\sigma(s) - (1 - y) \\log(1 - \\sigma(s))
              = \\max(s, 0) - s y + \\log(1 + e^{-|s|})

    with :math:`s` = ``logits``, :math:`y` = ``labels`` and :math:`\\sigma(s) =
    1 / (1 + e^{-s})`. The right-hand form never exponentiates a positive
    number, so large :math:`|s|` neither overflow nor lose the loss to rounding.
    Labels may be soft (any value in ``[0, 1]``). For independent attributes
    ("binary classifiers for each attribute" of the notes), ``logits`` is
    ``(N, K)`` and the per-example loss is the sum over ``K``:
    ``sigmoid_binary_cross_entropy(...).sum(-1)``.

    Args:
      logits: scores :math:`s`, any shape (``(N,)`` for one binary label per example).
      labels: targets :math:`y \\in [0, 1]`, the shape of ``logits``.

    Returns:
      Losses of the shape of ``logits`` (equals ``optax.sigmoid_binary_cross_entropy``).

    Raises:
      ValueError: on non-floating ``logits`` or a shape mismatch.

    References:
      CS231n notes, "Neural Networks Part 2", loss functions: attribute
      classification (binary logistic regression classifier).
    """
    logits, labels = _check_same_shape(logits, labels)
    return jnp.maximum(logits, 0) - logits * labels + jnp.log1p(jnp.exp(-jnp.abs(logits)))


def squared_loss(*, logits: ArrayLike, labels: ArrayLike) -> Array:
    """Least-squares (L2) regression loss per example: :math:`L_i = \\|s_i - y_i\\|_2^2`.

    .. math:: L_i = \\sum_k (s_{ik} - y_{ik})^2

    with :math:`s` = ``logits`` (the predicted real values) and :math:`y` =
    ``labels`` (the targets), as written in the notes (no factor 1/2; its
    gradient is :math:`2 (s_i - y_i)`). For ``(N,)`` inputs (one scalar target
    per example) :math:`L_i = (s_i - y_i)^2`; for ``(..., K)`` the sum runs over
    the last axis.

    Args:
      logits: predictions, shape ``(N,)`` or ``(..., K)``.
      labels: targets, the shape of ``logits``.

    Returns:
      Per-example losses: shape ``(N,)`` for rank-1 inputs, else ``logits.shape[:-1]``.

    Raises:
      ValueError: on non-floating ``logits``, a scalar, or a shape mismatch.

    References:
      CS231n notes, "Neural Networks Part 2", loss functions: regression.
    """
    logits, labels = _check_same_shape(logits, labels)
    if logits.ndim == 0:
        raise ValueError("logits: expected shape (N,) or (..., K), got a scalar")
    squares = jnp.square(logits - labels)
    return squares if logits.ndim == 1 else jnp.sum(squares, axis=-1)


def residual_loss(*, logits: ArrayLike, labels: ArrayLike) -> Array:
    """Half the squared norm of a model's residual output, per example: :math:`L_i = \\tfrac12 \\|s_i\\|_2^2`.

    For problems whose model already subtracts the target and outputs the residual
    :math:`s_i = r(\\theta; x_i)` (the noisy quadratic of DeepOBS,
    ``jax231.models.noisy_quadratic``, outputs :math:`(\\theta - x_i) L` with
    :math:`L L^\\top = Q`, so :math:`L_i = \\tfrac12 (\\theta - x_i)^\\top Q (\\theta - x_i)`).
    ``labels`` is only checked to hold one entry per example (the training loop
    passes integer placeholders); its values are not used.

    Args:
      logits: residuals, shape ``(N, K)``.
      labels: ``(N,)`` placeholders.

    Returns:
      ``(N,)`` losses.

    Raises:
      ValueError: on non-floating or non-2-D ``logits``, or labels of another length.
    """
    logits = jnp.asarray(logits)
    if logits.ndim != 2 or not jnp.issubdtype(logits.dtype, jnp.floating):
        raise ValueError(f"logits: expected a floating (N, K) array, got {logits.dtype} {logits.shape}")
    if tuple(jnp.shape(labels)) != logits.shape[:1]:
        raise ValueError(f"labels: expected shape {logits.shape[:1]}, got {tuple(jnp.shape(labels))}")
    return 0.5 * jnp.sum(jnp.square(logits), axis=-1)


def accuracy(*, logits: ArrayLike, labels: ArrayLike) -> Array:
    """Fraction of examples whose highest score is the label: :math:`\\frac{1}{N}\\sum_i [\\arg\\max_j s_{ij} = y_i]`.

    Args:
      logits: class scores, shape ``(..., C)``.
      labels: integer classes in ``[0, C)``, shape ``(...)``.

    Returns:
      A float32 scalar in ``[0, 1]`` (ties go to the lowest class index).
    """
    logits, labels = _check_logits_labels(logits, labels)
    return jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32))


def mean_loss(loss_fn: Callable[..., Array]) -> Callable[..., Array]:
    """Wraps a per-example loss into the mean over all examples.

    Examples:
      >>> loss = mean_loss(softmax_cross_entropy)(logits=scores, labels=y)  # scalar

    Args:
      loss_fn: a per-example loss such as :func:`svm_loss`.

    Returns:
      A function with the same keyword arguments returning ``loss_fn(...).mean()``.
    """

    @functools.wraps(loss_fn)
    def mean_of_loss(**kwargs: Any) -> Array:
        return jnp.mean(loss_fn(**kwargs))

    return mean_of_loss


# --------------------------------------------------------------------------- penalties


def _key_name(key: Any) -> str:
    for attribute in ("key", "name", "idx"):
        if hasattr(key, attribute):
            return str(getattr(key, attribute))
    return str(key)


def key_path_names(path: tuple[Any, ...]) -> KeyPath:
    """Turns a ``jax.tree_util`` key path into a tuple of plain names."""
    return tuple(_key_name(key) for key in path)


def default_exclude(path: KeyPath) -> bool:
    """Whether a leaf is left out of weight penalties: its last name is in :data:`NO_DECAY_NAMES`.

    Args:
      path: the leaf's names from the root, e.g. ``('layer1', 'b')``.
    """
    return bool(path) and path[-1] in NO_DECAY_NAMES


def decay_mask(params: Params, *, exclude: Optional[Callable[[KeyPath], bool]] = default_exclude) -> Params:
    """Bool pytree: True for the leaves the penalties include (usable as an optax mask).

    Non-floating leaves (integer counters) are always False.

    Args:
      params: a parameter pytree.
      exclude: predicate on a leaf's :data:`KeyPath`; ``None`` keeps every leaf.

    Returns:
      A pytree of Python bools with the structure of ``params``.
    """

    def keep(path: tuple[Any, ...], leaf: Any) -> bool:
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
            return False
        return exclude is None or not exclude(key_path_names(path))

    return jax.tree_util.tree_map_with_path(keep, params)


def _penalised_sum(
    params: Params, exclude: Optional[Callable[[KeyPath], bool]], term: Callable[[Array], Array]
) -> Array:
    mask = decay_mask(params, exclude=exclude)
    leaves = jax.tree_util.tree_leaves(params)
    terms = [jnp.sum(term(jnp.asarray(leaf))) for leaf, keep in zip(leaves, jax.tree_util.tree_leaves(mask)) if keep]
    if not terms:
        return jnp.zeros(())
    return functools.reduce(jnp.add, terms)


def l2_penalty(
    params: Params, *, strength: float | ArrayLike = 1.0, exclude: Optional[Callable[[KeyPath], bool]] = default_exclude
) -> Array:
    """L2 penalty with the ½ of CS231n assignment 2: :math:`R = \\tfrac{1}{2}\\lambda \\sum_w w^2`.

    :math:`\\lambda` = ``strength``; the sum runs over every floating leaf
    not excluded. With the ½, :math:`\\partial R / \\partial w = \\lambda w`
    (plain weight decay with coefficient :math:`\\lambda`; assignment 1 uses
    :math:`\\lambda \\sum w^2`, i.e. twice this ``strength``).

    Args:
      params: parameter pytree.
      strength: :math:`\\lambda`.
      exclude: predicate on a leaf's names; default leaves out biases and
        normalisation parameters (:func:`default_exclude`); ``None`` penalises all.

    Returns:
      A scalar.

    Raises:
      ValueError: for a concrete ``strength`` that is not finite or is negative (a
        negative penalty rewards large weights).
    """
    check_values("strength", strength, low=0.0)
    return jnp.asarray(0.5 * strength * _penalised_sum(params, exclude, jnp.square))


def l1_penalty(
    params: Params, *, strength: float | ArrayLike = 1.0, exclude: Optional[Callable[[KeyPath], bool]] = default_exclude
) -> Array:
    """L1 penalty :math:`R = \\lambda \\sum_w |w|` (:math:`\\lambda` = ``strength``), sparsifying.

    Args, returns and raises as :func:`l2_penalty`.
    """
    check_values("strength", strength, low=0.0)
    return jnp.asarray(strength * _penalised_sum(params, exclude, jnp.abs))


def elastic_net_penalty(
    params: Params,
    *,
    l1: float | ArrayLike,
    l2: float | ArrayLike,
    exclude: Optional[Callable[[KeyPath], bool]] = default_exclude,
) -> Array:
    """Elastic net :math:`R = \\lambda_1 \\sum_w |w| + \\tfrac{1}{2}\\lambda_2 \\sum_w w^2`.

    The sum of :func:`l1_penalty` with ``strength=l1`` and :func:`l2_penalty`
    with ``strength=l2`` (same ½ convention).

    References:
      Zou & Hastie, 2005; CS231n notes, "Neural Networks Part 2", regularisation.
    """
    return l1_penalty(params, strength=l1, exclude=exclude) + l2_penalty(params, strength=l2, exclude=exclude)


__all__ = [
    "KeyPath",
    "NO_DECAY_NAMES",
    "accuracy",
    "decay_mask",
    "default_exclude",
    "elastic_net_penalty",
    "key_path_names",
    "l1_penalty",
    "l2_penalty",
    "mean_loss",
    "residual_loss",
    "sigmoid_binary_cross_entropy",
    "smoothed_cross_entropy",
    "softmax_cross_entropy",
    "squared_loss",
    "svm_loss",
]
