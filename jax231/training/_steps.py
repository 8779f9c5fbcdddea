"""Pure train and eval steps, and the on-device epoch and evaluation loops."""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable, Mapping

import jax
import jax.numpy as jnp
import optax
from jax import lax

from jax231 import losses
from jax231.training import _batch, _metrics
from jax231.training._conv_layout import loop_body
from jax231.training._state import TrainState
from jax231.types import (
    Array,
    ArrayLike,
    GradientTransformation,
    Model,
    ModelState,
    OptState,
    Params,
    PRNGKey,
    PyTree,
    Updates,
)

PerExampleLoss = Callable[..., "Array | tuple[Array, Mapping[str, Array]]"]
"""``loss(*, logits, labels) -> (N,)``, or ``-> ((N,), {term: (N,)})`` to report named terms."""
LossName = str | PerExampleLoss
Batch = Mapping[str, PyTree]
"""``{'image': inputs, 'label': targets}`` (pytrees with a leading axis ``N``, :mod:`._batch`)."""
TrainStep = Callable[..., tuple[TrainState, dict[str, Array]]]
"""``step(state, batch, *step_args) -> (state, metrics)``."""
EvalStep = Callable[[TrainState, Batch], dict[str, Array]]
Objective = Callable[..., tuple[Array, tuple[PyTree, ModelState, dict[str, Array]]]]
LOSS_NAMES = ("softmax", "svm")


def resolve_loss(loss: LossName) -> PerExampleLoss:
    """Returns the per-example loss ``f(*, logits, labels) -> (N,)`` named by ``loss``.

    Args:
      loss: ``'softmax'`` (cross-entropy), ``'svm'`` (multiclass hinge, margin 1)
        or a callable with the signature of :mod:`jax231.losses` (it may also
        return ``(values, {term: values})``, see :func:`make_loss_fn`).

    Raises:
      ValueError: for an unknown name.
    """
    if callable(loss):
        return loss
    if loss not in LOSS_NAMES:
        raise ValueError(f"loss: expected one of {LOSS_NAMES} or a callable, got {loss!r}")
    if loss == "softmax":
        return losses.softmax_cross_entropy
    return losses.svm_loss


def _check_batch(batch: Batch, loss: LossName) -> None:
    """The batch's structure (:func:`._batch.check`); a named loss needs a ``'label'``."""
    _batch.check("batch", batch)
    if not callable(loss) and "label" not in batch:
        raise ValueError(
            f"batch: expected a dict with 'image' and 'label' (loss {loss!r} needs labels), got keys {sorted(batch)}"
        )


def _split_terms(out: Array | tuple[Array, Mapping[str, Array]]) -> tuple[Array, Mapping[str, Array]]:
    """``(per-example values, {term: per-example values})`` of a loss's output."""
    if isinstance(out, tuple):
        values, terms = out
        return values, terms
    return out, {}


def _make_objective(model: Model, loss: LossName, penalty: Callable[[Params], Array] | None) -> Objective:
    """:func:`make_loss_fn` with the batch means of the loss's named terms in the aux."""
    per_example = resolve_loss(loss)

    def objective(
        params: Params, model_state: ModelState, batch: Batch, rng: PRNGKey | None, *, train: bool
    ) -> tuple[Array, tuple[PyTree, ModelState, dict[str, Array]]]:
        logits, new_model_state = model.apply(params, model_state, batch["image"], train=train, rng=rng)
        values, terms = _split_terms(per_example(logits=logits, labels=batch.get("label")))
        value = jnp.mean(values)
        if penalty is not None:
            value = value + penalty(params)
        return value, (logits, new_model_state, {name: jnp.mean(v) for name, v in terms.items()})

    return objective


