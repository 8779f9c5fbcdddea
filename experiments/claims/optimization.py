"""Claims about optimisation and search (CS231n notes, "Neural Networks Part 3", and lecture 7)."""

from __future__ import annotations

import functools
import math
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from experiments.claims import base
from experiments.compare_optimizers.trajectories import trajectory
from jax231 import models, parallel, training
from jax231 import optimizers as jopt


def random_vs_grid_holds(numbers: dict, cfg: Any) -> bool:
    """The mean best accuracy of the random searches is at least the grid's best."""
    del cfg
    return float(np.mean(numbers["random_best"])) >= numbers["grid_best"]


def random_vs_grid(cfg: Any, workdir: pathlib.Path) -> base.ClaimResult:
    """Best val accuracy of a 3x3 grid vs ``repeats`` random searches of 9 trials (lr matters, decay does not)."""
    data = base.splits(cfg.dataset, cfg.val_size)
    side = math.isqrt(cfg.trials)
    lo, hi = np.log10(cfg.lr_range[0]), np.log10(cfg.lr_range[1])
    grid_lr, grid_wd = np.meshgrid(np.logspace(lo, hi, side), np.linspace(*cfg.unimportant_range, side))
    rng = np.random.RandomState(cfg.seed)
    rand_lr = 10 ** rng.uniform(lo, hi, (cfg.repeats, cfg.trials))
    rand_wd = rng.uniform(*cfg.unimportant_range, (cfg.repeats, cfg.trials))
    lrs = np.concatenate([grid_lr.ravel(), rand_lr.ravel()])
    wds = np.concatenate([grid_wd.ravel(), rand_wd.ravel()])
    model = models.mlp(hidden_sizes=tuple(cfg.hidden_sizes), num_classes=data.num_classes)
    sweep = parallel.run_sweep(
        model,
        jopt.adamw(1e-3),
        train=data.train,
        val=data.val,
        seeds=jnp.full(lrs.shape, cfg.seed),
        num_steps=cfg.num_steps,
        batch_size=cfg.batch_size,
        hyperparams={"learning_rate": jnp.asarray(lrs, jnp.float32), "weight_decay": jnp.asarray(wds, jnp.float32)},
    )
    acc = np.nan_to_num(np.asarray(sweep.history["val_accuracy"])[:, -1], nan=0.0)
    n_grid = side * side
    grid_best = float(acc[:n_grid].max())
    random_best = acc[n_grid:].reshape(cfg.repeats, cfg.trials).max(axis=1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    axes[0].scatter(lrs[n_grid:], acc[n_grid:], s=12, label="random trials")
    axes[0].scatter(lrs[:n_grid], acc[:n_grid], s=40, marker="x", color="k", label="grid trials")
    axes[0].set(xscale="log", xlabel="learning rate (matters)", ylabel="val accuracy")
    axes[0].legend(fontsize=8)
    axes[1].scatter(wds[n_grid:], acc[n_grid:], s=12)
    axes[1].scatter(wds[:n_grid], acc[:n_grid], s=40, marker="x", color="k")
    axes[1].set(xlabel="weight decay (does not matter)", ylabel="val accuracy")
    wins = int(np.sum(random_best >= grid_best))
    numbers = {"grid_best": grid_best, "random_best": random_best.tolist()}
    return base.ClaimResult(
        "random_vs_grid",
        "With the same budget, random search beats grid search when few hyperparameters matter.",
        f"best val accuracy of {n_grid} trials: grid {grid_best:.3f} ({side} distinct learning rates); random "
        f"{random_best.mean():.3f} mean over {cfg.repeats} searches ({cfg.trials} distinct rates), "
        f">= grid in {wins}/{cfg.repeats}",
        random_vs_grid_holds(numbers, cfg),
        base.save_figure(fig, workdir, "random_vs_grid"),
        numbers,
    )


def _quadratic(xy: jax.Array, condition_number: float) -> jax.Array:
    return 0.5 * (xy[0] ** 2 + condition_number * xy[1] ** 2)


def sgd_zigzag_holds(numbers: dict, cfg: Any) -> bool:
    """SGD flips the steep coordinate's sign at > 90% of its steps; momentum gets below 1e-3 sooner."""
    reach = numbers["steps_to_1e-3"]
    return numbers["flips"]["sgd"] > 0.9 and reach[f"momentum {cfg.momentum}"] < reach["sgd"]


def sgd_zigzag(cfg: Any, workdir: pathlib.Path) -> base.ClaimResult:
    """Paths of SGD and momentum on ``0.5 (x^2 + k y^2)``: sign flips of y and steps to f < 1e-3."""
    fn = functools.partial(_quadratic, condition_number=cfg.condition_number)
    paths = {
        "sgd": trajectory(jopt.sgd(cfg.learning_rate), fn, cfg.start, num_steps=cfg.num_steps),
        f"momentum {cfg.momentum}": trajectory(
            jopt.momentum(cfg.learning_rate / 10, momentum=cfg.momentum), fn, cfg.start, num_steps=cfg.num_steps
        ),
    }
    flips, reach = {}, {}
    for name, path in paths.items():
        path = np.asarray(path)
        flips[name] = float(np.mean(np.sign(path[1:, 1]) != np.sign(path[:-1, 1])))
        values = np.asarray(jax.vmap(fn)(jnp.asarray(path)))
        below = np.nonzero(values < 1e-3)[0]
        reach[name] = float(below[0]) if below.size else float("inf")
    fig, ax = plt.subplots(figsize=(6, 3.6))
    xs, ys = np.meshgrid(np.linspace(-5, 1, 200), np.linspace(-2, 2, 200))
    ax.contour(xs, ys, 0.5 * (xs**2 + cfg.condition_number * ys**2), levels=20, linewidths=0.5, colors="0.7")
    for name, path in paths.items():
        ax.plot(np.asarray(path)[:, 0], np.asarray(path)[:, 1], marker=".", markersize=3, label=name)
    ax.set(title=f"0.5 (x^2 + {cfg.condition_number:g} y^2); effective lr {cfg.learning_rate} for both")
    ax.legend(fontsize=8)
    mom = f"momentum {cfg.momentum}"
    return base.ClaimResult(
        "sgd_zigzag",
        "SGD zig-zags across an ill-conditioned valley; momentum damps it and gets there faster.",
        f"sign flips of the steep coordinate per step: sgd {flips['sgd']:.2f}, momentum {flips[mom]:.2f}; "
        f"steps to f < 1e-3: sgd {reach['sgd']:.0f}, momentum {reach[mom]:.0f}",
        sgd_zigzag_holds({"flips": flips, "steps_to_1e-3": reach}, cfg),
        base.save_figure(fig, workdir, "sgd_zigzag"),
        {"flips": flips, "steps_to_1e-3": reach},
    )


def adam_bias_correction_holds(numbers: dict, cfg: Any) -> bool:
    """At the first (default) beta2 the uncorrected first step is at least 3x the corrected one."""
    return numbers[f"beta2 {cfg.beta2s[0]}"] >= 3.0


def adam_bias_correction(cfg: Any, workdir: pathlib.Path) -> base.ClaimResult:
    """Size of Adam's first step with bias correction and without (``m / (sqrt(v) + eps)`` from its state)."""
    g = {"w": jax.random.normal(jax.random.key(cfg.seed), (100,)) * jnp.logspace(-3, 1, 100)}
    ratio = {}
    for beta2 in cfg.beta2s:
        opt = jopt.adam(cfg.learning_rate, beta1=cfg.beta1, beta2=beta2)
        updates, state = opt.update(g, opt.init(g))
        uncorrected = cfg.learning_rate * state.first_moment["w"] / (jnp.sqrt(state.second_moment["w"]) + 1e-8)
        ratio[f"beta2 {beta2}"] = float(jnp.linalg.norm(uncorrected) / jnp.linalg.norm(updates["w"]))
    figure = base.bar_figure(
        workdir,
        "adam_bias_correction",
        ratio,
        ylabel="|step without| / |step with|",
        title=f"Adam's first step, beta1 {cfg.beta1}",
    )
    return base.ClaimResult(
        "adam_bias_correction",
        "Without bias correction, Adam's first steps are much larger than intended.",
        "first-step size without / with correction: "
        + ", ".join(f"{k}: {v:.1f}x" for k, v in ratio.items())
        + " (theory (1 - beta1) / sqrt(1 - beta2))",
        adam_bias_correction_holds(ratio, cfg),
        figure,
        ratio,
    )


def _best_final(make: Any, fn: Any, start: jax.Array, cfg: Any) -> tuple[float, float]:
    """The lowest final loss over ``cfg.learning_rates`` (a diverged run counts as inf) and its rate."""
    finals = [float(fn(trajectory(make(lr), fn, start, num_steps=cfg.num_steps)[-1])) for lr in cfg.learning_rates]
    finals = [f if np.isfinite(f) else float("inf") for f in finals]
    best = int(np.argmin(finals))
    return finals[best], cfg.learning_rates[best]


def adam_rotation_holds(numbers: dict, cfg: Any) -> bool:
    """Rotation costs Adam more than 10x in final loss and SGD less than 10x."""
    del cfg
    ratio = {k: v["rotated"] / max(v["aligned"], 1e-30) for k, v in numbers.items()}
    return ratio["adam"] > 10 and ratio["sgd"] < 10


def adam_rotation(cfg: Any, workdir: pathlib.Path) -> base.ClaimResult:
    """Best final loss (over a learning-rate grid) of Adam and SGD on an axis-aligned vs a rotated quadratic."""
    key = jax.random.key(cfg.seed)
    h = jnp.logspace(0, np.log10(cfg.condition_number), cfg.dim)
    rotation, _ = jnp.linalg.qr(jax.random.normal(key, (cfg.dim, cfg.dim)))
    problems = {
        "aligned": (jnp.diag(h), jnp.ones(cfg.dim)),
        "rotated": (rotation @ jnp.diag(h) @ rotation.T, rotation @ jnp.ones(cfg.dim)),
    }
    best: dict[str, dict[str, float]] = {"adam": {}, "sgd": {}}
    for problem, (hess, start) in problems.items():

        def fn(x, hess=hess):
            return 0.5 * x @ hess @ x

        best["adam"][problem], _ = _best_final(jopt.adam, fn, start, cfg)
        best["sgd"][problem], _ = _best_final(jopt.sgd, fn, start, cfg)
    ratio = {k: v["rotated"] / max(v["aligned"], 1e-30) for k, v in best.items()}
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    pos = np.arange(2)
    for i, problem in enumerate(problems):
        ax.bar(pos + (i - 0.5) * 0.35, [max(best[o][problem], 1e-30) for o in best], 0.35, label=problem)
    ax.set_xticks(pos, list(best))
    ax.set(
        yscale="log",
        ylabel=f"best loss after {cfg.num_steps} steps",
        title=f"{cfg.dim}-D quadratic, condition {cfg.condition_number:g}",
    )
    ax.legend()
    return base.ClaimResult(
        "adam_rotation",
        "Adam's per-coordinate scaling does not fix ill-conditioning rotated off the axes.",
        f"best final loss rotated / aligned: adam {ratio['adam']:.1e}x "
        f"({best['adam']['aligned']:.1e} -> {best['adam']['rotated']:.1e}), sgd {ratio['sgd']:.1f}x",
        adam_rotation_holds(best, cfg),
        base.save_figure(fig, workdir, "adam_rotation"),
        best,
    )


def lbfgs_batch_holds(numbers: dict, cfg: Any) -> bool:
    """Full-batch L-BFGS ends below half the training loss of minibatch L-BFGS."""
    return numbers["L-BFGS full batch"] < 0.5 * numbers[f"L-BFGS batch {cfg.minibatch}"]


def lbfgs_batch(cfg: Any, workdir: pathlib.Path) -> base.ClaimResult:
    """Full-train loss of softmax regression after L-BFGS full batch, L-BFGS on minibatches, and SGD."""
    data = base.splits(cfg.dataset, cfg.val_size)
    model = models.linear(num_classes=data.num_classes)
    runs = {
        "L-BFGS full batch": (jopt.lbfgs(), None),
        f"L-BFGS batch {cfg.minibatch}": (jopt.lbfgs(), cfg.minibatch),
        f"SGD batch {cfg.minibatch}": (jopt.sgd(cfg.sgd_learning_rate), cfg.minibatch),
    }
    loss = {}
    for name, (opt, batch) in runs.items():
        result = training.fit(
            model,
            opt,
            train=data.train,
            num_steps=cfg.num_steps,
            batch_size=batch,
            eval_every=cfg.eval_every,
            seed=cfg.seed,
            check_initial_loss=False,
            explosion_factor=None,
        )
        loss[name] = base.evaluate(model, result.state, data.train)["loss"]
    figure = base.bar_figure(
        workdir,
        "lbfgs_batch",
        loss,
        ylabel="full training loss",
        logy=True,
        title=f"softmax on {cfg.dataset}, {cfg.num_steps} steps",
    )
    return base.ClaimResult(
        "lbfgs_batch",
        "L-BFGS works well full batch but poorly on minibatches.",
        f"training loss after {cfg.num_steps} steps: " + ", ".join(f"{k} {v:.2e}" for k, v in loss.items()),
        lbfgs_batch_holds(loss, cfg),
        figure,
        loss,
    )


def svm_vs_softmax_holds(numbers: dict, cfg: Any) -> bool:
    """The SVM's final gradient is below 1e-3x softmax's, which is still non-zero."""
    del cfg
    svm, soft = numbers["svm"]["grad_norm"], numbers["softmax"]["grad_norm"]
    return svm < 1e-3 * soft and soft > 0


def svm_vs_softmax(cfg: Any, workdir: pathlib.Path) -> base.ClaimResult:
    """Gradient norm of a linear classifier, SVM vs softmax loss, once the training margins are met."""
    data = base.splits(cfg.dataset, cfg.val_size, cfg.train_size)
    model = models.linear(num_classes=data.num_classes)
    curves, final = {}, {}
    for loss in ("svm", "softmax"):
        result = training.fit(
            model,
            jopt.sgd(cfg.learning_rate),
            train=data.train,
            loss=loss,
            num_steps=cfg.num_steps,
            eval_every=cfg.eval_every,
            seed=cfg.seed,
            check_initial_loss=False,
        )
        curves[loss] = (np.asarray(result.history["step"]), np.asarray(result.history["grad_norm"]))
        final[loss] = {
            "grad_norm": float(result.history["grad_norm"][-1]),
            "train_loss": float(result.history["train_loss"][-1]),
            "weight_norm": float(jnp.linalg.norm(result.state.params["w"])),
        }
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for loss, (x, y) in curves.items():
        ax.plot(x, np.maximum(y, 1e-12), label=loss)
    ax.set(
        yscale="log",
        xlabel="step",
        ylabel="gradient norm (full batch)",
        title=f"linear classifier, {cfg.train_size} {cfg.dataset} examples",
    )
    ax.legend()
    svm, soft = final["svm"], final["softmax"]
    return base.ClaimResult(
        "svm_vs_softmax",
        "Once the margins are met the SVM loss is 0 and stops pushing; softmax never is.",
        f"after {cfg.num_steps} full-batch steps: svm loss {svm['train_loss']:.2e}, grad {svm['grad_norm']:.1e}; "
        f"softmax loss {soft['train_loss']:.2e}, grad {soft['grad_norm']:.1e}",
        svm_vs_softmax_holds(final, cfg),
        base.save_figure(fig, workdir, "svm_vs_softmax"),
        final,
    )
