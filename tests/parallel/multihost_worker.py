"""One process of the multi-host test: a few data-parallel steps over all processes' devices.

Run by ``test_distributed.py`` through :func:`jax231.parallel.launch_local_processes`
(``python -m tests.parallel.multihost_worker WORKDIR``): every process joins the
run described by the ``JAX231_*`` environment, reads only its block of each
global batch, trains the tiny BatchNorm MLP for 3 steps with the sharded step,
and process 0 alone writes the final parameters to ``WORKDIR/params.npz``.
Prints one line ``RESULT <json>`` of what the process saw (gloo logs to stdout too).
"""

from __future__ import annotations

import json
import os
import sys

from jax231 import parallel

config = parallel.initialize_distributed()  # before anything touches the devices

import jax  # noqa: E402
import optax  # noqa: E402

from jax231 import training  # noqa: E402
from tests.parallel import tiny_models  # noqa: E402

GLOBAL_BATCH, NUM_STEPS = 16, 3


def main(workdir: str) -> None:
    mesh = parallel.make_mesh()  # every device of every process
    data = tiny_models.blobs(GLOBAL_BATCH * NUM_STEPS)  # a stand-in for a dataset every host can index
    model = tiny_models.mlp(batch_norm=True)
    tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=0.9)
    state = training.create_train_state(model, tx, rng=jax.random.key(0), input_shape=(5,))
    state = parallel.replicate_on_mesh(state, mesh)
    step = parallel.make_sharded_train_step(training.make_train_step(model, tx), mesh)
    mine = parallel.process_slice(GLOBAL_BATCH)
    for i in range(NUM_STEPS):
        block = slice(GLOBAL_BATCH * i, GLOBAL_BATCH * (i + 1))
        local = {name: values[block][mine] for name, values in data.items()}  # this host's examples only
        state, metrics = step(state, parallel.global_batch_from_local(local, mesh))
    wrote = parallel.save_once(os.path.join(workdir, "params.npz"), state.params)
    print(
        "RESULT "
        + json.dumps(
            {
                "process_index": jax.process_index(),
                "process_count": jax.process_count(),
                "device_count": jax.device_count(),
                "local_examples": int(local["label"].shape[0]),
                "wrote": wrote,
                "loss": float(metrics["loss"]),
                "distributed": config is not None,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1])
