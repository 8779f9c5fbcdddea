"""Sanity checks from the notes: initial loss, explosion, early stopping.

References:
  CS231n notes, "Neural Networks Part 3: Learning and Evaluation" (sanity checks,
  babysitting the learning process, early stopping).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp

from jax231.types import Array, ArrayLike


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


def check_initial_loss(
    loss: float, num_classes: int, *, rtol: float = 0.1, kind: str = "softmax"
) -> InitialLossCheck:
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
        f"initial {kind} loss {loss:.4f}, expected {expected:.4f} for {num_classes} classes "
        f"(rtol {rtol}): {verdict}"
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

    def update(
        self, state: EarlyStoppingState, value: float, step: int
    ) -> tuple[EarlyStoppingState, bool, bool]:
        value = float(value)
        improved = math.isfinite(value) and value < state.best - self.min_delta
        if improved:
            state = EarlyStoppingState(best=value, best_step=int(step), num_bad=0)
        else:
            state = state._replace(num_bad=state.num_bad + 1)
        return state, improved, state.num_bad >= self.patience
