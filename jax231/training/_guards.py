"""Sanity checks from the notes: data at the door, initial loss, explosion, early stopping, flat loss,
update ratio.

References:
  CS231n notes, "Neural Networks Part 3: Learning and Evaluation" (sanity checks,
  babysitting the learning process, early stopping).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jax231 import _validation
from jax231.types import Array, ArrayLike


def output_classes(model: Any, state: Any, images: ArrayLike) -> int:
    """The number of classes ``C`` a model predicts (its logits' last axis; traced, nothing runs)."""
    return int(
        jax.eval_shape(
            lambda s, x: model.apply(s.params, s.model_state, x, train=False, rng=None)[0],
            state,
            jax.tree_util.tree_map(lambda a: jnp.asarray(a[:1]), images),
        ).shape[-1]
    )


def check_data(name: str, data: Mapping[str, Any], *, num_classes: int | None, finite: bool = True) -> None:
    """Refuses bad data before it trains (:func:`jax231._validation.check_examples`).

    Images must be numeric and finite (unless ``finite=False``); with
    ``num_classes`` (a classification loss) labels must be integer class
    indices of shape ``(N,)`` in ``[0, num_classes)``. One line naming the
    split and the first bad example.
    """
    images, labels = data["image"], data.get("label")
    if not isinstance(images, Mapping) and labels is not None and not isinstance(labels, Mapping):
        _validation.check_examples(
            name, images, labels, num_classes=num_classes, finite=finite, class_labels=num_classes is not None
        )
        return
    # A pytree batch (a custom loss): every leaf numeric, every image leaf finite.
    for leaf in jax.tree_util.tree_leaves(images):
        _validation.check_examples(name, leaf, np.zeros(np.shape(leaf)[:1]), finite=finite, class_labels=False)
    for leaf in jax.tree_util.tree_leaves(labels):
        _validation.check_examples(name, np.zeros(np.shape(leaf)[:1]), leaf, finite=False, class_labels=False)


class InitialLossCheck(NamedTuple):
    """The outcome of :func:`check_initial_loss`.

    Attributes:
      ok: whether ``|loss - expected| <= rtol * expected``.
      loss: the measured loss.
      expected: the chance-level loss.
      message: a one-line human-readable verdict.
    """

    ok: bool
    loss: float
    expected: float
    message: str


def expected_initial_loss(num_classes: int, *, loss: str = "softmax") -> float:
    """The chance-level loss of a freshly initialised classifier (small weights).

    With all scores ~0: softmax gives ``-log(1/C) = log C``; the multiclass SVM
    with margin 1 gives ``sum_{j != y} max(0, 0 - 0 + 1) = C - 1``.
    """
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes: expected an int >= 2, got {num_classes!r}")
    if loss == "softmax":
        return math.log(num_classes)
    if loss == "svm":
        return float(num_classes - 1)
    raise ValueError(f"loss: expected 'softmax' or 'svm', got {loss!r}")


def check_initial_loss(loss: float, num_classes: int, *, rtol: float = 0.1, kind: str = "softmax") -> InitialLossCheck:
    """Checks that the initial (unregularised) loss is near chance level.

    The notes' first sanity check: "look for correct loss at chance performance":
    ``log C`` for softmax (2.302 for CIFAR-10), ``C - 1`` for the SVM.

    Args:
      loss: the mean data loss of the initial model (no penalty).
      num_classes: ``C``.
      rtol: relative tolerance around the expected value.
      kind: ``'softmax'`` or ``'svm'``.

    Returns:
      An :class:`InitialLossCheck`; it does not raise on a failed check, so the
      caller can decide whether to warn or stop.
    """
    if rtol <= 0:
        raise ValueError(f"rtol: expected a positive float, got {rtol}")
    expected = expected_initial_loss(num_classes, loss=kind)
    loss = float(loss)
    ok = math.isfinite(loss) and abs(loss - expected) <= rtol * expected
    verdict = "ok" if ok else "suspicious (check the init scale and the loss)"
    message = (
        f"initial {kind} loss {loss:.4f}, expected {expected:.4f} for {num_classes} classes (rtol {rtol}): {verdict}"
    )
    return InitialLossCheck(ok=ok, loss=loss, expected=expected, message=message)


def is_exploded(loss: ArrayLike, initial_loss: ArrayLike, factor: ArrayLike) -> Array:
    """``True`` where ``loss`` is NaN/Inf or exceeds ``factor * initial_loss``.

    The notes: "if the cost is ever > 3 * original cost, break out early".
    jit/vmap friendly; a NaN ``initial_loss`` (unknown yet) only tests finiteness.
    """
    loss = jnp.asarray(loss)
    return ~jnp.isfinite(loss) | (loss > jnp.asarray(factor) * jnp.asarray(initial_loss))


class EarlyStoppingState(NamedTuple):
    """Progress of :class:`EarlyStopping`.

    Attributes:
      best: the best (lowest) monitored value so far (``inf`` at the start).
      best_step: the step at which it was seen (``-1`` at the start).
      num_bad: evaluations since the last improvement.
    """

    best: float
    best_step: int
    num_bad: int


class EarlyStopping(NamedTuple):
    """Stops after ``patience`` evaluations without improving the monitored loss.

    A pure helper: ``state = es.init()``, then ``state, improved, stop =
    es.update(state, value, step)`` at every evaluation. An improvement is
    ``value < best - min_delta``; the caller snapshots its parameters when
    ``improved`` and restores the snapshot when ``stop`` (see ``fit``).

    Attributes:
      patience: evaluations without improvement before stopping (>= 1).
      min_delta: the smallest decrease that counts as an improvement.
    """

    patience: int
    min_delta: float = 0.0

    def init(self) -> EarlyStoppingState:
        if not isinstance(self.patience, int) or self.patience < 1:
            raise ValueError(f"patience: expected an int >= 1, got {self.patience!r}")
        return EarlyStoppingState(best=math.inf, best_step=-1, num_bad=0)

    def update(self, state: EarlyStoppingState, value: float, step: int) -> tuple[EarlyStoppingState, bool, bool]:
        value = float(value)
        improved = math.isfinite(value) and value < state.best - self.min_delta
        if improved:
            state = EarlyStoppingState(best=value, best_step=int(step), num_bad=0)
        else:
            state = state._replace(num_bad=state.num_bad + 1)
        return state, improved, state.num_bad >= self.patience


# ------------------------------------------------------------------ babysitting


class BabysitCheck(NamedTuple):
    """The outcome of :func:`check_flat_loss` or :func:`check_update_ratio`.

    Attributes:
      ok: whether the run looks healthy by this check.
      value: the measured figure (the loss drop fraction, or the median ratio).
      message: a one-line verdict ("learning rate probably too low/high" when not ok).
    """

    ok: bool
    value: float
    message: str


def check_flat_loss(
    losses: Sequence[float], initial_loss: float, *, num_evals: int, min_drop: float = 0.01
) -> BabysitCheck:
    """The notes' flat-loss sign: the loss has not dropped after ``num_evals`` evaluations.

    The drop is :math:`d = 1 - \\min_{i < k} L_i / L_0` over the first
    :math:`k` = ``num_evals`` evaluated training losses :math:`L_i`, with
    :math:`L_0` the loss of update 0; :math:`d <` ``min_drop`` says "learning
    rate probably too low" (the notes' "loss barely changing").

    Args:
      losses: the training loss at each evaluation so far (at least ``num_evals``).
      initial_loss: the loss of update 0.
      num_evals: evaluations to wait (>= 1).
      min_drop: the fraction of the initial loss that must be gone, in (0, 1).
    """
    if not isinstance(num_evals, int) or num_evals < 1:
        raise ValueError(f"num_evals: expected an int >= 1, got {num_evals!r}")
    if not 0 < min_drop < 1:
        raise ValueError(f"min_drop: expected a float in (0, 1), got {min_drop!r}")
    if len(losses) < num_evals:
        raise ValueError(f"losses: expected at least num_evals={num_evals} values, got {len(losses)}")
    best = min(float(v) for v in losses[:num_evals])
    drop = 1.0 - best / float(initial_loss) if initial_loss else math.nan
    ok = not (math.isfinite(drop) and drop < min_drop)
    verdict = "ok" if ok else "learning rate probably too low"
    return BabysitCheck(
        ok,
        drop,
        f"training loss dropped {drop:.2%} from the initial {float(initial_loss):.4g} "
        f"in {num_evals} evaluations (threshold {min_drop:.0%}): {verdict}",
    )


def check_update_ratio(ratios: Sequence[float], *, band: tuple[float, float] = (1e-4, 1e-2)) -> BabysitCheck:
    """The notes' update/weight ratio check: about ``1e-3`` is healthy.

    The median :math:`r` of the per-evaluation ratios :math:`\\|\\Delta W\\| / \\|W\\|`
    (the history's ``update_ratio``) is compared with ``band = (low, high)``:
    :math:`r > high` says "learning rate probably too high", :math:`r < low`
    "probably too low". Non-finite ratios are ignored.
    """
    low, high = band
    if not 0 < low < high:
        raise ValueError(f"band: expected (low, high) with 0 < low < high, got {band!r}")
    finite = sorted(float(r) for r in ratios if math.isfinite(float(r)))
    if not finite:
        return BabysitCheck(True, math.nan, "update/weight ratio: no finite value to check")
    n = len(finite)
    median = finite[n // 2] if n % 2 else 0.5 * (finite[n // 2 - 1] + finite[n // 2])
    if median > high:
        verdict = "learning rate probably too high"
    elif median < low:
        verdict = "learning rate probably too low"
    else:
        verdict = "ok"
    return BabysitCheck(
        verdict == "ok",
        median,
        f"update/weight ratio {median:.2g} (median of {n} evaluations; "
        f"the notes' ~1e-3, band [{low:g}, {high:g}]): {verdict}",
    )
