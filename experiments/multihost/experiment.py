"""Multi-host data parallelism on MNIST-1D: each process reads its shard, one writes.

Importable by tests; ``main.py`` only parses flags and calls :func:`run`.
"""

from __future__ import annotations

import json
import os
import time

import jax
from jax.experimental import multihost_utils

from jax231 import models, optimizers, parallel, pipelines, training


def run(
    *,
    workdir: str,
    num_steps: int = 300,
    global_batch: int = 128,
    learning_rate: float = 0.05,
    hidden_sizes: tuple[int, ...] = (100, 100),
    seed: int = 0,
) -> dict:
    """Trains an MLP with the sharded step over every device of every process.

    Call after :func:`jax231.parallel.initialize_distributed` (or in a plain
    single-process run). Process ``p`` of ``P`` streams only its contiguous
    ``1 / P`` of the training split (``pipelines.load(..., shard=(p, P))``) in
    batches of ``global_batch / P``; :func:`parallel.global_batch_from_local`
    joins them into the global batch. Process 0 alone writes
    ``params.npz`` and ``results.json`` to ``workdir``.

    Returns:
      The results: test loss and accuracy, process and device counts, seconds.
    """
    index, count = jax.process_index(), jax.process_count()
    if global_batch % jax.device_count():
        raise ValueError(
            f"global_batch ({global_batch}) must be divisible by the {jax.device_count()} devices of all processes."
        )
    if count > 1:  # process 0 prepares the dataset on first use; the others wait (no racing writers)
        if parallel.is_primary():
            pipelines.info("mnist1d")
            pipelines.load_arrays("mnist1d", "test")
        multihost_utils.sync_global_devices("experiments.multihost: data prepared")
    mesh = parallel.make_mesh()
    model = models.get("mlp", hidden_sizes=hidden_sizes, num_classes=10)
    tx = optimizers.get("momentum", learning_rate=learning_rate, momentum=0.9)
    state = training.create_train_state(model, tx, rng=jax.random.PRNGKey(seed), input_shape=(40, 1))
    state = parallel.replicate_on_mesh(state, mesh)  # same seed everywhere: identical copies
    step = parallel.make_sharded_train_step(training.make_train_step(model, tx), mesh)
    batches = pipelines.load(
        "mnist1d",
        "train",
        batch_size=global_batch // count,
        shuffle=True,
        seed=seed,
        num_epochs=None,
        shard=(index, count),
    )
    start = time.perf_counter()
    for _ in range(num_steps):
        state, metrics = step(state, parallel.global_batch_from_local(next(batches), mesh))
    train_loss = float(metrics["loss"])
    seconds = time.perf_counter() - start
    test = parallel.replicate_on_mesh(pipelines.load_arrays("mnist1d", "test"), mesh)
    scores = training.evaluate(training.make_eval_step(model), state, test)
    results = {
        "process_count": count,
        "device_count": jax.device_count(),
        "num_steps": num_steps,
        "global_batch": global_batch,
        "final_train_loss": train_loss,
        "test_loss": scores["loss"],
        "test_accuracy": scores["accuracy"],
        "train_seconds": seconds,
    }
    parallel.save_once(os.path.join(workdir, "params.npz"), state.params)
    if parallel.is_primary():
        with open(os.path.join(workdir, "results.json"), "w") as f:
            json.dump(results, f, indent=2)
    return results
