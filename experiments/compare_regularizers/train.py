"""Training loop of compare_regularizers: K members at once, per-step hooks, per-epoch eval.

Regularisers differ in *where* they act, so the loop exposes the three places:

* the objective: a penalty ``R(w)`` (L2, L1, elastic net) through
  :func:`jax231.training.make_train_step`'s ``penalty=``; dropout, DropConnect, batch
  norm and stochastic depth live in the model (train mode);
* the data: a random 1-D augmentation of every minibatch inside the compiled loop;
* the parameters that are evaluated: an exponential moving average of the iterates
  (:func:`jax231.optimizers.ema`, Polyak averaging), snapshots at the end of each
  cosine cycle (snapshot ensembles), or ``K`` independently seeded members trained
  together under ``vmap`` (model ensembles), whose softmax outputs are averaged.

One epoch of all members is one jitted ``lax.scan`` (members ``vmap``'d); the
epoch's data order is :func:`jax231.training.epoch_permutation` of the member's key.
``jax231.training.fit`` does not expose per-step hooks (augmentation, averaging,
snapshots), hence this small loop over the same public building blocks.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jax231 import losses, models, optimizers, training

from experiments import _common as common


class Method(NamedTuple):
    """One regulariser, as the loop sees it.

    Attributes:
      name: row name in the report.
      model: jax231 model name.
      model_config: keyword arguments of the model factory (``num_classes`` added).
      penalty: ``R(params) -> scalar`` added to the loss, or None.
      augment: whether minibatches are augmented (random shift and noise).
      average_decay: EMA decay of the evaluated parameters (None: evaluate the iterate).
      members: number of independently seeded members whose softmax is averaged.
      snapshot_cycles: number of cosine cycles with warm restarts (SGDR) whose
        end-of-cycle parameters form a snapshot ensemble (0: constant learning rate).
      as_image: feed ``(N, L, C)`` signals as ``(N, L, 1, C)`` images (2-D models).
    """

    name: str
    model: str
    model_config: Mapping[str, Any]
    penalty: Callable[[Any], jax.Array] | None = None
    augment: bool = False
    average_decay: float | None = None
    members: int = 1
    snapshot_cycles: int = 0
    as_image: bool = False


class MethodResult(NamedTuple):
    """What one method produced.

    Attributes:
      method: the method's name.
      seed: the seed.
      history: per epoch ``'epoch', 'train_loss', 'train_accuracy', 'val_loss',
        'val_accuracy'`` (inference mode, whole splits, evaluated parameters; for
        ensembles the averaged softmax), plus ``'minibatch_loss'`` (train mode,
        penalty included, mean over the epoch's updates).
      final: ``{'train_accuracy', 'val_accuracy', 'test_accuracy', 'train_loss',
        'val_loss', 'test_loss', 'gap'}``; ``gap = train_accuracy - val_accuracy``.
      num_params: parameters of one member.
      diverged: a non-finite minibatch loss was seen.
    """

    method: str
    seed: int
    history: dict[str, list]
    final: dict[str, float]
    num_params: int
    diverged: bool


def augment_signals(key: jax.Array, x: jax.Array, *, max_shift: int, noise_std: float) -> jax.Array:
    """Random circular shift by ``s ~ U{-max_shift..max_shift}`` per example, plus noise.

    .. math:: \\tilde x_i[t] = x_i[(t - s_i) \\bmod L] + \\sigma \\epsilon_{i,t},
              \\quad \\epsilon \\sim N(0, 1)

    with ``sigma = noise_std``. ``x`` has shape ``(N, L, C)``.

    Raises:
      ValueError: if ``x`` is not 3-D or ``max_shift`` < 0.
    """
    if x.ndim != 3:
        raise ValueError(f"x: expected signals of shape (N, L, C); got shape {x.shape}")
    if max_shift < 0:
        raise ValueError(f"max_shift: expected an integer >= 0; got {max_shift}")
    shift_key, noise_key = jax.random.split(key)
    shifts = jax.random.randint(shift_key, (x.shape[0],), -max_shift, max_shift + 1)
    shifted = jax.vmap(lambda xi, s: jnp.roll(xi, s, axis=0))(x, shifts)
    return shifted + noise_std * jax.random.normal(noise_key, x.shape, x.dtype)


def as_image_model(model: models.Model) -> models.Model:
    """Wraps a 2-D model so it takes ``(N, L, C)`` signals as ``(N, L, 1, C)`` images."""

    def init(rng, input_shape):
        return model.init(rng, (input_shape[0], 1, *input_shape[1:]))

    def apply(params, state, x, *, train, rng=None):
        return model.apply(params, state, x[:, :, None, :], train=train, rng=rng)

    return models.Model(init, apply)


def build_model(method: Method, num_classes: int) -> models.Model:
    """The method's model (wrapped with :func:`as_image_model` when asked)."""
    model = common.model_registry().get(method.model, num_classes=num_classes, **dict(method.model_config))
    return as_image_model(model) if method.as_image else model


def ensemble_metrics(model: models.Model, params: Any, model_state: Any, data: Mapping[str, Any]
                     ) -> tuple[jax.Array, jax.Array]:
    """Loss and accuracy of the averaged softmax of stacked members.

    .. math:: \\bar p(y|x) = \\frac1K \\sum_k \\mathrm{softmax}(f(x; w_k)),\\qquad
              L = -\\frac1N \\sum_i \\log \\bar p(y_i|x_i)

    Args:
      model: the members' model.
      params: member parameters stacked on a leading axis ``K``.
      model_state: member states stacked the same way.
      data: ``{'image', 'label'}``.

    Returns:
      ``(loss, accuracy)`` scalars.
    """
    logits = jax.vmap(lambda p, s: model.apply(p, s, data["image"], train=False)[0])(params, model_state)
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    mean_log_prob = jax.scipy.special.logsumexp(log_probs, axis=0) - jnp.log(log_probs.shape[0])
    labels = data["label"]
    loss = -jnp.mean(jnp.take_along_axis(mean_log_prob, labels[:, None], axis=-1))
    accuracy = jnp.mean((jnp.argmax(mean_log_prob, axis=-1) == labels).astype(jnp.float32))
    return loss, accuracy


class Settings(NamedTuple):
    """The config values a compiled training program depends on (hashable cache key)."""

    optimizer: str
    learning_rate: float
    batch_size: int
    num_epochs: int
    max_shift: int
    noise_std: float

    @classmethod
    def from_config(cls, config: Any) -> "Settings":
        return cls(config.optimizer, float(config.learning_rate), int(config.batch_size),
                   int(config.num_epochs), int(config.max_shift), float(config.noise_std))


class Programs(NamedTuple):
    """The jitted functions of one (method, data shape, settings), built once per process.

    Attributes:
      model: the method's model.
      init: ``init(keys) -> (states, averages)`` for stacked member keys.
      run_epoch: ``run_epoch(states, averages, keys, epoch, images, labels) ->
        (states, averages, mean minibatch loss per member)``; members ``vmap``'d.
      evaluate: ``evaluate(params, model_state, data) -> (loss, accuracy)`` of the
        averaged softmax (:func:`ensemble_metrics`).
    """

    model: models.Model
    init: Callable
    run_epoch: Callable
    evaluate: Callable


_PROGRAMS: dict[tuple, Programs] = {}


def programs(method: Method, *, num_classes: int, input_shape: tuple[int, ...], num_train: int,
             settings: Settings) -> Programs:
    """Builds (or fetches) the compiled programs, so that seeds reuse one compilation."""
    key = (repr(method), num_classes, tuple(input_shape), num_train, settings)
    if key not in _PROGRAMS:
        _PROGRAMS[key] = _build_programs(method, num_classes, tuple(input_shape), num_train, settings)
    return _PROGRAMS[key]


def _build_programs(method: Method, num_classes: int, input_shape: tuple[int, ...], n: int,
                    settings: Settings) -> Programs:
    batch_size = min(settings.batch_size, n)
    steps_per_epoch = n // batch_size
    learning_rate: Any = settings.learning_rate
    if method.snapshot_cycles:  # SGDR: cosine cycles with warm restarts, one snapshot per cycle
        period = max(settings.num_epochs // method.snapshot_cycles, 1) * steps_per_epoch
        learning_rate = optimizers.schedules.sgdr(settings.learning_rate, first_period=period)
    model = build_model(method, num_classes)
    optimizer = optimizers.get(settings.optimizer, learning_rate=learning_rate)
    step = training.make_train_step(model, optimizer, penalty=method.penalty)
    average = optimizers.ema(method.average_decay) if method.average_decay is not None else None

    def init(keys):
        states = jax.vmap(lambda k: training.create_train_state(
            model, optimizer, rng=k, input_shape=input_shape))(keys)
        return states, (jax.vmap(average.init)(states.params) if average is not None else None)

    def epoch_fn(state, avg, member_key, epoch, images, labels):
        perm = training.epoch_permutation(member_key, epoch, n)[: steps_per_epoch * batch_size]

        def body(carry, idx):
            state, avg = carry
            batch = {"image": images[idx], "label": labels[idx]}
            if method.augment:
                aug_key = jax.random.fold_in(jax.random.fold_in(member_key, 0xA06), state.step)
                batch["image"] = augment_signals(aug_key, batch["image"], max_shift=settings.max_shift,
                                                 noise_std=settings.noise_std)
            state, metrics = step(state, batch)
            if avg is not None:
                avg = average.update(state.params, avg)
            return (state, avg), metrics["loss"]

        (state, avg), loss = jax.lax.scan(body, (state, avg), perm.reshape(steps_per_epoch, batch_size))
        return state, avg, jnp.mean(loss)

    avg_axis = 0 if average is not None else None
    run_epoch = jax.jit(jax.vmap(epoch_fn, in_axes=(0, avg_axis, 0, None, None, None)))
    return Programs(model, jax.jit(init), run_epoch, jax.jit(functools.partial(ensemble_metrics, model)))


def train_method(method: Method, *, splits: common.Splits, config: Any, seed: int) -> MethodResult:
    """Trains ``method.members`` members of ``method`` for ``config.num_epochs`` epochs.

    Args:
      method: the regulariser.
      splits: train / val / test arrays.
      config: needs ``num_epochs``, ``batch_size``, ``learning_rate``, ``optimizer``,
        ``max_shift``, ``noise_std``.
      seed: member ``k`` uses ``fold_in(key(seed), k)`` (initialisation, data order,
        dropout and augmentation keys); the seed is data, the program is compiled once.

    Returns:
      A :class:`MethodResult`.
    """
    n = len(splits.train["label"])
    progs = programs(method, num_classes=splits.num_classes, input_shape=splits.input_shape,
                     num_train=n, settings=Settings.from_config(config))
    keys = jax.vmap(lambda k: jax.random.fold_in(jax.random.key(seed), k))(jnp.arange(method.members))
    states, averages = progs.init(keys)
    data = {k: {n_: jnp.asarray(v) for n_, v in d.items()} for k, d in
            (("train", splits.train), ("val", splits.val), ("test", splits.test))}
    evaluate = progs.evaluate

    def evaluated_params(states, averages):
        return averages.average if averages is not None else states.params

    history: dict[str, list] = {k: [] for k in ("epoch", "minibatch_loss", "train_loss", "train_accuracy",
                                                "val_loss", "val_accuracy")}
    snapshots: list[tuple[Any, Any]] = []
    cycle = max(config.num_epochs // method.snapshot_cycles, 1) if method.snapshot_cycles else 0
    diverged = False
    for epoch in range(config.num_epochs):
        states, averages, loss = progs.run_epoch(states, averages, keys, epoch,
                                                 data["train"]["image"], data["train"]["label"])
        params = evaluated_params(states, averages)
        history["epoch"].append(epoch + 1)
        history["minibatch_loss"].append(float(jnp.mean(loss)))
        for split in ("train", "val"):
            split_loss, split_acc = evaluate(params, states.model_state, data[split])
            history[f"{split}_loss"].append(float(split_loss))
            history[f"{split}_accuracy"].append(float(split_acc))
        if not math.isfinite(history["minibatch_loss"][-1]):
            diverged = True
            break
        if cycle and (epoch + 1) % cycle == 0:
            snapshots.append((params, states.model_state))
    if snapshots:  # snapshot ensemble: the members' snapshots, stacked on the member axis
        params = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *(p for p, _ in snapshots))
        model_state = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *(s for _, s in snapshots))
    else:
        params, model_state = evaluated_params(states, averages), states.model_state
    final = {}
    for split in ("train", "val", "test"):
        split_loss, split_acc = evaluate(params, model_state, data[split])
        final[f"{split}_loss"], final[f"{split}_accuracy"] = float(split_loss), float(split_acc)
    final["gap"] = final["train_accuracy"] - final["val_accuracy"]
    num_params = int(sum(np.prod(x.shape[1:]) for x in jax.tree_util.tree_leaves(states.params)))
    return MethodResult(method.name, seed, history, final, num_params, diverged)


def penalty_fn(kind: str, *, l1: float = 0.0, l2: float = 0.0) -> Callable[[Any], jax.Array] | None:
    """``R(params)`` of :mod:`jax231.losses` (biases and norm parameters excluded)."""
    if kind == "l2":
        return functools.partial(losses.l2_penalty, strength=l2)
    if kind == "l1":
        return functools.partial(losses.l1_penalty, strength=l1)
    if kind == "elastic_net":
        return functools.partial(losses.elastic_net_penalty, l1=l1, l2=l2)
    return None
