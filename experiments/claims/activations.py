"""Claims about activation functions (CS231n notes, "Neural Networks Part 1", activations)."""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from experiments.claims import base
from jax231 import losses, models
from jax231 import optimizers as jopt


def relu_vs_tanh_holds(numbers: dict, cfg: Any) -> bool:
    """ReLU reaches the target first: tanh and sigmoid need more steps (``factor`` > 1)."""
    del cfg
    return numbers["factor"]["tanh"] > 1 and numbers["factor"]["sigmoid"] > 1


def relu_vs_tanh(cfg: Any, workdir: pathlib.Path) -> base.ClaimResult:
    """Steps of SGD+momentum to a training-accuracy target, per activation (same net, init, rate)."""
    data = base.splits(cfg.dataset, cfg.val_size)
    steps, curves = {}, {}
    inits = {"relu": cfg.relu_init, "tanh": cfg.tanh_init, "sigmoid": cfg.tanh_init}
    for act, init in inits.items():
        model = models.mlp(
            hidden_sizes=tuple(cfg.hidden_sizes), num_classes=data.num_classes, activation=act, init=init
        )
        result = base.fit(model, jopt.momentum(cfg.learning_rate, momentum=0.9), data, cfg)
        steps[act] = base.first_step_at(result.history, "train_accuracy", cfg.target_accuracy)
        curves[act] = (np.asarray(result.history["step"]), np.asarray(result.history["train_loss"]))
    factor = {act: steps[act] / steps["relu"] for act in ("tanh", "sigmoid")}
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for act, (x, y) in curves.items():
        ax.plot(x, y, label=f"{act} ({steps[act]:.0f} steps to {cfg.target_accuracy:.0%})")
    ax.set(
        xlabel="step",
        ylabel="training loss",
        yscale="log",
        title=f"MLP {tuple(cfg.hidden_sizes)} on {cfg.dataset}, SGD momentum lr {cfg.learning_rate}",
    )
    ax.legend(fontsize=8)
    numbers = {"steps": steps, "factor": factor}
    return base.ClaimResult(
        "relu_vs_tanh",
        "ReLU networks converge several times faster than tanh/sigmoid ones (Krizhevsky: 6x).",
        f"steps to {cfg.target_accuracy:.0%} train accuracy: relu {steps['relu']:.0f}, tanh {steps['tanh']:.0f} "
        f"({factor['tanh']:.1f}x), sigmoid {steps['sigmoid']:.0f} ({factor['sigmoid']:.1f}x)",
        relu_vs_tanh_holds(numbers, cfg),
        base.save_figure(fig, workdir, "relu_vs_tanh"),
        numbers,
    )


def _per_example_weight_grads(model: models.Model, params: dict, x: jax.Array, y: jax.Array) -> dict:
    def loss(p, xi, yi):
        logits, _ = model.apply(p, {}, xi[None], train=False)
        return losses.softmax_cross_entropy(logits=logits, labels=yi[None])[0]

    return jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))(params, x, y)


def _same_sign_fraction(w_grads: jax.Array) -> float:
    """Fraction of (example, unit) pairs whose incoming weight gradients all share one sign."""
    g = w_grads  # (N, inputs, units): dL/dW_ij = x_i delta_j
    nonzero = jnp.any(g != 0, axis=1)
    same = jnp.all(g >= 0, axis=1) | jnp.all(g <= 0, axis=1)
    return float(jnp.sum(same & nonzero) / jnp.maximum(jnp.sum(nonzero), 1))


def sigmoid_saturation_holds(numbers: dict, cfg: Any) -> bool:
    """Large weights saturate more units, whose gradient is < 0.1x the others'; sigmoid inputs give
    same-sign gradient rows (> 99%), tanh ones do not (< 50%)."""
    sig_x, sig_l = numbers["sigmoid, xavier"], numbers[f"sigmoid, std {cfg.large_std}"]
    return (
        sig_l["saturated"] > sig_x["saturated"]
        and sig_l["grad_ratio"] < 0.1
        and sig_x["same_sign_layer2"] > 0.99
        and numbers["tanh, xavier"]["same_sign_layer2"] < 0.5
    )


