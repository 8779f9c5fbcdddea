"""Transfer learning: pretrain on task A, freeze all but the last layer, fine-tune on task B.

Three runs on task B with the same budget are compared:

1. ``scratch``: every layer trained from a fresh initialisation;
2. ``head_only``: the features pretrained on A are frozen and only a fresh last layer
   (``params[head_key]``) is trained -- the notes' "ConvNet as fixed feature extractor";
3. ``fine_tune_all``: every layer trained, starting from A's features and a fresh head;
4. ``fine_tune_last_n``: only the last ``finetune_last_n`` parameter groups trained
   (:func:`jax231.models.last_groups`; the others frozen by
   :func:`jax231.optimizers.multi_transform` with :func:`~jax231.optimizers.set_to_zero`);
5. ``differential_lr``: every layer trained, the pretrained groups at
   ``backbone_lr_scale`` times the head's learning rate
   (:func:`jax231.optimizers.scale_by_group` chained after the rule);
6. ``stage_features``: a linear classifier trained on the frozen features of an
   intermediate stage ``feature_stage`` (:func:`jax231.models.stage_features`; mlp,
   vgg and resnet), the notes' "features from earlier in the network" for a task
   unlike the pretraining one.

``config.arms`` selects the arms (all by default).

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

ARMS = ("scratch", "head_only", "fine_tune_all", "fine_tune_last_n", "differential_lr", "stage_features")


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
        optimizer.init,
        update,
        needs_objective=getattr(optimizer, "needs_objective", False),
        eval_params=getattr(optimizer, "eval_params", None),
    )


def head_mask(params: Params, head_key: str) -> Any:
    """``True`` for the leaves under ``params[head_key]``, ``False`` elsewhere."""
    if head_key not in params:
        raise UsageError(
            f"--config.head_key: expected a top-level parameter key; got {head_key!r}, valid: {', '.join(params)}"
        )
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
        raise UsageError(
            f"--config.classes_{task}: expected distinct labels in [0, {splits.num_classes}); got {classes}"
        )
    train, val, test = (select_classes(s, classes) for s in (splits.train, splits.val, splits.test))
    size = config[f"train_size_{task}"]
    if size:
        train = _common.take(train, size)
    return splits._replace(train=train, val=val, test=test, num_classes=len(classes))


def last_n_optimizer(optimizer, params: Params, n: int):
    """``optimizer`` on the last ``n`` parameter groups, exactly zero updates on the others."""
    try:
        trainable = models.last_groups(params, n)
    except ValueError as err:
        raise UsageError(f"--config.finetune_last_n: {err}") from None
    return optimizers.multi_transform(
        {"train": optimizer, "frozen": optimizers.set_to_zero()}, models.freeze_labels(params, trainable)
    )


def differential_optimizer(optimizer, params: Params, head_key: str, scale: float):
    """``optimizer`` with every group but ``head_key`` at ``scale`` x the learning rate."""
    if not scale >= 0:
        raise UsageError(f"--config.backbone_lr_scale: expected a float >= 0; got {scale!r}")
    scales = {g: 1.0 if g == head_key else float(scale) for g in models.param_groups(params)}
    return optimizers.chain(optimizer, optimizers.scale_by_group(scales, models.group_labels(params)))


def feature_splits(
    config: ml_collections.ConfigDict, params: Params, model_state: Any, splits: _common.Splits
) -> _common.Splits:
    """B's splits mapped through the pretrained network up to ``config.feature_stage``."""
    try:
        features = models.stage_features(
            config.model, config.feature_stage, num_classes=splits.num_classes, **train_lib.model_kwargs(config)
        )
        mapped = [
            {"image": np.asarray(jax.jit(features)(params, model_state, jnp.asarray(s["image"]))), "label": s["label"]}
            for s in (splits.train, splits.val, splits.test)
        ]
    except ValueError as err:
        raise UsageError(f"--config.feature_stage: {err}") from None
    return splits._replace(train=mapped[0], val=mapped[1], test=mapped[2], input_shape=mapped[0]["image"].shape[1:])