def make_loss_fn(
    model: Model,
    *,
    loss: LossName = "softmax",
    penalty: Callable[[Params], Array] | None = None,
) -> Callable[..., tuple[Array, tuple[PyTree, ModelState]]]:
    """Builds the objective ``L(w) = mean_i loss(f(x_i; w), y_i) + R(w)``.

    The model's output ``f(x_i; w)`` and the labels ``y_i`` may be pytrees
    (:mod:`._batch`): a multi-output model returns a dict, the batch's
    ``'label'`` is a dict too (or absent: ``labels=None``), and the callable
    ``loss(*, logits=output, labels=labels) -> (N,)`` combines them. A loss that
    needs the dropout/sampling key or extra terms (a VAE's KL) gets them through
    the output: ``apply`` receives ``rng`` and may return per-example terms. A
    loss may also return ``(values, {term: values})``: the train step then
    reports the batch mean of each term as the metric ``'loss/<term>'``.

    Args:
      model: a ``Model(init, apply)``.
      loss: ``'softmax'``, ``'svm'`` or a per-example callable ``f(*, logits, labels)``.
      penalty: optional ``R(params) -> scalar`` (e.g. ``functools.partial(
        jax231.losses.l2_penalty, strength=1e-4)``), added to the mean data loss.

    Returns:
      ``loss_fn(params, model_state, batch, rng, *, train) -> (loss, (logits,
      new_model_state))``, differentiable in ``params``.
    """
    objective = _make_objective(model, loss, penalty)

    def loss_fn(
        params: Params, model_state: ModelState, batch: Batch, rng: PRNGKey | None, *, train: bool
    ) -> tuple[Array, tuple[PyTree, ModelState]]:
        value, (logits, new_model_state, _) = objective(params, model_state, batch, rng, train=train)
        return value, (logits, new_model_state)

    return loss_fn


def _needs_objective(optimizer: GradientTransformation) -> bool:
    """Whether ``update`` gets the keyword extras ``value``, ``grad``, ``value_fn``.

    Asked of the built object, never of its name or signature: jax231's
    ``GradientTransformation.needs_objective`` (L-BFGS, and any chain holding
    it), or optax's own marker for rules that take extra arguments
    (``optax.GradientTransformationExtraArgs``, e.g. ``optax.lbfgs``).
    """
    return bool(getattr(optimizer, "needs_objective", False)) or isinstance(
        optimizer, optax.GradientTransformationExtraArgs
    )


def _accuracy(logits: PyTree, labels: PyTree) -> Array:
    """Batch accuracy where defined (:func:`._batch.has_accuracy`), else NaN."""
    return jnp.mean(_batch.correct(logits, labels))


def _dropout_key(state: TrainState, axis_name: str | None) -> PRNGKey:
    """Step 1 of :func:`make_train_step`: ``fold_in(rng, t)``, and the device index under ``pmap``."""
    rng = jax.random.fold_in(state.rng, state.step)
    if axis_name is not None:
        rng = jax.random.fold_in(rng, lax.axis_index(axis_name))
    return rng


def _optimizer_update(
    optimizer: GradientTransformation,
    pass_extras: bool,
    grads: Updates,
    state: TrainState,
    value: Array,
    objective: Callable[[Params], tuple[Array, Any]],
    axis_name: str | None,
) -> tuple[Updates, OptState]:
    """Step 4 of :func:`make_train_step`: the keyword extras only for optimizers that need the objective."""
    if not pass_extras:
        return optimizer.update(grads, state.opt_state, state.params)

    def value_fn(params: Params) -> Array:
        v = objective(params)[0]
        return lax.pmean(v, axis_name) if axis_name is not None else v

    return optimizer.update(grads, state.opt_state, state.params, value=value, grad=grads, value_fn=value_fn)


