"""Claims about regularisation and model averaging (CS231n notes, "Neural Networks Part 2" and "Part 3")."""

from __future__ import annotations

import functools
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from experiments.claims import base
from jax231 import losses, models, parallel, training
from jax231 import optimizers as jopt


def _member(tree: Any, k: int) -> Any:
    return jax.tree_util.tree_map(lambda x: x[k], tree)


def dropout_l2_gap_holds(numbers: dict, cfg: Any) -> bool:
    """Dropout's and L2's train - val gaps are both below the unregularised one."""
    gaps = {k: v["gap"] for k, v in numbers.items()}
    return gaps[f"dropout {cfg.drop_rate}"] < gaps["none"] and gaps[f"L2 {cfg.l2}"] < gaps["none"]


def dropout_l2_gap(cfg: Any, workdir: pathlib.Path) -> base.ClaimResult:
    """Train - val accuracy of one MLP without regularisation, with dropout and with L2 (one sweep)."""
    data = base.splits(cfg.dataset, cfg.val_size, cfg.train_size)
    factory = functools.partial(models.mlp, hidden_sizes=tuple(cfg.hidden_sizes), num_classes=data.num_classes)
    names = ("none", f"dropout {cfg.drop_rate}", f"L2 {cfg.l2}")
    sweep = parallel.run_sweep(
        factory,
        jopt.adam(cfg.learning_rate),
        train=data.train,
        val=data.val,
        seeds=jnp.full((3,), cfg.seed),
        num_steps=cfg.num_steps,
        batch_size=cfg.batch_size,
        model_hyperparams={"drop_rate": jnp.asarray([0.0, cfg.drop_rate, 0.0])},
        l2=jnp.asarray([0.0, 0.0, cfg.l2]),
    )
    plain = factory()  # inference mode is the same for every member (dropout is off)
    rows = {}
    for k, name in enumerate(names):
        state = _member(sweep.state, k)
        train_acc = base.evaluate(plain, state, data.train)["accuracy"]
        val_acc = base.evaluate(plain, state, data.val)["accuracy"]
        rows[name] = {"train": train_acc, "val": val_acc, "gap": train_acc - val_acc}
    fig, ax = plt.subplots(figsize=(6, 3.6))
    width = 0.35
    pos = np.arange(len(rows))
    ax.bar(pos - width / 2, [r["train"] for r in rows.values()], width, label="train")
    ax.bar(pos + width / 2, [r["val"] for r in rows.values()], width, label="val")
    ax.set_xticks(pos, list(rows))
    ax.set(ylim=(0, 1.05), ylabel="accuracy", title=f"MLP {tuple(cfg.hidden_sizes)} on {cfg.dataset}")
    ax.legend()
    return base.ClaimResult(
        "dropout_l2_gap",
        "Dropout and L2 regularisation shrink the generalisation gap.",
        "train - val accuracy: " + ", ".join(f"{k} {v['gap']:.3f} (val {v['val']:.3f})" for k, v in rows.items()),
        dropout_l2_gap_holds(rows, cfg),
        base.save_figure(fig, workdir, "dropout_l2_gap"),
        rows,
    )


def l1_vs_l2_holds(numbers: dict, cfg: Any) -> bool:
    """L1 has at least 20 points more near-zero weights than L2."""
    del cfg
    return numbers["L1"] > numbers["L2"] + 0.2


def l1_vs_l2(cfg: Any, workdir: pathlib.Path) -> base.ClaimResult:
    """Fraction of near-zero weights of a softmax classifier trained with L1 vs L2 of equal strength."""
    data = base.splits(cfg.dataset, cfg.val_size)
    model = models.linear(num_classes=data.num_classes)
    penalties = {
        "L1": functools.partial(losses.l1_penalty, strength=cfg.strength),
        "L2": functools.partial(losses.l2_penalty, strength=cfg.strength),
    }
    weights, zero = {}, {}
    for name, penalty in penalties.items():
        result = training.fit(
            model,
            jopt.sgd(cfg.learning_rate),
            train=data.train,
            penalty=penalty,
            num_steps=cfg.num_steps,
            batch_size=cfg.batch_size,
            eval_every=cfg.eval_every,
            seed=cfg.seed,
            check_initial_loss=False,
        )
        w = np.asarray(result.state.params["w"]).ravel()
        weights[name] = w
        zero[name] = float(np.mean(np.abs(w) < cfg.zero_threshold * np.abs(w).max()))
    fig, ax = plt.subplots(figsize=(6, 3.6))
    bins = np.logspace(-8, 1, 60)
    for name, w in weights.items():
        ax.hist(np.abs(w) + 1e-9, bins=bins, alpha=0.6, label=f"{name}: {zero[name]:.0%} near 0")
    ax.set(xscale="log", xlabel="|w|", ylabel="count", title=f"softmax on {cfg.dataset}, strength {cfg.strength}")
    ax.legend()
    return base.ClaimResult(
        "l1_vs_l2",
        "L1 regularisation gives sparse weights, L2 diffuse small ones.",
        f"weights with |w| < {cfg.zero_threshold:g} max|w|: L1 {zero['L1']:.0%}, L2 {zero['L2']:.0%}",
        l1_vs_l2_holds(zero, cfg),
        base.save_figure(fig, workdir, "l1_vs_l2"),
        zero,
    )


