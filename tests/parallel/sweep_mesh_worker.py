"""The sharded-sweep configuration of ``test_sweep_mesh.py``, and one process of its multi-host run.

:func:`sweep` runs one small ``run_sweep`` whose members exercise every part of
the member layout: ``K = 5`` (padded on 2, 4 or 8 member devices), two model
configurations (``drop_rate`` 0 and 0.3: two groups), per-member L2, shared
seeds, and one member whose learning rate makes it diverge (frozen while the
others go on). :func:`summary` flattens a result into NumPy arrays.

As a script (``python -m tests.parallel.sweep_mesh_worker OUT``, launched by
:func:`jax231.parallel.launch_local_processes`): every process joins the run
described by the ``JAX231_*`` environment, runs :func:`sweep` (one model) on a
member mesh over all processes' devices, and process 0 alone writes :func:`summary` to
``OUT`` (``.npz``). Prints one line ``RESULT <json>``.
"""

from __future__ import annotations

import functools
import json
import sys

from jax231 import parallel

if __name__ == "__main__":
    config = parallel.initialize_distributed()  # before anything touches the devices

import jax  # noqa: E402
import numpy as np  # noqa: E402

from jax231 import models  # noqa: E402
from tests.parallel import tiny_models  # noqa: E402

SEEDS = np.array([5, 5, 7, 1, 2])
LEARNING_RATES = np.array([0.05, 0.2, 0.1, 1e30, 0.02], np.float32)  # member 3 diverges
DROP_RATES = np.array([0.0, 0.3, 0.3, 0.0, 0.3])
L2 = np.array([0.0, 1e-2, 1e-3, 0.0, 1e-3], np.float32)


def sweep(mesh: jax.sharding.Mesh | None, *, grouped: bool = True) -> parallel.SweepResult:
    """The test's sweep: 6 momentum steps of batch 16 on 64 examples, evaluations at 3 and 6.

    ``grouped=False`` leaves dropout out (one model, one group: a lighter program).
    """
    factory = functools.partial(models.get, "mlp", hidden_sizes=(8,), num_classes=3)
    model_hp = {"drop_rate": DROP_RATES} if grouped else None
    return parallel.run_sweep(
        factory if grouped else factory(),
        "momentum",
        train=tiny_models.blobs(64),
        val=tiny_models.blobs(32, seed=1),
        seeds=SEEDS,
        hyperparams={"learning_rate": LEARNING_RATES},
        model_hyperparams=model_hp,
        l2=L2,
        optimizer_kwargs={"momentum": 0.9},
        num_steps=6,
        batch_size=16,
        eval_every=3,
        mesh=mesh,
    )


def summary(result: parallel.SweepResult) -> dict[str, np.ndarray]:
    """Every state leaf (gathered from all hosts), history entry and per-member field, by name."""
    flat, _ = jax.tree_util.tree_flatten_with_path(result.state)
    out = {"state" + jax.tree_util.keystr(path): parallel.host_array(leaf) for path, leaf in flat}
    out.update({"history/" + name: values for name, values in result.history.items() if name != "time"})
    out.update(status=result.status, first_bad_step=result.first_bad_step, initial_loss=result.initial_loss)
    return out


def main(path: str) -> None:
    # Every device of every process on the member axis; one model (the 8-device test covers the groups).
    result = sweep(parallel.make_sweep_mesh(), grouped=False)
    values = summary(result)
    if parallel.is_primary():
        np.savez(path, **values)
    print(
        "RESULT "
        + json.dumps(
            {
                "process_index": jax.process_index(),
                "process_count": jax.process_count(),
                "device_count": jax.device_count(),
                "status": result.status.tolist(),
                "distributed": config is not None,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1])