def _step_metrics(
    value: Array,
    accuracy: Array,
    grads: Updates,
    params: Params,
    updates: Updates,
    terms: Mapping[str, Array],
    per_layer_ratios: bool,
) -> dict[str, Array]:
    """The metrics of one update (documented in :func:`make_train_step`)."""
    param_norm = _metrics.global_norm(params)
    update_norm = _metrics.global_norm(updates)
    metrics = {
        "loss": value.astype(jnp.float32),
        "accuracy": accuracy,
        "grad_norm": _metrics.global_norm(grads).astype(jnp.float32),
        "param_norm": param_norm.astype(jnp.float32),
        "update_norm": update_norm.astype(jnp.float32),
        "update_ratio": (update_norm / (param_norm + _metrics._EPS)).astype(jnp.float32),
    }
    metrics.update({f"loss/{name}": v.astype(jnp.float32) for name, v in terms.items()})
    if per_layer_ratios:
        for name, r in _metrics.update_ratios(params, updates).items():
            metrics[f"update_ratio/{name}"] = r
    return metrics


def make_train_step(
    model: Model,
    optimizer: GradientTransformation,
    *,
    loss: LossName = "softmax",
    penalty: Callable[[Params], Array] | None = None,
    axis_name: str | None = None,
    per_layer_ratios: bool = False,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, Array]]]:
    """Builds one SGD-style update ``w <- w + update(grad L(w))`` as a pure function.

    The returned ``step(state, batch) -> (state, metrics)`` is NOT jitted: jit it
    (:func:`jit_train_step` donates the state), vmap it over seeds or
    hyperparameters, or pmap it with ``axis_name``. Per update ``t``:

    1. dropout key ``k_t = fold_in(state.rng, t)``; under ``pmap`` (``axis_name``)
       each device folds in its index too, ``fold_in(k_t, axis_index)``, so the
       shards of the global batch draw independent dropout masks;
    2. ``(L, (logits, ms')), g = value_and_grad(loss_fn)(w, ms, batch, k_t, train=True)``;
    3. with ``axis_name``: ``g, L, metrics = pmean(., axis_name)`` (BatchNorm
       statistics are synchronised by the model when built with the same
       ``bn_axis_name``);
    4. ``u, s' = optimizer.update(g, s, w, value=L, grad=g, value_fn=...)``, the
       keyword extras going only to optimizers that need the objective
       (``optimizer.needs_objective``, or optax's ``GradientTransformationExtraArgs``;
       L-BFGS; ``value_fn(w)`` is the same train-mode loss on the same batch with
       the same dropout key);
    5. ``w' = w + u``, ``t' = t + 1``.

    Args:
      model: a ``Model(init, apply)``.
      optimizer: a ``GradientTransformation`` (jax231.optimizers or optax).
      loss: ``'softmax'``, ``'svm'`` or a per-example callable (see :func:`make_loss_fn`).
      penalty: optional regulariser ``R(params)`` added to the loss.
      axis_name: the ``pmap`` axis to average gradients and metrics over.
      per_layer_ratios: also report ``'update_ratio/<path>'`` for every leaf.

    Returns:
      ``step(state, batch)``; ``metrics`` holds float32 scalars ``'loss'``
      (including the penalty), ``'accuracy'`` (NaN where undefined: pytree
      outputs or labels, see :mod:`._batch`), ``'grad_norm'``, ``'param_norm'``
      (before the update), ``'update_norm'`` and ``'update_ratio'``
      (``update_norm / param_norm``, the notes' ~1e-3 rule of thumb), plus
      ``'loss/<term>'`` for a loss returning named terms.
    """
    loss_fn = _make_objective(model, loss, penalty)
    pass_extras = _needs_objective(optimizer)

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, Array]]:
        _check_batch(batch, loss)
        rng = _dropout_key(state, axis_name)  # 1.

        def objective(params: Params) -> tuple[Array, tuple[PyTree, ModelState, dict[str, Array]]]:
            return loss_fn(params, state.model_state, batch, rng, train=True)

        (value, (logits, new_model_state, terms)), grads = jax.value_and_grad(objective, has_aux=True)(
            state.params
        )  # 2.
        accuracy = _accuracy(logits, batch.get("label"))
        if axis_name is not None:  # 3.
            grads, value, accuracy, terms = lax.pmean((grads, value, accuracy, terms), axis_name)
        updates, opt_state = _optimizer_update(optimizer, pass_extras, grads, state, value, objective, axis_name)  # 4.
        params = jax.tree_util.tree_map(lambda w, u: (w + u).astype(w.dtype), state.params, updates)  # 5.
        metrics = _step_metrics(value, accuracy, grads, state.params, updates, terms, per_layer_ratios)
        new_state = TrainState(
            params=params, model_state=new_model_state, opt_state=opt_state, step=state.step + 1, rng=state.rng
        )
        return new_state, metrics

    return step


