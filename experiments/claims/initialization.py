"""Claims about initialisation and batch norm (CS231n notes, "Neural Networks Part 2")."""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from experiments.claims import base
from jax231 import models, parallel
from jax231 import optimizers as jopt
from jax231.models import layers


def _unit_spread(params: dict) -> float:
    """Largest ``||W[:, j] - W[:, 0]|| / rms column norm`` over the hidden layers: 0 = all units copies."""
    spreads = []
    i = 0
    while f"dense_{i}" in params:
        w = params[f"dense_{i}"]["w"]
        scale = jnp.linalg.norm(w) / np.sqrt(w.shape[1]) + 1e-12
        spreads.append(jnp.max(jnp.linalg.norm(w - w[:, :1], axis=0)) / scale)
        i += 1
    return float(max(spreads))


def constant_init_symmetry_holds(numbers: dict, cfg: Any) -> bool:
    """Zero and constant inits stay symmetric (spread < 1e-4); the random init does not (> 0.1)."""
    spread = numbers["spread"]
    return max(spread["zero"], spread[f"constant {cfg.constant}"]) < 1e-4 and spread["random (He)"] > 0.1


def constant_init_symmetry(cfg: Any, workdir: pathlib.Path) -> base.ClaimResult:
    """Trains the same MLP from zero, constant and random (He) weights; are the hidden units still copies?"""
    data = base.splits(cfg.dataset, cfg.val_size)
    mlp = models.mlp(hidden_sizes=tuple(cfg.hidden_sizes), num_classes=data.num_classes, init="he")
    inits = {
        "zero": base.with_params(mlp, lambda rng, p: jax.tree_util.tree_map(jnp.zeros_like, p)),
        f"constant {cfg.constant}": base.with_params(
            mlp, lambda rng, p: jax.tree_util.tree_map(lambda x: jnp.full_like(x, cfg.constant), p)
        ),
        "random (He)": mlp,
    }
    spread, acc = {}, {}
    for name, model in inits.items():
        result = base.fit(model, jopt.momentum(cfg.learning_rate, momentum=0.9), data, cfg)
        spread[name] = _unit_spread(result.state.params)
        acc[name] = result.history["val_accuracy"][-1]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    axes[0].bar(list(spread), [max(v, 1e-12) for v in spread.values()], color="tab:green")
    axes[0].set(yscale="log", title="hidden units' spread after training (0 = identical)")
    axes[1].bar(list(acc), list(acc.values()), color="tab:blue")
    axes[1].set(title="validation accuracy", ylim=(0, 1))
    for ax in axes:
        ax.tick_params(axis="x", labelsize=8)
    numbers = {"spread": spread, "val_accuracy": acc}
    return base.ClaimResult(
        "constant_init_symmetry",
        "Zero or constant initialisation leaves every hidden unit a copy of the others.",
        f"unit spread after {cfg.num_steps} steps: zero {spread['zero']:.1e}, constant "
        f"{spread[f'constant {cfg.constant}']:.1e}, random {spread['random (He)']:.2f}; val accuracy "
        + ", ".join(f"{k} {v:.2f}" for k, v in acc.items()),
        constant_init_symmetry_holds(numbers, cfg),
        base.save_figure(fig, workdir, "constant_init_symmetry"),
        numbers,
    )


def init_scale_holds(numbers: dict, cfg: Any) -> bool:
    """Small weights: last/first activation std < 1e-3; large: > 50% saturated; Xavier keeps > 0.1."""
    small, large, xavier = numbers[f"std {min(cfg.stds)}"], numbers[f"std {max(cfg.stds)}"], numbers["xavier"]
    return (
        small["std"][-1] / small["std"][0] < 1e-3
        and large["saturated"][-1] > 0.5
        and xavier["std"][-1] / xavier["std"][0] > 0.1
    )


def init_scale(cfg: Any, workdir: pathlib.Path) -> base.ClaimResult:
    """The notes' figure: activation statistics per layer of a deep tanh net, by weight scale."""
    key = jax.random.key(cfg.seed)
    x = jax.random.normal(key, (cfg.num_examples, cfg.width))
    model = models.mlp(hidden_sizes=(cfg.width,) * cfg.num_layers, num_classes=10, activation="tanh", init="xavier")
    xavier, _ = model.init(jax.random.fold_in(key, 1), (cfg.width,))
    inits = {f"std {s}": base.redraw_weights(xavier, s, jax.random.fold_in(key, 2)) for s in cfg.stds}
    inits["xavier"] = xavier
    stats = {}
    for name, params in inits.items():
        hs = base.hidden_activations(params, x, "tanh")
        stats[name] = {
            "std": [float(jnp.std(h)) for h in hs],
            "saturated": [float(jnp.mean(jnp.abs(h) > 0.99)) for h in hs],
            "last": np.asarray(hs[-1]).ravel(),
        }
    fig, axes = plt.subplots(1, 1 + len(inits), figsize=(4 * (1 + len(inits)), 3.4))
    for name, st in stats.items():
        axes[0].plot(range(1, cfg.num_layers + 1), st["std"], marker="o", label=name)
    axes[0].set(yscale="log", xlabel="layer", ylabel="activation std", title=f"tanh net {cfg.num_layers} x {cfg.width}")
    axes[0].legend(fontsize=8)
    for ax, (name, st) in zip(axes[1:], stats.items()):
        ax.hist(st["last"], bins=50, color="tab:purple")
        ax.set_title(f"{name}: last layer", fontsize=9)
    small, large = stats[f"std {min(cfg.stds)}"], stats[f"std {max(cfg.stds)}"]
    vanish = small["std"][-1] / small["std"][0]
    saturated = large["saturated"][-1]
    xavier_ratio = stats["xavier"]["std"][-1] / stats["xavier"]["std"][0]
    numbers = {k: {"std": v["std"], "saturated": v["saturated"]} for k, v in stats.items()}
    return base.ClaimResult(
        "init_scale",
        "In a deep net, std-0.01 weights make activations vanish and large weights saturate tanh.",
        f"last/first layer activation std: std {min(cfg.stds)} {vanish:.1e}, xavier {xavier_ratio:.2f}; "
        f"std {max(cfg.stds)}: {saturated:.0%} of last-layer units saturated (|h| > 0.99)",
        init_scale_holds(numbers, cfg),
        base.save_figure(fig, workdir, "init_scale"),
        numbers,
    )


