"""Transfer learning: pretrain on task A, freeze all but the last layer, fine-tune on task B.

Three runs on task B with the same budget are compared:

1. ``scratch``: every layer trained from a fresh initialisation;
2. ``head_only``: the features pretrained on A are frozen and only a fresh last layer
   (``params[head_key]``) is trained -- the notes' "ConvNet as fixed feature extractor";
3. ``fine_tune_all``: every layer trained, starting from A's features and a fresh head.

Freezing is an optimizer transform (:func:`freeze`) that zeroes the updates of the
frozen leaves, so any update rule and ``jax231.training.fit`` work unchanged; the
pretrained weights enter ``fit`` through a model whose ``init`` returns them
(:func:`with_initial_params`). Tasks are datasets or class subsets of a dataset
(e.g. digits 0-4 -> digits 5-9, or CIFAR-10 vehicles -> animals).

Library half of ``python -m experiments.transfer.main``.

References:
  CS231n notes, "Transfer learning" (https://cs231n.github.io/transfer-learning/);
  Yosinski et al., "How transferable are features in deep neural networks?", NeurIPS 2014.
"""

from __future__ import annotations

import pathlib
import time
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments import _common
from experiments._common import UsageError
from experiments.train import experiment as train_lib
from jax231 import models
from jax231 import optimizers
from jax231 import training
from jax231.types import Params

ARMS = ("scratch", "head_only", "fine_tune_all")


class ArmResult(NamedTuple):
    """One fine-tuning run on task B.

    Attributes:
      name: one of :data:`ARMS`.
      val_accuracy: accuracy of the final state on B's validation split.
      test_accuracy: accuracy of the final state on B's test split.
      fit: the ``FitResult`` of the run.
    """

    name: str
    val_accuracy: float
    test_accuracy: float
    fit: Any


def freeze(optimizer: optimizers.GradientTransformation, trainable: Any) -> optimizers.GradientTransformation:
    """Wraps ``optimizer`` so that the updates of non-trainable leaves are exactly zero.

    .. math::  \\Delta w = m \\odot \\mathrm{update}(g), \\quad m \\in \\{0, 1\\} \\text{ per leaf}

    Args:
      optimizer: any transformation of the optax protocol.
      trainable: a pytree of Python bools with the structure of the params.

    Returns:
      A ``GradientTransformation`` with the inner state; extras pass through, and the
      inner rule's capabilities (``needs_objective``, ``eval_params``) are kept.
    """

    def update(grads, state, params=None, **extra):
        updates, state = optimizer.update(grads, state, params, **extra)
        updates = jax.tree_util.tree_map(lambda u, keep: u if keep else jnp.zeros_like(u), updates, trainable)
        return updates, state

    return optimizers.GradientTransformation(
        optimizer.init, update, needs_objective=getattr(optimizer, "needs_objective", False),
        eval_params=getattr(optimizer, "eval_params", None))


def head_mask(params: Params, head_key: str) -> Any:
    """``True`` for the leaves under ``params[head_key]``, ``False`` elsewhere."""
    if head_key not in params:
        raise UsageError(f"--config.head_key: expected a top-level parameter key; got {head_key!r}, "
                         f"valid: {', '.join(params)}")
    return {key: jax.tree_util.tree_map(lambda _: key == head_key, value) for key, value in params.items()}


def with_initial_params(model: models.Model, params: Params, model_state: Any) -> models.Model:
    """The same model, but ``init`` returns the given (pretrained) params and state."""

    def init(rng, input_shape):
        del rng, input_shape
        return params, model_state

    return models.Model(init, model.apply)


def select_classes(arrays: dict, classes: Sequence[int]) -> dict:
    """Examples whose label is in ``classes``, relabelled ``classes[i] -> i``."""
    classes = [int(c) for c in classes]
    labels = np.asarray(arrays["label"])
    keep = np.isin(labels, classes)
    remap = np.full(int(max(labels.max(), max(classes))) + 1, -1, np.int32)
    remap[classes] = np.arange(len(classes), dtype=np.int32)
    return {"image": np.asarray(arrays["image"])[keep], "label": remap[labels[keep]]}


def task_splits(config: ml_collections.ConfigDict, task: str) -> _common.Splits:
    """Loads ``config.dataset_<task>`` restricted to ``config.classes_<task>`` (empty = all)."""
    data_config = ml_collections.ConfigDict(config.to_dict())
    data_config.dataset = config[f"dataset_{task}"]
    data_config.train_size = 0
    splits = train_lib.build_data(data_config)
    classes = tuple(config[f"classes_{task}"]) or tuple(range(splits.num_classes))
    bad = [c for c in classes if not 0 <= int(c) < splits.num_classes]
    if bad or len(set(classes)) != len(classes):
        raise UsageError(f"--config.classes_{task}: expected distinct labels in [0, {splits.num_classes}); "
                         f"got {classes}")
    train, val, test = (select_classes(s, classes) for s in (splits.train, splits.val, splits.test))
    size = config[f"train_size_{task}"]
    if size:
        train = _common.take(train, size)
    return splits._replace(train=train, val=val, test=test, num_classes=len(classes))