def check_arms(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The arms of ``config.arms`` (default all), validated by name, with their fields (before any training)."""
    names = _common.parse_choices("config.arms", list(config.get("arms", ARMS)), ARMS)
    if "stage_features" in names:
        try:
            models.stage_features(config.model, config.feature_stage, **train_lib.model_kwargs(config))
        except (TypeError, ValueError) as err:
            raise UsageError(f"--config.feature_stage: {err}") from None
    if "differential_lr" in names and not config.get("backbone_lr_scale", 0.1) >= 0:
        raise UsageError(f"--config.backbone_lr_scale: expected a float >= 0; got {config.backbone_lr_scale!r}")
    return names


def _fit(model, optimizer, config, splits, num_steps, seed_offset=0):
    return training.fit(
        model,
        optimizer,
        train=splits.train,
        val=splits.val,
        loss=config.loss,
        penalty=train_lib.build_penalty(config),
        num_steps=num_steps,
        batch_size=min(config.batch_size, len(splits.train["label"])) or None,
        eval_every=min(config.eval_every, num_steps),
        seed=config.seed + seed_offset,
        check_initial_loss=False,
    )


def run(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict[str, Any]:
    """Pretrains on A, then runs the three arms on B; writes ``summary.md/.csv``, ``curves.png``, ``results.json``.

    Returns:
      ``{'pretrain': FitResult, 'pretrain_val_accuracy': float, 'arms': {name: ArmResult}}``.
    """
    start = time.perf_counter()
    workdir = pathlib.Path(workdir)
    names = check_arms(config)
    split_a, split_b = task_splits(config, "a"), task_splits(config, "b")
    if split_a.input_shape != split_b.input_shape:
        raise UsageError(
            f"--config.dataset_b: expected examples of shape {split_a.input_shape} like dataset_a; "
            f"got {split_b.input_shape}"
        )
    model_a = train_lib.build_model(config, split_a.num_classes)
    pretrain = _fit(
        model_a,
        train_lib.build_optimizer(config, num_steps=config.pretrain_steps),
        config,
        split_a,
        config.pretrain_steps,
    )
    pretrain_val = float(pretrain.evaluate(split_a.val, batch_size=len(split_a.val["label"]))["accuracy"])

    model_b = train_lib.build_model(config, split_b.num_classes)
    fresh_params, fresh_state = model_b.init(jax.random.key(config.seed + 1), split_b.input_shape)
    if config.head_key not in pretrain.state.params:
        head_mask(pretrain.state.params, config.head_key)  # raises the UsageError listing the keys
    transferred = {**pretrain.state.params, config.head_key: fresh_params[config.head_key]}
    transferred_model = with_initial_params(model_b, transferred, pretrain.state.model_state)
    optimizer = train_lib.build_optimizer(config, num_steps=config.finetune_steps)
    runs = {
        "scratch": lambda: (model_b, optimizer, split_b),
        "head_only": lambda: (transferred_model, freeze(optimizer, head_mask(transferred, config.head_key)), split_b),
        "fine_tune_all": lambda: (transferred_model, optimizer, split_b),
        "fine_tune_last_n": lambda: (
            transferred_model,
            last_n_optimizer(optimizer, transferred, config.get("finetune_last_n", 2)),
            split_b,
        ),
        "differential_lr": lambda: (
            transferred_model,
            differential_optimizer(optimizer, transferred, config.head_key, config.get("backbone_lr_scale", 0.1)),
            split_b,
        ),
        "stage_features": lambda: _feature_run(config, pretrain.state, split_b, optimizer),
    }
    arms = {}
    for name in names:
        model, opt, split = runs[name]()
        result = _fit(model, opt, config, split, config.finetune_steps, seed_offset=1)
        val = result.evaluate(split.val, batch_size=len(split.val["label"]))
        test = result.evaluate(split.test, batch_size=len(split.test["label"]))
        arms[name] = ArmResult(name, float(val["accuracy"]), float(test["accuracy"]), result)

    seconds = time.perf_counter() - start
    rows = [
        {
            "run": name,
            "val_accuracy": arm.val_accuracy,
            "test_accuracy": arm.test_accuracy,
            "trained_params": _trained_count(
                arm.fit.state.params, config.head_key, name, config.get("finetune_last_n", 2)
            ),
        }
        for name, arm in arms.items()
    ]
    _common.write_tables(
        workdir,
        "summary",
        rows,
        title=f"Transfer {config.dataset_a}{list(config.classes_a)} -> {config.dataset_b}{list(config.classes_b)}",
        notes=(
            f"Pretraining on A: val accuracy {pretrain_val:.4f} after {config.pretrain_steps} steps. "
            f"Task B: {len(split_b.train['label'])} training examples, {config.finetune_steps} steps per run. "
            f"Wall time {seconds:.1f} s."
        ),
    )
    panels = {
        "val accuracy on B": {
            name: (arm.fit.history["step"], [arm.fit.history["val_accuracy"]]) for name, arm in arms.items()
        }
    }
    _common.plot_curves(workdir / "curves.png", panels, ylabel="accuracy", title="Transfer vs scratch")
    if config.get("tensorboard", training.tensorboard_available()):
        for name, arm in {"pretrain": pretrain, **{n: a.fit for n, a in arms.items()}}.items():
            training.write_tensorboard(workdir / "tensorboard" / name, arm.history, hparams={"run": name})
    _common.write_json(
        workdir / "results.json", {"pretrain_val_accuracy": pretrain_val, "rows": rows, "seconds": seconds}
    )
    return {"pretrain": pretrain, "pretrain_val_accuracy": pretrain_val, "arms": arms}


def _feature_run(config: ml_collections.ConfigDict, pretrained: Any, split_b: _common.Splits, optimizer):
    """A linear classifier on the frozen features of ``config.feature_stage`` (the ``stage_features`` arm)."""
    split = feature_splits(config, pretrained.params, pretrained.model_state, split_b)
    return models.linear(num_classes=split.num_classes), optimizer, split


def _trained_count(params: Params, head_key: str, arm: str, last_n: int = 2) -> int:
    if arm == "head_only":
        return models.count_params(params[head_key])
    if arm == "fine_tune_last_n":
        return sum(models.count_params(params[g]) for g in models.last_groups(params, last_n))
    return models.count_params(params)
