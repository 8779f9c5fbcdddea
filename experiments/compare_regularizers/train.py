"""compare_regularizers on the training core: K members with :func:`jax231.parallel.run_sweep`.

Regularisers differ in *where* they act; each place is a hook of the core, so this
module holds no training loop:

* the objective: a penalty ``R(w)`` (L2, L1, elastic net) through ``penalty=``;
  dropout, DropConnect, batch norm and stochastic depth live in the model (train mode);
* the data: a random augmentation of every minibatch, run_sweep's on-device
  ``batch_fn`` (key ``fold_in(run_keys(seed).hook, step)``): circular shifts and
  noise of the 1-D signals, or an affine warp (rotation, scale, shear) or
  RandAugment of the images (:data:`AUGMENTATIONS`);
* the update: a max-norm constraint, :func:`jax231.optimizers.max_norm` chained
  after the rule (each unit's incoming weights projected onto ``||w|| <= c``);
* the model: Gaussian noise on the inputs or activations, spatial dropout and
  fractional max pooling are model options (train-mode randomness);
* the parameters that are evaluated: an exponential moving average of the iterates
  (:func:`jax231.optimizers.average_params` chained after the rule: the average
  lives in the optimizer state and is what ``eval_params`` evaluates), snapshots
  at the end of each cosine cycle collected by the evaluation callback (snapshot
  ensembles), or ``K`` independently seeded members trained together (model
  ensembles, ``run_sweep`` over seeds), whose softmax outputs are averaged by one
  ensemble evaluation.

Test-time variants (TTA, MC dropout, averaged pooling regions) train nothing:
a method with a :class:`~experiments.compare_regularizers.evaluation.Variant`
is scored on the members of the method that trains the same way
(:func:`training_key`), see :func:`fit_method` and :func:`score`.

Member ``k`` of seed ``s`` is the run of seed ``s + 1000 k`` (:func:`member_seeds`);
evaluations happen at every epoch end (``eval_every`` = updates per epoch).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jax231 import losses, models, optimizers, parallel, pipelines, training

from experiments import _common as common
from experiments.compare_regularizers import evaluation

AUGMENTATIONS = ("", "shift_noise", "warp", "rand_augment")
"""Minibatch hooks: none, shifts + noise of signals, affine warp or RandAugment of images."""

DATA = ("signals", "images")
"""Which of the config's two datasets a method trains on (``config.dataset`` / ``config.images``)."""


class Method(NamedTuple):
    """One regulariser, as the loop sees it.

    Attributes:
      name: row name in the report.
      model: jax231 model name.
      model_config: keyword arguments of the model factory (``num_classes`` added).
      penalty: ``R(params) -> scalar`` added to the loss, or None.
      augment: the minibatch hook, one of :data:`AUGMENTATIONS` ('' = none).
      average_decay: EMA decay of the evaluated parameters (None: evaluate the iterate).
      members: number of independently seeded members whose softmax is averaged.
      snapshot_cycles: number of cosine cycles with warm restarts (SGDR) whose
        end-of-cycle parameters form a snapshot ensemble (0: constant learning rate).
      as_image: feed ``(N, L, C)`` signals as ``(N, L, 1, C)`` images (2-D models).
      data: the dataset, one of :data:`DATA`.
      max_norm: radius ``c`` of the max-norm constraint chained after the rule (None: off).
      variant: a test-time evaluation of the trained members (None: one inference pass).
    """

    name: str
    model: str
    model_config: Mapping[str, Any]
    penalty: Callable[[Any], jax.Array] | None = None
    augment: str = ""
    average_decay: float | None = None
    members: int = 1
    snapshot_cycles: int = 0
    as_image: bool = False
    data: str = "signals"
    max_norm: float | None = None
    variant: evaluation.Variant | None = None


def training_key(method: Method) -> Method:
    """What the training of ``method`` depends on: the method without its name and variant.

    Two methods with equal keys train the same members, so a test-time variant
    reuses the members of the method it evaluates.
    """
    return method._replace(name="", variant=None)


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
        'val_loss', 'test_loss', 'gap'}``; ``gap = train_accuracy - val_accuracy``;
        Monte-Carlo variants add ``'spread_right', 'spread_wrong'`` (test split).
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


