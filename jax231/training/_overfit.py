"""The notes' second sanity check: overfit a tiny subset of the data."""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import numpy as np

from jax231.training._fit import FitResult, fit
from jax231.training._steps import LossName


class OverfitResult(NamedTuple):
    """What :func:`overfit_subset` returns.

    Attributes:
      ok: whether the final training accuracy on the subset reached ``target_accuracy``.
      loss: the final data loss on the subset (inference mode).
      accuracy: the final accuracy on the subset (inference mode).
      fit_result: the underlying :class:`FitResult`.
    """

    ok: bool
    loss: float
    accuracy: float
    fit_result: FitResult


def overfit_subset(
    model: Any,
    optimizer: Any,
    *,
    train: Mapping[str, Any],
    num_examples: int = 20,
    num_steps: int = 200,
    loss: LossName = "softmax",
    seed: int = 0,
    target_accuracy: float = 1.0,
) -> OverfitResult:
    """Trains without regularisation on the first ``num_examples`` examples, full batch.

    "Make sure that you can overfit very small portion of the training data
    [...] you should be able to achieve zero cost" (CS231n notes, sanity checks).
    A model and optimizer that cannot reach ``target_accuracy`` here have a bug
    or a far too small learning rate.

    Args:
      model: a ``Model(init, apply)``.
      optimizer: a ``GradientTransformation``.
      train: ``{'image', 'label'}`` arrays; the first ``num_examples`` are used.
      num_examples: size of the subset (>= 1, at most the dataset size).
      num_steps: full-batch updates.
      loss: ``'softmax'``, ``'svm'`` or a per-example callable.
      seed: the seed of :func:`fit`.
      target_accuracy: the training accuracy that counts as overfitting.

    Returns:
      An :class:`OverfitResult`.
    """
    n = int(np.shape(train["label"])[0])
    if not isinstance(num_examples, int) or not 1 <= num_examples <= n:
        raise ValueError(f"num_examples: expected an int in [1, {n}] (the dataset size), got {num_examples!r}")
    subset = {"image": train["image"][:num_examples], "label": train["label"][:num_examples]}
    result = fit(
        model,
        optimizer,
        train=subset,
        loss=loss,
        num_steps=num_steps,
        batch_size=None,
        eval_every=num_steps,
        seed=seed,
        explosion_factor=None,
        check_initial_loss=False,
    )
    final = result.evaluate(subset)
    return OverfitResult(
        ok=final["accuracy"] >= target_accuracy, loss=final["loss"], accuracy=final["accuracy"], fit_result=result
    )
