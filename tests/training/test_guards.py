"""The notes' sanity checks: chance-level loss, explosion, early stopping, overfitting."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jax231 import training
from tests.training import toy


@pytest.mark.parametrize(
    "loss,num_classes,kind,ok",
    [
        (2.3026, 10, "softmax", True),  # the notes' CIFAR-10 value, -ln(0.1) = 2.302
        (2.7, 10, "softmax", False),  # 17% off
        (9.0, 10, "svm", True),  # C - 1 with all scores ~0 and margin 1
        (4.0, 10, "svm", False),
        (float("nan"), 3, "softmax", False),
    ],
)
def test_check_initial_loss(loss, num_classes, kind, ok):
    check = training.check_initial_loss(loss, num_classes, kind=kind)
    expected = math.log(num_classes) if kind == "softmax" else num_classes - 1
    assert check.ok is ok and check.expected == pytest.approx(expected, rel=1e-12)
    assert f"{num_classes} classes" in check.message


def test_initial_loss_of_a_small_init_is_chance_level():
    """The check agrees with a real small-weight model on 10 classes."""
    data = toy.blobs(200, num_classes=10)
    model = toy.linear(num_classes=10, scale=1e-3)
    state = training.create_train_state(model, optax.sgd(0.1), rng=jax.random.PRNGKey(0), input_shape=(4, 1))
    loss = training.evaluate(training.make_eval_step(model), state, data)["loss"]
    assert training.check_initial_loss(loss, 10).ok
    assert training.check_initial_loss(
        training.evaluate(training.make_eval_step(model, loss="svm"), state, data)["loss"], 10, kind="svm"
    ).ok


def test_check_initial_loss_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        training.check_initial_loss(1.0, 1)
    with pytest.raises(ValueError, match="loss"):
        training.expected_initial_loss(3, loss="hinge")
    with pytest.raises(ValueError, match="rtol"):
        training.check_initial_loss(1.0, 3, rtol=0.0)


def test_is_exploded_table_and_vmap():
    losses = jnp.array([1.0, 3.0, 3.01, jnp.nan, jnp.inf, -jnp.inf])
    expected = np.array([False, False, True, True, True, True])  # strictly above 3x, or non-finite
    np.testing.assert_array_equal(jax.vmap(training.is_exploded, (0, None, None))(losses, 1.0, 3.0), expected)
    np.testing.assert_array_equal(
        training.is_exploded(losses, jnp.nan, 3.0),  # unknown initial loss
        [False, False, False, True, True, True],
    )


def test_early_stopping_state_machine():
    es = training.EarlyStopping(patience=2, min_delta=0.1)
    state = es.init()
    trace = []
    for step, value in enumerate([1.0, 0.8, 0.75, 0.95, 0.5, 0.6, 0.7]):
        state, improved, stop = es.update(state, value, step)
        trace.append((improved, stop))
    # 0.75 is not 0.1 below 0.8: no improvement; 0.5 resets the counter; 0.6, 0.7 stop.
    assert trace == [
        (True, False),
        (True, False),
        (False, False),
        (False, True),
        (True, False),
        (False, False),
        (False, True),
    ]
    assert state.best == 0.5 and state.best_step == 4
    with pytest.raises(ValueError, match="patience"):
        training.EarlyStopping(patience=0).init()


def test_fit_early_stopping_restores_the_best_snapshot():
    train = toy.blobs(96, spread=2.0)
    val = toy.blobs(60, seed=1, spread=2.0)
    labels = val["label"].copy()
    labels[:15] = (labels[:15] + 1) % 3  # 25% wrong labels: val loss rises once the model is confident
    val = {"image": val["image"], "label": labels}
    model = toy.linear()
    result = training.fit(
        model,
        optax.sgd(0.5),
        train=train,
        val=val,
        num_steps=400,
        batch_size=16,
        eval_every=10,
        early_stopping_patience=3,
    )
    h = result.history
    assert result.status == "early_stopped", result.message
    best = int(np.argmin(h["val_loss"]))
    assert result.best_step == h["step"][best] == int(result.state.step)
    assert len(h["step"]) == best + 1 + 3  # stopped after `patience` evaluations without improvement
    restored = training.evaluate(training.make_eval_step(model), result.state, val)
    assert restored["loss"] == h["val_loss"][best]  # the very parameters evaluated at best_step


def test_overfit_a_tiny_subset():
    data = toy.blobs(96, spread=3.0)  # overlapping blobs: the full set is not separable
    result = training.overfit_subset(toy.mlp(hidden=32), optax.adam(3e-2), train=data, num_examples=12, num_steps=150)
    assert result.ok and result.accuracy == 1.0
    assert result.loss < 0.05  # "you should be able to achieve zero cost"
    assert result.fit_result.status == "completed"
    weak = training.overfit_subset(toy.linear(), optax.sgd(1e-6), train=data, num_examples=12, num_steps=5)
    assert not weak.ok
    with pytest.raises(ValueError, match="num_examples"):
        training.overfit_subset(toy.linear(), optax.sgd(0.1), train=data, num_examples=97)