def ensemble_metrics(
    model: models.Model, params: Any, model_state: Any, data: Mapping[str, Any]
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
    """The config values the built model, optimizer and hook depend on (hashable)."""

    optimizer: str
    learning_rate: float
    batch_size: int
    num_epochs: int
    max_shift: int
    noise_std: float
    warp: tuple[float, float, float]
    rand_augment: tuple[int, float]

    @classmethod
    def from_config(cls, config: Any, data: str = "signals") -> "Settings":
        """The settings of ``data``: ``config.images`` holds the image methods' learning rate, batch and epochs."""
        section = config.images if data == "images" else config
        return cls(
            config.optimizer,
            float(section.learning_rate),
            int(section.batch_size),
            int(section.num_epochs),
            int(config.max_shift),
            float(config.noise_std),
            (float(config.warp.rotate), float(config.warp.scale), float(config.warp.shear)),
            (int(config.rand_augment.num_ops), float(config.rand_augment.magnitude)),
        )


class Built(NamedTuple):
    """The objects of one (method, data shape, settings): the keys of training's compile cache.

    Attributes:
      model: the method's model.
      optimizer: its rule, chained with :func:`jax231.optimizers.max_norm` for a max-norm
        constraint and :func:`jax231.optimizers.average_params` for Polyak/EMA.
      batch_fn: the augmentation hook (None without augmentation).
      ensemble: jitted :func:`ensemble_metrics` of ``model``.
    """

    model: models.Model
    optimizer: Any
    batch_fn: Callable | None
    ensemble: Callable


_BUILT: dict[tuple, Built] = {}


def built(method: Method, *, num_classes: int, num_train: int, settings: Settings) -> Built:
    """The method's objects, built once per process so that every seed reuses one compilation."""
    key = (repr(training_key(method)), num_classes, num_train, settings)
    if key not in _BUILT:
        _BUILT[key] = _build(method, num_classes, num_train, settings)
    return _BUILT[key]


def augmentation_hook(kind: str, settings: Settings) -> Callable[[jax.Array, dict], dict] | None:
    """``batch_fn(key, batch) -> batch`` of the augmentation ``kind`` (None for '')."""
    if kind not in AUGMENTATIONS:
        raise ValueError(f"augment: expected one of {list(AUGMENTATIONS)}, got {kind!r}")
    rotate, scale, shear = settings.warp
    num_ops, magnitude = settings.rand_augment
    transforms: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
        "shift_noise": functools.partial(augment_signals, max_shift=settings.max_shift, noise_std=settings.noise_std),
        "warp": functools.partial(
            pipelines.augment_batch, pad_crop=0, flip=False, rotate=rotate, scale=scale, shear=shear
        ),
        "rand_augment": functools.partial(pipelines.rand_augment, num_ops=num_ops, magnitude=magnitude),
    }
    if not kind:
        return None
    transform = transforms[kind]

    def batch_fn(key: jax.Array, batch: dict) -> dict:
        return {"image": transform(key, batch["image"]), "label": batch["label"]}

    return batch_fn