def jit_train_step(step: TrainStep) -> TrainStep:
    """``jax.jit(step, donate_argnums=0)``: the old state's buffers are reused.

    One program call per step. On XLA:CPU each call also allocates the step's temporaries
    afresh (for ResNet-20 at batch 128, ~230 MB that page-fault on first touch), so a Python
    loop of this step took 12-21% more time per step than the same steps compiled as one loop
    (:func:`run_steps`, which :func:`fit` uses): ``python -m benchmarks.bench_cnn``.
    """
    return jax.jit(step, donate_argnums=0)


def make_eval_step(model: Model, *, loss: LossName = "softmax") -> EvalStep:
    """Builds ``eval_step(state, batch) -> metrics`` (inference mode, no penalty).

    ``batch`` may carry a ``'mask'`` of 0/1 weights (padding rows have 0).

    Returns:
      ``eval_step``; metrics are batch MEANS over the unmasked examples,
      ``'loss'`` (data loss only, its named terms summed) and ``'accuracy'`` (NaN where undefined), plus ``'count'``, the number
      of unmasked examples, so that :func:`evaluate` can weight batches.
    """
    per_example = resolve_loss(loss)

    def eval_step(state: TrainState, batch: Batch) -> dict[str, Array]:
        _check_batch(batch, loss)
        logits, _ = model.apply(state.params, state.model_state, batch["image"], train=False, rng=None)
        labels = batch.get("label")
        mask = batch.get("mask")
        n = _batch.num_examples(batch)
        mask = jnp.ones((n,), jnp.float32) if mask is None else mask.astype(jnp.float32)
        count = jnp.sum(mask)
        denom = jnp.maximum(count, 1.0)
        losses = _split_terms(per_example(logits=logits, labels=labels))[0].astype(jnp.float32)
        correct = _batch.correct(logits, labels)
        return {
            "loss": jnp.sum(jnp.where(mask > 0, losses, 0.0) * mask) / denom,
            "accuracy": jnp.sum(correct * mask) / denom,
            "count": count,
        }

    return eval_step


