"""What every claim experiment shares: its result type, the data and small measurements.

A claim experiment is a function ``run(cfg, workdir) -> ClaimResult``: ``cfg``
is its sub-config (``config.<claim name>``, carrying its own ``seed``), and it
writes one PNG under ``workdir``. The measurement is a number or two from
jax231's public API; the verdict is the direction the notes state, a separate
function ``<claim>_holds(numbers, cfg)`` of the measured numbers (so that it can
be checked on numbers that should and should not pass).
"""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from experiments import _common as common
from jax231 import models, training
from jax231.models import layers


class ClaimResult(NamedTuple):
    """The outcome of one claim experiment.

    Attributes:
      name: the claim's CLI name (``--config.claims=<name>``).
      claim: the notes' statement, in one sentence.
      measurement: what was measured, with the figures, in one line.
      holds: whether the effect went the stated way here.
      figure: file name of the PNG under the workdir.
      numbers: the measured values by name (for JSON and tests).
    """

    name: str
    claim: str
    measurement: str
    holds: bool
    figure: str
    numbers: dict[str, Any]


ClaimFn = Callable[[Any, pathlib.Path], ClaimResult]

VerdictFn = Callable[[dict, Any], bool]
"""``holds(numbers, cfg)``: the direction the notes state, from a claim's ``numbers`` and sub-config."""


def verdict(holds: bool) -> str:
    """``'holds'`` or ``'does not hold here'``."""
    return "holds" if holds else "does not hold here"


@functools.lru_cache(maxsize=8)
def splits(name: str, val_size: int, train_size: int = 0) -> common.Splits:
    """The dataset's splits (cached: several claims share digits / MNIST-1D)."""
    return common.load_splits(name, val_size=val_size, train_size=train_size or None)


def fit(model: models.Model, optimizer: Any, data: common.Splits, cfg: Any) -> training.FitResult:
    """``training.fit`` on ``data``'s train and val splits with the claim's ``num_steps``,
    ``batch_size``, ``eval_every`` and ``seed``; no initial-loss check and no explosion guard
    (a claim may measure a run that diverges)."""
    return training.fit(
        model,
        optimizer,
        train=data.train,
        val=data.val,
        num_steps=cfg.num_steps,
        batch_size=cfg.batch_size,
        eval_every=cfg.eval_every,
        seed=cfg.seed,
        explosion_factor=None,
        check_initial_loss=False,
    )


def evaluate(model: models.Model, state: training.TrainState, data: dict, *, loss: Any = "softmax") -> dict:
    """Inference-mode mean loss and accuracy of a trained state on ``data``."""
    return training.evaluate(_eval_step(model, loss), state, data)


@functools.lru_cache(maxsize=64)
def _eval_step(model: models.Model, loss: Any) -> Callable:
    return training.make_eval_step(model, loss=loss)


def hidden_activations(params: dict, x: jax.Array, activation: str) -> list[jax.Array]:
    """The hidden activations ``h_i = f(h_{i-1} W_i + b_i)`` of an :func:`jax231.models.mlp` (no norm)."""
    act = layers.get_activation(activation)
    h = layers.flatten(x)
    out = []
    i = 0
    while f"dense_{i}" in params:
        h = act(layers.affine(h, params[f"dense_{i}"]["w"], params[f"dense_{i}"]["b"]))
        out.append(h)
        i += 1
    return out


def save_figure(fig: Any, workdir: pathlib.Path, name: str) -> str:
    """Saves ``fig`` as ``<name>.png`` under ``workdir``; returns the file name."""
    fig.tight_layout()
    fig.savefig(workdir / f"{name}.png", dpi=110)
    plt.close(fig)
    return f"{name}.png"


def bar_figure(
    workdir: pathlib.Path, name: str, values: dict[str, float], *, ylabel: str, title: str, logy: bool = False
) -> str:
    """One bar per entry of ``values``; returns the PNG's file name."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.bar(list(values), [float(v) for v in values.values()], color="tab:blue")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if logy:
        ax.set_yscale("log")
    ax.tick_params(axis="x", labelrotation=20)
    return save_figure(fig, workdir, name)


def first_step_at(history: dict, key: str, target: float) -> float:
    """The first evaluated step where ``history[key] >= target`` (``inf`` if never)."""
    for step, value in zip(history["step"], history[key]):
        if value >= target:
            return float(step)
    return float("inf")


def redraw_weights(params: dict, std: float, key: jax.Array) -> dict:
    """``params`` with every weight matrix ``'w'`` redrawn as ``std * N(0, 1)`` (biases kept)."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    keys = jax.random.split(key, len(leaves))
    out = [
        std * jax.random.normal(k, x.shape, x.dtype) if jax.tree_util.keystr(p).endswith("['w']") else x
        for (p, x), k in zip(leaves, keys)
    ]
    return jax.tree_util.tree_unflatten(treedef, out)


def with_params(model: models.Model, make: Callable[[jax.Array, dict], dict]) -> models.Model:
    """``model`` whose ``init`` passes its parameters through ``make(rng, params)`` (e.g. a constant init)."""

    def init(rng: jax.Array, input_shape: tuple[int, ...]) -> tuple[dict, dict]:
        params, state = model.init(rng, input_shape)
        return make(jax.random.fold_in(rng, 1), params), state

    return models.Model(init, model.apply)