def ensemble_holds(numbers: dict, cfg: Any) -> bool:
    """The ensemble's accuracy is above its members' mean."""
    del cfg
    return numbers["ensemble"] > float(np.mean(numbers["members"]))


def ensemble(cfg: Any, workdir: pathlib.Path) -> base.ClaimResult:
    """Test accuracy of the averaged softmax of M independently initialised MLPs vs each member."""
    data = base.splits(cfg.dataset, cfg.val_size)
    model = models.mlp(hidden_sizes=tuple(cfg.hidden_sizes), num_classes=data.num_classes)
    sweep = parallel.run_sweep(
        model,
        jopt.adam(cfg.learning_rate),
        train=data.train,
        seeds=cfg.seed + jnp.arange(cfg.members),
        num_steps=cfg.num_steps,
        batch_size=cfg.batch_size,
    )
    x, y = jnp.asarray(data.test["image"]), np.asarray(data.test["label"])
    probs = jax.vmap(lambda p, s: jax.nn.softmax(model.apply(p, s, x, train=False)[0]))(
        sweep.state.params, sweep.state.model_state
    )
    members = np.mean(np.asarray(jnp.argmax(probs, -1)) == y[None], axis=1)
    combined = float(np.mean(np.asarray(jnp.argmax(probs.mean(0), -1)) == y))
    figure = base.bar_figure(
        workdir,
        "ensemble",
        {**{f"member {k}": a for k, a in enumerate(members)}, "ensemble": combined},
        ylabel="test accuracy",
        title=f"{cfg.members} MLPs on {cfg.dataset}",
    )
    gain = combined - float(members.mean())
    numbers = {"ensemble": combined, "members": members.tolist(), "gain": gain}
    return base.ClaimResult(
        "ensemble",
        "An ensemble of independently trained models beats its members (the notes: about +2%).",
        f"test accuracy: ensemble {combined:.3f}, members {members.mean():.3f} mean / {members.max():.3f} best "
        f"(+{100 * gain:.1f} points over the mean)",
        ensemble_holds(numbers, cfg),
        figure,
        numbers,
    )


def polyak_holds(numbers: dict, cfg: Any) -> bool:
    """The averaged parameters have the lower validation loss."""
    del cfg
    return numbers["average"] < numbers["last"]


def polyak(cfg: Any, workdir: pathlib.Path) -> base.ClaimResult:
    """Val loss of SGD's last iterate vs the Polyak (tail) average of its iterates, one ``fit`` run."""
    data = base.splits(cfg.dataset, cfg.val_size)
    model = models.linear(num_classes=data.num_classes)
    optimizer = jopt.averaged(jopt.sgd(cfg.learning_rate), jopt.polyak_average(), start_step=cfg.average_from)
    result = training.fit(
        model,
        optimizer,
        train=data.train,
        val=data.val,
        num_steps=cfg.num_steps,
        penalty=functools.partial(losses.l2_penalty, strength=cfg.l2),
        batch_size=cfg.batch_size,
        eval_every=cfg.eval_every,
        seed=cfg.seed,
        check_initial_loss=False,
    )
    last = base.evaluate(model, result.state, data.val)["loss"]
    avg_params = optimizer.eval_params(result.state.opt_state, result.state.params)
    avg = base.evaluate(model, result.state._replace(params=avg_params), data.val)["loss"]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(result.history["step"], result.history["val_loss"], label="iterate")
    ax.axhline(avg, color="tab:orange", label=f"Polyak average of steps {cfg.average_from}-{cfg.num_steps}")
    ax.axvline(cfg.average_from, color="0.6", linestyle=":")
    ax.set(
        xlabel="step",
        ylabel="val loss",
        title=f"softmax + L2 {cfg.l2} on {cfg.dataset}, SGD lr {cfg.learning_rate}, batch {cfg.batch_size}",
    )
    ax.legend(fontsize=8)
    return base.ClaimResult(
        "polyak",
        "Polyak averaging of the iterates gives a better final model than the last iterate.",
        f"final val loss: last iterate {last:.4f}, average of the last {cfg.num_steps - cfg.average_from} iterates "
        f"{avg:.4f}",
        polyak_holds({"last": last, "average": avg}, cfg),
        base.save_figure(fig, workdir, "polyak"),
        {"last": last, "average": avg},
    )