def _fit(model, optimizer, config, splits, num_steps, seed_offset=0):
    return training.fit(model, optimizer, train=splits.train, val=splits.val, loss=config.loss,
                        penalty=train_lib.build_penalty(config), num_steps=num_steps,
                        batch_size=min(config.batch_size, len(splits.train["label"])) or None,
                        eval_every=min(config.eval_every, num_steps), seed=config.seed + seed_offset,
                        check_initial_loss=False)


def run(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict[str, Any]:
    """Pretrains on A, then runs the three arms on B; writes ``summary.md/.csv``, ``curves.png``, ``results.json``.

    Returns:
      ``{'pretrain': FitResult, 'pretrain_val_accuracy': float, 'arms': {name: ArmResult}}``.
    """
    start = time.perf_counter()
    workdir = pathlib.Path(workdir)
    split_a, split_b = task_splits(config, "a"), task_splits(config, "b")
    if split_a.input_shape != split_b.input_shape:
        raise UsageError(f"--config.dataset_b: expected examples of shape {split_a.input_shape} like dataset_a; "
                         f"got {split_b.input_shape}")
    model_a = train_lib.build_model(config, split_a.num_classes)
    pretrain = _fit(model_a, train_lib.build_optimizer(config, num_steps=config.pretrain_steps), config,
                    split_a, config.pretrain_steps)
    pretrain_val = float(pretrain.evaluate(split_a.val, batch_size=len(split_a.val["label"]))["accuracy"])

    model_b = train_lib.build_model(config, split_b.num_classes)
    fresh_params, fresh_state = model_b.init(jax.random.key(config.seed + 1), split_b.input_shape)
    if config.head_key not in pretrain.state.params:
        head_mask(pretrain.state.params, config.head_key)  # raises the UsageError listing the keys
    transferred = {**pretrain.state.params, config.head_key: fresh_params[config.head_key]}
    transferred_model = with_initial_params(model_b, transferred, pretrain.state.model_state)
    optimizer = train_lib.build_optimizer(config, num_steps=config.finetune_steps)
    runs = {
        "scratch": (model_b, optimizer),
        "head_only": (transferred_model, freeze(optimizer, head_mask(transferred, config.head_key))),
        "fine_tune_all": (transferred_model, optimizer),
    }
    arms = {}
    for name in ARMS:
        model, opt = runs[name]
        result = _fit(model, opt, config, split_b, config.finetune_steps, seed_offset=1)
        val = result.evaluate(split_b.val, batch_size=len(split_b.val["label"]))
        test = result.evaluate(split_b.test, batch_size=len(split_b.test["label"]))
        arms[name] = ArmResult(name, float(val["accuracy"]), float(test["accuracy"]), result)

    seconds = time.perf_counter() - start
    rows = [{"run": name, "val_accuracy": arm.val_accuracy, "test_accuracy": arm.test_accuracy,
             "trained_params": _trained_count(arm.fit.state.params, config.head_key, name)}
            for name, arm in arms.items()]
    _common.write_tables(
        workdir, "summary", rows,
        title=f"Transfer {config.dataset_a}{list(config.classes_a)} -> {config.dataset_b}{list(config.classes_b)}",
        notes=(f"Pretraining on A: val accuracy {pretrain_val:.4f} after {config.pretrain_steps} steps. "
               f"Task B: {len(split_b.train['label'])} training examples, {config.finetune_steps} steps per run. "
               f"Wall time {seconds:.1f} s."))
    panels = {"val accuracy on B": {name: (arm.fit.history["step"], [arm.fit.history["val_accuracy"]])
                                    for name, arm in arms.items()}}
    _common.plot_curves(workdir / "curves.png", panels, ylabel="accuracy", title="Transfer vs scratch")
    if config.get("tensorboard", training.tensorboard_available()):
        for name, arm in {"pretrain": pretrain, **{n: a.fit for n, a in arms.items()}}.items():
            training.write_tensorboard(workdir / "tensorboard" / name, arm.history, hparams={"run": name})
    _common.write_json(workdir / "results.json", {"pretrain_val_accuracy": pretrain_val, "rows": rows,
                                                  "seconds": seconds})
    return {"pretrain": pretrain, "pretrain_val_accuracy": pretrain_val, "arms": arms}


def _trained_count(params: Params, head_key: str, arm: str) -> int:
    if arm == "head_only":
        return models.count_params(params[head_key])
    return models.count_params(params)
