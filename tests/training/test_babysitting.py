"""The babysitting guards: flat loss ("learning rate probably too low") and the update/weight ratio.

Each guard is checked on a pure transcription of its rule, then through ``fit``
on a tiny softmax classifier with a too-small, a too-large and a good learning
rate (full-batch SGD, so the ratio scales with the learning rate and the loss is not noisy).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from jax231 import optimizers, training
from tests.training import toy


def test_flat_loss_rule_matches_transcription():
    losses = [2.0, 1.99, 1.985]
    check = training.check_flat_loss(losses, 2.0, num_evals=3, min_drop=0.01)
    assert not check.ok and math.isclose(check.value, 1 - 1.985 / 2.0, rel_tol=1e-12)
    assert "too low" in check.message
    assert training.check_flat_loss([2.0, 1.5], 2.0, num_evals=2).ok


def test_update_ratio_rule_matches_numpy_median():
    ratios = [3e-2, 5e-2, float("nan"), 2e-2, 4e-2]
    check = training.check_update_ratio(ratios)
    assert check.value == pytest.approx(np.nanmedian(ratios), rel=1e-12) and "too high" in check.message
    assert "too low" in training.check_update_ratio([1e-6, 2e-6]).message
    assert training.check_update_ratio([1e-3, 2e-3]).ok


@pytest.mark.parametrize(
    "bad",
    [
        {"num_evals": 0},
        {"min_drop": 1.5},
    ],
)
def test_flat_loss_bad_input(bad):
    kwargs = {"num_evals": 1, "min_drop": 0.01} | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        training.check_flat_loss([1.0], 1.0, **kwargs)


def _fit(lr: float):
    data = toy.blobs(96, num_classes=3, dim=4)
    guards = training.Guards(explosion_factor=None, check_initial_loss=False, babysit_after=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = training.fit(
            toy.linear(3, scale=1.0),
            optimizers.sgd(learning_rate=lr),
            train=data,
            num_steps=40,
            eval_every=5,
            guards=guards,
        )
    return result, [str(w.message) for w in caught]


def test_fit_warns_once_for_too_small_and_too_large_lr_and_not_for_a_good_one():
    small, said_small = _fit(1e-6)
    assert "learning rate probably too low" in small.message
    assert sum("training loss dropped" in m for m in said_small) == 1  # once, at evaluation 4 of 8
    assert any("update/weight ratio" in m and "too low" in m for m in said_small)
    large, said_large = _fit(50.0)
    assert any("update/weight ratio" in m and "too high" in m for m in said_large)
    assert large.message.count("update/weight ratio") == 1
    good, said_good = _fit(0.01)
    assert not [m for m in said_good if "learning rate probably" in m], good.message
    assert "learning rate probably" not in good.message


def test_fit_rejects_bad_guard_values():
    data = toy.blobs(32)
    with pytest.raises(ValueError, match="update_ratio_band"):
        training.fit(
            toy.linear(3),
            optimizers.sgd(learning_rate=0.1),
            train=data,
            num_steps=2,
            guards=training.Guards(babysit_after=1, update_ratio_band=(1e-2, 1e-4)),
        )