def _build(method: Method, num_classes: int, n: int, settings: Settings) -> Built:
    steps_per_epoch = n // min(settings.batch_size, n)
    learning_rate: Any = settings.learning_rate
    if method.snapshot_cycles:  # SGDR: cosine cycles with warm restarts, one snapshot per cycle
        period = max(settings.num_epochs // method.snapshot_cycles, 1) * steps_per_epoch
        learning_rate = optimizers.schedules.sgdr(settings.learning_rate, first_period=period)
    model = build_model(method, num_classes)
    optimizer = optimizers.get(settings.optimizer, learning_rate=learning_rate)
    if method.max_norm is not None:  # the projection acts on the rule's step, so it comes last
        optimizer = optimizers.chain(optimizer, optimizers.max_norm(method.max_norm))
    if method.average_decay is not None:
        optimizer = optimizers.chain(optimizer, optimizers.average_params(optimizers.ema(method.average_decay)))
    batch_fn = augmentation_hook(method.augment, settings)
    return Built(model, optimizer, batch_fn, jax.jit(functools.partial(ensemble_metrics, model)))


def member_seeds(seed: int, members: int) -> np.ndarray:
    """The run seeds of the members of ``seed``: ``seed + 1000 k`` (member 0 is the run of ``seed``)."""
    return np.asarray([seed + 1000 * k for k in range(members)], np.int32)


class Trained(NamedTuple):
    """The members of one training run of a method (what its test-time variants evaluate).

    Attributes:
      params: evaluated parameters of the members (or snapshots) stacked on axis 0.
      model_state: their model states, stacked the same way.
      history: per-epoch rows, see :class:`MethodResult`.
      diverged: a non-finite minibatch loss was seen.
      num_params: parameters of one member.
    """

    params: Any
    model_state: Any
    history: dict[str, list]
    diverged: bool
    num_params: int


def _device_splits(splits: common.Splits) -> dict[str, dict[str, jax.Array]]:
    return {
        name: {k: jnp.asarray(v) for k, v in arrays.items()}
        for name, arrays in (("train", splits.train), ("val", splits.val), ("test", splits.test))
    }


def fit_method(method: Method, *, splits: common.Splits, config: Any, seed: int) -> Trained:
    """Trains ``method.members`` members of ``method`` (its variant is ignored) with ``run_sweep``.

    Args:
      method: the regulariser.
      splits: train / val / test arrays of ``method.data``.
      config: the experiment's config (:meth:`Settings.from_config` of ``method.data``).
      seed: member ``k`` is the run of seed ``seed + 1000 k`` (initialisation, data
        order, dropout and augmentation keys of ``jax231.training.run_keys``); the
        seed is data, the program is compiled once.

    Returns:
      A :class:`Trained`.
    """
    settings = Settings.from_config(config, method.data)
    n = len(splits.train["label"])
    objs = built(method, num_classes=splits.num_classes, num_train=n, settings=settings)
    batch_size = min(settings.batch_size, n)
    steps_per_epoch = n // batch_size
    data = _device_splits(splits)
    cycle = max(settings.num_epochs // method.snapshot_cycles, 1) if method.snapshot_cycles else 0
    snapshots: list[tuple[Any, Any]] = []

    def eval_fn(step, states):
        """The ensemble evaluation of every epoch; a snapshot at each cycle end."""
        params = training.eval_view(objs.optimizer, states).params
        out = {}
        for split in ("train", "val"):
            out[f"ens_{split}_loss"], out[f"ens_{split}_accuracy"] = objs.ensemble(
                params, states.model_state, data[split]
            )
        if cycle and (step // steps_per_epoch) % cycle == 0:
            snapshots.append((params, states.model_state))
        return out

    result = parallel.run_sweep(
        objs.model,
        objs.optimizer,
        train=splits.train,
        seeds=member_seeds(seed, method.members),
        num_steps=settings.num_epochs * steps_per_epoch,
        batch_size=batch_size,
        eval_every=steps_per_epoch,
        penalty=method.penalty,
        batch_fn=objs.batch_fn,
        eval_fn=eval_fn,
        explosion_factor=None,
    )
    history, diverged = _history(result)
    if snapshots:  # snapshot ensemble: the members' snapshots, stacked on the member axis
        params = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *(p for p, _ in snapshots))
        model_state = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *(s for _, s in snapshots))
    else:
        params, model_state = training.eval_view(objs.optimizer, result.state).params, result.state.model_state
    num_params = int(sum(np.prod(x.shape[1:]) for x in jax.tree_util.tree_leaves(result.state.params)))
    return Trained(params, model_state, history, diverged, num_params)


def score(method: Method, trained: Trained, *, splits: common.Splits, config: Any, seed: int) -> MethodResult:
    """Final metrics of ``trained`` on every split, evaluated the way ``method`` says.

    Without a variant: the averaged softmax of the members (:func:`ensemble_metrics`;
    one member: its inference-mode prediction). With one: :func:`evaluation.test_time_metrics`
    (passes keyed by :func:`evaluation.key_of` ``(seed)``).
    """
    objs = built(
        method,
        num_classes=splits.num_classes,
        num_train=len(splits.train["label"]),
        settings=Settings.from_config(config, method.data),
    )
    data = _device_splits(splits)
    final: dict[str, float] = {}
    for split in ("train", "val", "test"):
        if method.variant is None:
            loss, accuracy = objs.ensemble(trained.params, trained.model_state, data[split])
            metrics = {"loss": loss, "accuracy": accuracy}
        else:
            metrics = evaluation.compiled(objs.model, method.variant)(
                trained.params, trained.model_state, data[split], evaluation.key_of(seed)
            )
        final[f"{split}_loss"], final[f"{split}_accuracy"] = float(metrics["loss"]), float(metrics["accuracy"])
        if split == "test" and method.variant is not None and method.variant.kind != "tta":
            final["spread_right"], final["spread_wrong"] = (
                float(metrics["spread_right"]),
                float(metrics["spread_wrong"]),
            )
    final["gap"] = final["train_accuracy"] - final["val_accuracy"]
    return MethodResult(method.name, seed, trained.history, final, trained.num_params, trained.diverged)


def train_method(method: Method, *, splits: common.Splits, config: Any, seed: int) -> MethodResult:
    """:func:`fit_method` then :func:`score`: trains ``method`` and reports its final metrics."""
    return score(
        method, fit_method(method, splits=splits, config=config, seed=seed), splits=splits, config=config, seed=seed
    )


def _history(result: Any) -> tuple[dict[str, list], bool]:
    """Per-epoch rows (up to the first epoch with a non-finite minibatch loss) and the divergence flag."""
    minibatch = np.mean(result.history["train_loss"], axis=0)
    bad = np.flatnonzero(~np.isfinite(minibatch))  # a frozen member leaves NaN rows
    rows = len(minibatch) if not len(bad) else int(bad[0]) + 1
    history = {"epoch": list(range(1, rows + 1)), "minibatch_loss": [float(v) for v in minibatch[:rows]]}
    for split in ("train", "val"):
        for metric in ("loss", "accuracy"):
            history[f"{split}_{metric}"] = [float(v) for v in result.history[f"ens_{split}_{metric}"][:rows]]
    return history, bool(np.any(result.diverged))


def penalty_fn(kind: str, *, l1: float = 0.0, l2: float = 0.0) -> Callable[[Any], jax.Array] | None:
    """``R(params)`` of :mod:`jax231.losses` (biases and norm parameters excluded)."""
    if kind == "l2":
        return functools.partial(losses.l2_penalty, strength=l2)
    if kind == "l1":
        return functools.partial(losses.l1_penalty, strength=l1)
    if kind == "elastic_net":
        return functools.partial(losses.elastic_net_penalty, l1=l1, l2=l2)
    return None