def batch_norm_holds(numbers: dict, cfg: Any) -> bool:
    """At the largest rate and at the std-0.01 init, batch norm is > 5 points more accurate."""
    del cfg
    acc, small = numbers["val_accuracy_by_lr"], numbers["small_init"]
    return acc["batch norm"][-1] > acc["plain"][-1] + 0.05 and small["batch norm"] > small["plain"] + 0.05


def batch_norm(cfg: Any, workdir: pathlib.Path) -> base.ClaimResult:
    """Validation accuracy vs learning rate with and without batch norm (one sweep each), and a 0.01 init."""
    data = base.splits(cfg.dataset, cfg.val_size)
    lrs = jnp.asarray(cfg.learning_rates, jnp.float32)
    acc, small = {}, {}
    for norm in (None, "batch"):
        label = "batch norm" if norm else "plain"
        model = models.mlp(hidden_sizes=tuple(cfg.hidden_sizes), num_classes=data.num_classes, norm=norm)
        sweep = parallel.run_sweep(
            model,
            "sgd",
            train=data.train,
            val=data.val,
            seeds=jnp.full(lrs.shape, cfg.seed),
            hyperparams={"learning_rate": lrs},
            num_steps=cfg.num_steps,
            batch_size=cfg.batch_size,
        )
        acc[label] = np.nan_to_num(np.asarray(sweep.history["val_accuracy"])[:, -1], nan=0.0)
        small_model = models.mlp(
            hidden_sizes=tuple(cfg.hidden_sizes), num_classes=data.num_classes, norm=norm, init="small"
        )
        result = base.fit(small_model, jopt.sgd(cfg.small_init_lr), data, cfg)
        small[label] = float(np.nan_to_num(result.history["val_accuracy"][-1], nan=0.0))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for label, values in acc.items():
        axes[0].plot(np.asarray(lrs), values, marker="o", label=label)
    axes[0].set(
        xscale="log",
        xlabel="SGD learning rate",
        ylabel="val accuracy",
        ylim=(0, 1),
        title=f"MLP {tuple(cfg.hidden_sizes)}, He init, {cfg.num_steps} steps",
    )
    axes[0].legend()
    axes[1].bar(list(small), list(small.values()), color="tab:red")
    axes[1].set(ylim=(0, 1), title=f"std-0.01 init, lr {cfg.small_init_lr}: val accuracy")
    numbers = {"val_accuracy_by_lr": {k: v.tolist() for k, v in acc.items()}, "small_init": small}
    return base.ClaimResult(
        "batch_norm",
        "Batch norm allows higher learning rates and makes training robust to the initialisation.",
        "val accuracy by lr "
        + ", ".join(f"{lr:g}: {a:.2f}/{b:.2f}" for lr, a, b in zip(cfg.learning_rates, acc["plain"], acc["batch norm"]))
        + f" (plain/BN); std-0.01 init: plain {small['plain']:.2f}, BN {small['batch norm']:.2f}",
        batch_norm_holds(numbers, cfg),
        base.save_figure(fig, workdir, "batch_norm"),
        numbers,
    )


def batch_norm_identity_holds(numbers: dict, cfg: Any) -> bool:
    """The relative error is float32 round-off (< 1e-5)."""
    del cfg
    return numbers["relative_error"] < 1e-5


def batch_norm_identity(cfg: Any, workdir: pathlib.Path) -> base.ClaimResult:
    """``gamma = sqrt(var + eps)``, ``beta = mean`` makes batch norm (train mode) return its input."""
    key = jax.random.key(cfg.seed)
    x = 3.0 + 2.5 * jax.random.normal(key, (cfg.num_examples, cfg.features))
    mean, var = jnp.mean(x, 0), jnp.var(x, 0)
    eps = 1e-5
    y, _, _ = layers.batch_norm(
        x, jnp.sqrt(var + eps), mean, jnp.zeros_like(mean), jnp.ones_like(var), train=True, eps=eps
    )
    error = float(jnp.max(jnp.abs(y - x)) / jnp.max(jnp.abs(x)))
    fig, ax = plt.subplots(figsize=(4.5, 3.6))
    ax.scatter(np.asarray(x[:, 0]), np.asarray(y[:, 0]), s=6)
    ax.set(xlabel="x (feature 0)", ylabel="batch_norm(x)", title=f"gamma=sigma, beta=mu: max rel error {error:.1e}")
    return base.ClaimResult(
        "batch_norm_identity",
        "With gamma = sigma and beta = mu, batch norm recovers the identity.",
        f"max |BN(x) - x| / max |x| = {error:.1e} (float32)",
        batch_norm_identity_holds({"relative_error": error}, cfg),
        base.save_figure(fig, workdir, "batch_norm_identity"),
        {"relative_error": error},
    )
