"""Training throughput of jax231's loops against flax.linen + optax, measured in one run.

Run from the repo root::

    python -m benchmarks.bench_fit [--repeats 7]

Setup: MLP 40-100-100-10 (ReLU) on MNIST-1D (4000 training examples, images
``(N, 40, 1)``), softmax cross-entropy, batch 128, Adam lr 1e-3, 1000 updates
from a fresh initialisation per run. Five paths:

1. peer, Python loop: a ``flax.linen`` MLP (``nn.Dense``) and ``optax.adam``; a
   ``jax.jit``-ed step (``value_and_grad``, ``optax.update``, ``apply_updates``,
   loss and accuracy metrics; params and optimizer state donated) called once
   per batch, batches gathered on the host from a NumPy permutation per epoch
   (the loop of the flax examples);
2. peer, ``lax.scan``: the same step, all 1000 updates as one compiled
   ``lax.scan`` over on-device data, the per-epoch permutations computed in the
   program (the fastest flax + optax path);
3. jax231, Python loop: ``training.jit_train_step(training.make_train_step(model,
   optimizer))`` fed the same host batches as row 1;
4. jax231 ``training.fit(model, optimizer, train=arrays, num_steps=1000,
   batch_size=128, eval_every=250, check_initial_loss=False)`` (four compiled
   ``lax.while_loop`` chunks of 250 updates, with the explosion guard);
5. jax231 ``training.train_epoch_scan`` called once per epoch (32 epochs of 31
   updates: 992 updates).

Prints steps/s (the median of ``--repeats`` timed runs after a warm-up run;
compilation excluded; the five paths are timed in alternation, round by round,
so they all see the same load), each path's ratio to peer rows 1 and 2, the
CPU time per update and the same ratios in CPU time (all threads), and the
training loss every path reaches, to show they do the same work. On an
oversubscribed machine trust the CPU-time ratios: the wall-clock ones swing
by up to 2x from run to run (the share of the cores the scheduler gives each
path varies; the one long ``lax.scan`` call of row 2 tends to get less than the
short calls of rows 4 and 5), the CPU-time ones by a few percent. The fair
comparison is ``fit`` against row 2 (both on-device, one program per chunk);
rows 1 and 3 compare the two step functions in the same host loop. jax231's
step also computes ``grad_norm``, ``param_norm``, ``update_norm`` and
``update_ratio`` every update (the peer computes loss and accuracy only), and
``fit`` keeps the previous state for its explosion guard. About a minute on a
2-core CPU.

``--cnn`` times the ``cifar10_cnn`` preset's net instead (``models.get('vgg',
stage_widths=(32, 64, 128), convs_per_stage=(1, 1, 1), hidden_dims=(256,), norm='batch')``,
its convolutions at their default ``impl='auto'``), Adam, batch 128, on 1024 random 32x32x3
images, ``--cnn-steps`` updates per run: the jitted step in a Python loop, ``fit`` (one
compiled chunk), and ``fit`` with ``JAX231_CANONICAL_CONVS=0`` (the loop body as before the
canonical-layout rewrite of ``jax231/training/_conv_layout.py``). CPU seconds per update,
medians of interleaved runs. Measured 2026-12-01 on the shared 2-core CPU (load 20-36,
``--repeats 1 --cnn-steps 2``): jitted step 0.25, ``fit`` 0.36 (the whole call over 2
updates: state init, data checks and transfer included), ``fit`` before 16.2 CPU-s/update.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from benchmarks._timing import time_interleaved
from jax231 import models, optimizers, pipelines, training

NUM_STEPS = 1000
BATCH = 128
LR = 1e-3
HIDDEN = (100, 100)
NUM_CLASSES = 10
EVAL_EVERY = 250


class PeerMLP(nn.Module):
    """The flax.linen twin of ``jax231.models.get('mlp', hidden_sizes=(100, 100))``."""

    hidden_sizes: tuple[int, ...] = HIDDEN
    num_classes: int = NUM_CLASSES

    @nn.compact
    def __call__(self, x):
        x = x.reshape((x.shape[0], -1))
        for width in self.hidden_sizes:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.num_classes)(x)


def make_peer(input_shape: tuple[int, ...]):
    """Returns ``(init, step)`` of the flax + optax peer; ``step`` is un-jitted."""
    module, tx = PeerMLP(), optax.adam(LR)

    def init(key):
        params = module.init(key, jnp.zeros((1,) + input_shape, jnp.float32))["params"]
        return params, tx.init(params)

    def step(params, opt_state, images, labels):
        def loss_fn(p):
            logits = module.apply({"params": p}, images)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        metrics = {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == labels)}
        return params, opt_state, metrics

    return jax.jit(init), step


def host_batches(num_examples: int, seed: int = 0):
    """Index batches from a NumPy permutation per epoch (the last partial batch dropped)."""
    rng = np.random.default_rng(seed)
    per_epoch = num_examples // BATCH
    while True:
        perm = rng.permutation(num_examples)
        for i in range(per_epoch):
            yield perm[i * BATCH : (i + 1) * BATCH]


def build_paths(
    images_np: np.ndarray, labels_np: np.ndarray
) -> dict[str, tuple[Callable[[], Any], int, Callable[[Any], Any]]]:
    """``name -> (run, num_updates, loss)``.

    ``run()`` trains from scratch and returns the final params; ``loss(params)``
    is their mean training loss on the whole training set.
    """
    n, input_shape = labels_np.shape[0], tuple(images_np.shape[1:])
    images, labels = jnp.asarray(images_np), jnp.asarray(labels_np)
    arrays = {"image": images, "label": labels}
    key = jax.random.PRNGKey(0)
    per_epoch = n // BATCH

    # 1-2. the peer
    peer_init, peer_step = make_peer(input_shape)
    peer_jit = jax.jit(peer_step, donate_argnums=(0, 1))

    def peer_loop():
        params, opt_state = peer_init(key)
        batches = host_batches(n)
        for _ in range(NUM_STEPS):
            idx = next(batches)
            params, opt_state, _ = peer_jit(params, opt_state, images_np[idx], labels_np[idx])
        return params

    @jax.jit
    def peer_scan_program(key, images, labels):
        params, opt_state = peer_init(key)
        num_epochs = -(-NUM_STEPS // per_epoch)
        keys = jax.random.split(jax.random.fold_in(key, 1), num_epochs)
        perms = jax.vmap(lambda k: jax.random.permutation(k, n)[: per_epoch * BATCH])(keys)
        idx = perms.reshape(num_epochs * per_epoch, BATCH)[:NUM_STEPS]

        def body(carry, i):
            p, s, m = peer_step(*carry, images[i], labels[i])
            return (p, s), m

        (params, _), metrics = lax.scan(body, (params, opt_state), idx)
        return params, metrics

    def peer_scan():
        return peer_scan_program(key, images, labels)[0]

    # 3-5. jax231
    model = models.get("mlp", hidden_sizes=HIDDEN, num_classes=NUM_CLASSES)
    optimizer = optimizers.get("adam", learning_rate=LR)
    step = training.make_train_step(model, optimizer)
    jit_step = training.jit_train_step(step)
    init = jax.jit(lambda k: training.create_train_state(model, optimizer, rng=k, input_shape=input_shape))

    def ours_loop():
        state = init(key)
        batches = host_batches(n)
        for _ in range(NUM_STEPS):
            idx = next(batches)
            state, _ = jit_step(state, {"image": images_np[idx], "label": labels_np[idx]})
        return state.params

    def ours_fit():
        result = training.fit(
            model,
            optimizer,
            train=arrays,
            num_steps=NUM_STEPS,
            batch_size=BATCH,
            eval_every=EVAL_EVERY,
            check_initial_loss=False,
        )
        return result.state.params

    num_epochs = round(NUM_STEPS / per_epoch)

    def ours_epoch_scan():
        state = init(key)
        for epoch in range(num_epochs):
            state, _ = training.train_epoch_scan(step, state, arrays, batch_size=BATCH, epoch=epoch)
        return state.params

    def peer_loss(params):
        return optax.softmax_cross_entropy_with_integer_labels(
            PeerMLP().apply({"params": params}, images), labels
        ).mean()

    eval_step = training.make_eval_step(model)

    def ours_loss(params):
        state = init(key)._replace(params=params)
        return training.evaluate(eval_step, state, arrays)["loss"]

    return {
        "1. peer: Python loop of jitted flax+optax step, host batches": (peer_loop, NUM_STEPS, peer_loss),
        "2. peer: one `lax.scan` of the flax+optax step, on-device data": (peer_scan, NUM_STEPS, peer_loss),
        "3. jax231: Python loop of `jit_train_step`, host batches": (ours_loop, NUM_STEPS, ours_loss),
        "4. jax231: `fit` (4 `while_loop` chunks of 250)": (ours_fit, NUM_STEPS, ours_loss),
        f"5. jax231: `train_epoch_scan` x {num_epochs} epochs": (ours_epoch_scan, num_epochs * per_epoch, ours_loss),
    }


def _vgg():
    return models.get(
        "vgg", stage_widths=(32, 64, 128), convs_per_stage=(1, 1, 1), hidden_dims=(256,), norm="batch", num_classes=10
    )


def cnn_paths(num_steps: int) -> dict[str, Callable[[], Any]]:
    """The three ``--cnn`` contenders: ``run() -> final params`` (compiled at their first call)."""
    rng = np.random.default_rng(0)
    images = rng.normal(size=(1024, 32, 32, 3)).astype(np.float32)
    labels = rng.integers(0, 10, size=1024).astype(np.int32)
    tx = optimizers.adam(learning_rate=LR)
    model = _vgg()
    step = training.jit_train_step(training.make_train_step(model, tx))
    state0 = training.create_train_state(model, tx, rng=jax.random.PRNGKey(0), input_shape=(32, 32, 3))
    batches = [
        {
            "image": jnp.asarray(images[i * BATCH : (i + 1) * BATCH]),
            "label": jnp.asarray(labels[i * BATCH : (i + 1) * BATCH]),
        }
        for i in range(1024 // BATCH)
    ]

    def jitted_loop():
        state = jax.tree_util.tree_map(jnp.copy, state0)  # the step donates its input
        for t in range(num_steps):
            state, _ = step(state, batches[t % len(batches)])
        return state.params

    def fit_with(model, rewrite: str):
        def run():
            os.environ["JAX231_CANONICAL_CONVS"] = rewrite
            try:
                result = training.fit(
                    model,
                    tx,
                    train={"image": images, "label": labels},
                    num_steps=num_steps,
                    batch_size=BATCH,
                    eval_every=num_steps,
                    check_initial_loss=False,
                )
            finally:
                os.environ.pop("JAX231_CANONICAL_CONVS")
            return result.state.params

        return run

    return {
        "jitted step, Python loop": jitted_loop,
        "`fit` (compiled chunk)": fit_with(_vgg(), "1"),
        "`fit`, JAX231_CANONICAL_CONVS=0 (before)": fit_with(_vgg(), "0"),
    }


def main_cnn(repeats: int, num_steps: int) -> None:
    paths = cnn_paths(num_steps)
    for run in paths.values():
        jax.block_until_ready(run())  # compile
    calls = {name: (run, ()) for name, run in paths.items()}
    cpu = time_interleaved(calls, repeats=repeats, warmup=0, clock=time.process_time)
    wall = time_interleaved(calls, repeats=repeats, warmup=0)
    print(f"cifar10_cnn preset's VGG, batch {BATCH}, Adam {LR:g}, {num_steps} updates per run, median of {repeats}")
    print()
    print("| path | CPU s/update | steps/s (wall) | CPU-time x jitted step |")
    print("|---|---:|---:|---:|")
    plain = cpu["jitted step, Python loop"]
    for name in paths:
        print(f"| {name} | {cpu[name] / num_steps:.3f} | {num_steps / wall[name]:.2f} | {cpu[name] / plain:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per path (median), >= 5 advised")
    parser.add_argument("--cnn", action="store_true", help="the cifar10_cnn preset's net instead (see above)")
    parser.add_argument("--cnn-steps", type=int, default=8, help="updates per --cnn run")
    args = parser.parse_args()
    if args.cnn:
        main_cnn(args.repeats, args.cnn_steps)
        return

    data = pipelines.load_arrays("mnist1d", "train")
    images_np = np.asarray(data["image"], np.float32)
    labels_np = np.asarray(data["label"], np.int32)
    paths = build_paths(images_np, labels_np)

    # One untimed run each compiles, and gives the loss each path reaches.
    losses = {name: float(loss(jax.block_until_ready(run()))) for name, (run, _, loss) in paths.items()}
    calls = {name: (run, ()) for name, (run, _, _) in paths.items()}
    wall = time_interleaved(calls, repeats=args.repeats, warmup=1)
    cpu = time_interleaved(calls, repeats=args.repeats, warmup=1, clock=time.process_time)

    dev = jax.devices()[0]
    print(
        f"device: {dev.platform} ({dev.device_kind}), {os.cpu_count()} host CPUs; MLP 40-100-100-10, "
        f"MNIST-1D {labels_np.shape[0]} examples, batch {BATCH}, Adam {LR:g}, {NUM_STEPS} steps; "
        f"median of {args.repeats} runs, timed in alternation"
    )
    print()
    names = list(paths)
    rate = {name: paths[name][1] / wall[name] for name in names}
    cpu_rate = {name: paths[name][1] / cpu[name] for name in names}
    peer_loop, peer_scan = names[0], names[1]
    print(
        "| path | steps/s | x row 1 | x row 2 | CPU us/step | CPU-time x row 1 | CPU-time x row 2 | final train loss |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        print(
            f"| {name} | {rate[name]:,.0f} | {rate[name] / rate[peer_loop]:.2f} | "
            f"{rate[name] / rate[peer_scan]:.2f} | {1e6 / cpu_rate[name]:.0f} | "
            f"{cpu_rate[name] / cpu_rate[peer_loop]:.2f} | "
            f"{cpu_rate[name] / cpu_rate[peer_scan]:.2f} | {losses[name]:.3f} |"
        )
    fit_name = names[3]
    print()
    print(
        f"fair comparison, jax231 `fit` / peer `lax.scan` (row 4 / row 2): "
        f"{rate[fit_name] / rate[peer_scan]:.2f}x steps/s (CPU time: "
        f"{cpu_rate[fit_name] / cpu_rate[peer_scan]:.2f}x)"
    )


if __name__ == "__main__":
    main()