@functools.partial(jax.jit, static_argnames=("eval_step", "batch_size"))
def _evaluate_arrays(eval_step, state, data, *, batch_size):
    n = _batch.num_examples(data)
    num_batches = -(-n // batch_size)
    mask = jnp.concatenate([jnp.ones((n,), jnp.float32), jnp.zeros((num_batches * batch_size - n,), jnp.float32)])
    batches = {key: _batch.pad_batches(value, num_batches, batch_size) for key, value in data.items()}
    batches["mask"] = mask.reshape((num_batches, batch_size))
    per_batch = lax.map(lambda b: eval_step(state, b), batches)
    total = jnp.sum(per_batch["count"])
    return {
        "loss": jnp.sum(per_batch["loss"] * per_batch["count"]) / total,
        "accuracy": jnp.sum(per_batch["accuracy"] * per_batch["count"]) / total,
    }


@functools.partial(jax.jit, static_argnums=0)
def _eval_batch(eval_step, state, batch):
    return eval_step(state, batch)


def evaluate(
    eval_step: EvalStep, state: TrainState, data: Batch | Iterable[Batch], *, batch_size: int = 1024
) -> dict[str, float]:
    """Mean loss and accuracy of ``state`` over a whole dataset.

    Args:
      eval_step: from :func:`make_eval_step` (reuse the same object: it is the
        key of the compilation cache).
      state: the train state to evaluate.
      data: a dict ``{'image', 'label'}`` of arrays or pytrees (``'label'``
        optional, see :mod:`._batch`; evaluated on device in one compiled
        ``lax.map``, the last batch padded and masked), or an iterable of such batches.
      batch_size: examples per batch for array input (capped at the dataset size).

    Returns:
      ``{'loss': float, 'accuracy': float}``, means over all examples
      (accuracy NaN where undefined).
    """
    if isinstance(data, Mapping):
        _batch.check("batch", data)
        n = _batch.num_examples(data)
        if n == 0:
            raise ValueError("data: expected at least one example, got 0")
        if batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size}")
        arrays = {key: jax.tree_util.tree_map(jnp.asarray, data[key]) for key in _batch.KEYS if key in data}
        out = _evaluate_arrays(eval_step, state, arrays, batch_size=min(batch_size, n))
        return {k: float(v) for k, v in out.items()}
    sums = {"loss": 0.0, "accuracy": 0.0}
    total = 0.0
    for batch in data:
        m = _eval_batch(eval_step, state, {k: jax.tree_util.tree_map(jnp.asarray, v) for k, v in batch.items()})
        count = float(m["count"])
        sums = {k: sums[k] + float(m[k]) * count for k in sums}
        total += count
    if total == 0:
        raise ValueError("data: the iterable of batches was empty")
    return {k: v / total for k, v in sums.items()}


def epoch_permutation(data_key: PRNGKey, epoch: ArrayLike, num_examples: int) -> Array:
    """The example order of ``epoch``: ``permutation(fold_in(data_key, epoch), N)``."""
    return jax.random.permutation(jax.random.fold_in(data_key, epoch), num_examples)


@functools.partial(jax.jit, static_argnames=("step", "batch_size"))
def _epoch_scan(step, state, data_key, arrays, epoch, *, batch_size):
    if data_key is None:
        data_key = jax.random.split(state.rng)[1]
    n = _batch.num_examples(arrays)
    num_batches = n // batch_size
    perm = epoch_permutation(data_key, epoch, n)[: num_batches * batch_size]
    perm = perm.reshape(num_batches, batch_size)
    step = loop_body(step)  # XLA:CPU's fast convolution in the scan body too (._conv_layout)

    def body(s, idx):
        return step(s, {key: _batch.take(value, idx) for key, value in arrays.items()})

    return lax.scan(body, state, perm)


def train_epoch_scan(
    step: TrainStep,
    state: TrainState,
    arrays: Batch,
    *,
    batch_size: int,
    epoch: int | ArrayLike,
    data_key: PRNGKey | None = None,
) -> tuple[TrainState, dict[str, Array]]:
    """One epoch as a single compiled ``lax.scan`` over on-device data.

    The examples are visited in the order :func:`epoch_permutation` ``(data_key,
    epoch, N)``; the last ``N mod batch_size`` examples of that order are
    dropped. ``data_key`` defaults to ``jax.random.split(state.rng)[1]``, so the
    state's key fixes the data order too (``fit`` uses its own data key).

    Args:
      step: from :func:`make_train_step` (reuse the object: it keys the cache).
      state: the state at the start of the epoch.
      arrays: ``{'image': (N, ...), 'label': (N,)}`` arrays.
      batch_size: examples per update, ``1 <= batch_size <= N``.
      epoch: the epoch number (a traced value is fine: no recompilation).
      data_key: the key of the data order.

    Returns:
      ``(state, metrics)`` with every metric stacked over the ``N // batch_size``
      updates.
    """
    n = _batch.check("arrays", arrays)
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size: expected 1 <= batch_size <= {n} (the dataset size), got {batch_size}")
    data = {key: arrays[key] for key in _batch.KEYS if key in arrays}
    return _epoch_scan(step, state, data_key, data, epoch, batch_size=batch_size)