def sigmoid_saturation(cfg: Any, workdir: pathlib.Path) -> base.ClaimResult:
    """Saturated sigmoids pass back ~0 gradient; sigmoid outputs (> 0) give same-sign weight gradients."""
    data = base.splits(cfg.dataset, cfg.val_size)
    x, y = jnp.asarray(data.train["image"][: cfg.batch]), jnp.asarray(data.train["label"][: cfg.batch])
    key = jax.random.key(cfg.seed)
    measured: dict[str, dict[str, float]] = {}
    for act in ("sigmoid", "tanh"):
        model = models.mlp(
            hidden_sizes=tuple(cfg.hidden_sizes), num_classes=data.num_classes, activation=act, init="xavier"
        )
        xavier, _ = model.init(key, data.input_shape)
        large = base.redraw_weights(xavier, cfg.large_std, jax.random.fold_in(key, 7))
        for init_name, params in (("xavier", xavier), (f"std {cfg.large_std}", large)):
            hs = base.hidden_activations(params, x, act)
            local = [h * (1 - h) if act == "sigmoid" else 1 - h**2 for h in hs]  # f'(a) from f(a)
            grads = _per_example_weight_grads(model, params, x, y)
            # dL/da_j of every example and unit is the per-example gradient of the bias b_j.
            upstream = jnp.concatenate([jnp.abs(grads[f"dense_{i}"]["b"]) for i in range(len(hs))], axis=1)
            saturated = jnp.concatenate(local, axis=1) < cfg.saturated_slope
            ratio = (jnp.sum(upstream * saturated) / jnp.maximum(jnp.sum(saturated), 1)) / (
                jnp.sum(upstream * ~saturated) / jnp.maximum(jnp.sum(~saturated), 1)
            )
            measured[f"{act}, {init_name}"] = {
                "saturated": float(jnp.mean(saturated)),
                "grad_ratio": float(ratio) if bool(jnp.any(saturated)) else float("nan"),
                "same_sign_layer2": _same_sign_fraction(grads["dense_1"]["w"]),
            }
    sig_x, sig_l = measured["sigmoid, xavier"], measured[f"sigmoid, std {cfg.large_std}"]
    tanh_x = measured["tanh, xavier"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, key_name, label in zip(
        axes,
        ("saturated", "grad_ratio", "same_sign_layer2"),
        (
            f"fraction of units with f' < {cfg.saturated_slope}",
            "mean |dL/da|: saturated / other units",
            "same-sign weight-gradient rows (layer 2)",
        ),
    ):
        ax.bar(list(measured), [np.nan_to_num(m[key_name]) for m in measured.values()], color="tab:orange")
        ax.set_title(label, fontsize=9)
        ax.tick_params(axis="x", labelrotation=25, labelsize=7)
    return base.ClaimResult(
        "sigmoid_saturation",
        "Saturated sigmoids kill gradients; non-zero-centred (all positive) inputs give same-sign gradients.",
        f"sigmoid net, std {cfg.large_std} vs xavier: saturated units {sig_l['saturated']:.0%} vs "
        f"{sig_x['saturated']:.0%}; |dL/da| on saturated units {sig_l['grad_ratio']:.1e}x that of the others; "
        f"same-sign gradient rows after sigmoid {sig_x['same_sign_layer2']:.0%}, "
        f"after tanh {tanh_x['same_sign_layer2']:.0%}",
        sigmoid_saturation_holds(measured, cfg),
        base.save_figure(fig, workdir, "sigmoid_saturation"),
        measured,
    )


def _dead_fraction(params: dict, x: jax.Array) -> float:
    """Fraction of hidden ReLU units that are never active on any example of ``x``."""
    hs = base.hidden_activations(params, x, "relu")
    alive = jnp.concatenate([jnp.any(h > 0, axis=0) for h in hs])
    return float(1 - jnp.mean(alive))


def dead_relu_holds(numbers: dict, cfg: Any) -> bool:
    """The large rate leaves at least 5 points more dead units than the good one."""
    return numbers[f"lr {cfg.large_lr}"] > numbers[f"lr {cfg.good_lr}"] + 0.05


def dead_relu(cfg: Any, workdir: pathlib.Path) -> base.ClaimResult:
    """Fraction of ReLU units never active on the training set, after SGD at a good vs a too-large rate."""
    data = base.splits(cfg.dataset, cfg.val_size)
    x = jnp.asarray(data.train["image"])
    model = models.mlp(hidden_sizes=tuple(cfg.hidden_sizes), num_classes=data.num_classes, init="he")
    params0, _ = model.init(jax.random.key(cfg.seed), data.input_shape)
    dead = {"at init": _dead_fraction(params0, x)}
    for lr in (cfg.good_lr, cfg.large_lr):
        result = base.fit(model, jopt.sgd(lr), data, cfg)
        dead[f"lr {lr}"] = _dead_fraction(result.state.params, x)
    good, large = dead[f"lr {cfg.good_lr}"], dead[f"lr {cfg.large_lr}"]
    figure = base.bar_figure(
        workdir,
        "dead_relu",
        dead,
        ylabel="fraction of dead units",
        title=f"ReLU MLP {tuple(cfg.hidden_sizes)}, SGD, {cfg.num_steps} steps",
    )
    return base.ClaimResult(
        "dead_relu",
        "A too-large learning rate leaves many ReLU units dead (never active again).",
        f"dead units after training: lr {cfg.good_lr}: {good:.0%}, lr {cfg.large_lr}: {large:.0%} "
        f"(init: {dead['at init']:.0%})",
        dead_relu_holds(dead, cfg),
        figure,
        dead,
    )
