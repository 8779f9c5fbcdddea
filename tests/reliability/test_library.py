"""Library arguments: every bad value is a one-line ``ValueError`` naming the argument (a table).

Each row calls one public function with one bad argument; the error must be a
``ValueError`` (not a ``TypeError`` or a crash deep inside), one line, and name
the argument.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import losses, models, optimizers, pipelines, training

MLP = models.get("mlp", hidden_sizes=(8,), num_classes=3)
TRAIN = {"image": np.zeros((16, 4), np.float32), "label": np.arange(16, dtype=np.int32) % 3}
PARAMS = {"dense": {"w": jnp.ones((2, 2))}}
LOGITS, LABELS = jnp.zeros((4, 3)), jnp.array([0, 1, 2, 0])


def _fit(**kw):
    args = {"train": TRAIN, "num_steps": 2, "batch_size": 4, "eval_every": 1, **kw}
    return training.fit(MLP, optimizers.sgd(learning_rate=0.1), **args)


def _adam_state():
    return optimizers.adam(learning_rate=1e-3).init(PARAMS)


CASES = [
    # optimizers
    ("adam_lr_inf", lambda: optimizers.adam(learning_rate=math.inf), "learning_rate"),
    ("adam_lr_nan", lambda: optimizers.adam(learning_rate=math.nan), "learning_rate"),
    ("adam_lr_negative", lambda: optimizers.adam(learning_rate=-1.0), "learning_rate"),
    ("sgd_lr_negative", lambda: optimizers.sgd(learning_rate=-0.1), "learning_rate"),
    ("momentum_above_one", lambda: optimizers.get("momentum", learning_rate=0.1, momentum=1.5), "momentum"),
    ("adam_beta1_one", lambda: optimizers.adam(learning_rate=1e-3, beta1=1.0), "beta1"),
    ("unknown_optimizer", lambda: optimizers.get("adamm", learning_rate=0.1), "adamm"),
    ("optimizer_unknown_kwarg", lambda: optimizers.get("adam", learning_rate=0.1, no_such=1), "no_such"),
    (
        "set_hyperparams_negative",
        lambda: optimizers.set_hyperparams(_adam_state(), learning_rate=-1.0),
        "learning_rate",
    ),
    ("set_hyperparams_nan", lambda: optimizers.set_hyperparams(_adam_state(), learning_rate=math.nan), "learning_rate"),
    # losses
    ("l2_penalty_negative", lambda: losses.l2_penalty(PARAMS, strength=-1.0), "strength"),
    ("l2_penalty_nan", lambda: losses.l2_penalty(PARAMS, strength=math.nan), "strength"),
    ("svm_margin_negative", lambda: losses.svm_loss(logits=LOGITS, labels=LABELS, margin=-1.0), "margin"),
    ("svm_margin_zero", lambda: losses.svm_loss(logits=LOGITS, labels=LABELS, margin=0.0), "margin"),
    # models
    ("unknown_model", lambda: models.get("mlpp", num_classes=3), "mlpp"),
    ("model_unknown_kwarg", lambda: models.get("mlp", num_classes=3, no_such=1), "no_such"),
    ("model_num_classes_zero", lambda: models.get("mlp", num_classes=0), "num_classes"),
    ("model_negative_width", lambda: models.get("mlp", num_classes=3, hidden_sizes=(-4,)), "hidden_sizes"),
    # fit
    ("fit_hyperparams_nan", lambda: _fit(hyperparams={"learning_rate": math.nan}), "learning_rate"),
    ("fit_hyperparams_negative", lambda: _fit(hyperparams={"learning_rate": -0.1}), "learning_rate"),
    ("fit_l2_negative", lambda: _fit(l2=-1.0), "l2"),
    ("fit_l2_nan", lambda: _fit(l2=math.nan), "l2"),
    ("fit_batch_zero", lambda: _fit(batch_size=0), "batch_size"),
    ("fit_batch_above_dataset", lambda: _fit(batch_size=17), "batch_size"),
    ("fit_num_steps_zero", lambda: _fit(num_steps=0), "num_steps"),
    ("fit_eval_every_zero", lambda: _fit(eval_every=0), "eval_every"),
    ("fit_seed_negative", lambda: _fit(seed=-1), "seed"),
    ("fit_seed_huge", lambda: _fit(seed=2**40), "seed"),
    ("fit_explosion_factor_below_one", lambda: _fit(explosion_factor=0.5), "explosion_factor"),
    ("fit_max_seconds_negative", lambda: _fit(max_seconds=-1.0), "max_seconds"),
    ("fit_patience_without_val", lambda: _fit(early_stopping_patience=2), "early_stopping_patience"),
    ("fit_checkpoint_every_without_workdir", lambda: _fit(checkpoint_every=2), "checkpoint_every"),
    ("fit_batch_fn_wrong_shape", lambda: _fit(batch_fn=lambda k, b: {**b, "image": b["image"][:1]}), "batch_fn"),
    ("fit_eval_fn_wrong_signature", lambda: _fit(eval_fn=lambda: None), "eval_fn"),
    ("fit_train_not_a_dict", lambda: _fit(train=[1, 2, 3]), "train"),
    # pipelines
    ("device_epochs_batch_zero", lambda: next(pipelines.device_epochs(TRAIN, batch_size=0, seed=0)), "batch_size"),
    ("device_epochs_seed_negative", lambda: next(pipelines.device_epochs(TRAIN, batch_size=4, seed=-1)), "seed"),
    (
        "augment_integer_images",
        lambda: pipelines.augment_batch(jax.random.key(0), np.zeros((2, 8, 8, 1), np.int32)),
        "images",
    ),
    ("load_arrays_bad_shard", lambda: pipelines.load_arrays("digits", "train", shard=(3, 2)), "shard"),
    ("load_arrays_unknown", lambda: pipelines.load_arrays("no_such_dataset_zz", "train"), "no_such_dataset_zz"),
]


@pytest.mark.parametrize("call, expect", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_argument_is_one_line_value_error(call, expect):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and expect in message, message
