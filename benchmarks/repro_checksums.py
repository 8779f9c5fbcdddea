"""Reproducibility checksums of the training core (issue 17, "Must stay true").

Prints, for three runs, the sha256 of the final parameters (the float32 bytes of
every leaf of ``params`` concatenated in tree order) and their metrics:

(a) ``fit`` on the MNIST-1D MLP preset (``experiments/train/config.py:mnist1d_mlp``:
    Adam, lr 1e-2, batch 100, eval every 250) cut to 1,000 steps;
(b) a 4-member ``run_sweep`` (MLP on MNIST-1D, SGD momentum, 2 seeds x 2 learning
    rates, 300 steps, batch 100);
(c) the main job (``python -m experiments.compare_optimizers.main``), its
    ``results.json`` hashed with the timing fields dropped (they are wall times).

Run before and after a change of the training code and diff the output::

    python -m benchmarks.repro_checksums [--skip_main] > /tmp/repro.txt
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import subprocess
import sys
import tempfile

import jax
import numpy as np

from experiments.train import config as train_config
from experiments.train import experiment as train_lib
from jax231 import parallel, training

TIMING_KEYS = (
    "time",
    "seconds",
    "wall",
    "per_step",
    "seconds_per_step",
    "seconds_to_target",
    "wall_seconds",
    "elapsed",
    "runtime",
)


def tree_sha(tree) -> str:
    """sha256 of the float32 bytes of every leaf, concatenated in tree order."""
    digest = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(tree):
        digest.update(np.ascontiguousarray(np.asarray(leaf, np.float32)).tobytes())
    return digest.hexdigest()[:16]


def fit_mnist1d_mlp() -> None:
    config = train_config.get_config("mnist1d_mlp")
    config.num_steps = 1000
    splits = train_lib.build_data(config)
    model = train_lib.build_model(config, splits.num_classes)
    optimizer = train_lib.build_optimizer(config, num_steps=1000)
    result = training.fit(
        model,
        optimizer,
        train=splits.train,
        val=splits.val,
        num_steps=1000,
        batch_size=config.batch_size,
        eval_every=config.eval_every,
        seed=config.seed,
    )
    h = result.history
    print(f"(a) fit mnist1d_mlp 1000 steps: params {tree_sha(result.state.params)} status {result.status}")
    print(f"    val_loss {[f'{v:.6f}' for v in h['val_loss']]}")
    print(f"    val_acc  {[f'{v:.4f}' for v in h['val_accuracy']]}")
    print(f"    train_loss {[f'{v:.6f}' for v in h['train_loss']]}")


def sweep_four() -> None:
    config = train_config.get_config("mnist1d_mlp")
    splits = train_lib.build_data(config)
    model = train_lib.build_model(config, splits.num_classes)
    result = parallel.run_sweep(
        model,
        "momentum",
        train=splits.train,
        val=splits.val,
        seeds=np.array([0, 1, 0, 1]),
        hyperparams={"learning_rate": np.array([0.05, 0.05, 0.2, 0.2], np.float32)},
        num_steps=300,
        batch_size=100,
        eval_every=100,
    )
    for k in range(4):
        member = parallel.tree_index(result.state.params, k)
        print(
            f"(b) sweep member {k}: params {tree_sha(member)} "
            f"val_loss {[f'{v:.6f}' for v in np.asarray(result.history['val_loss'])[k]]} "
            f"train_loss {[f'{v:.6f}' for v in np.asarray(result.history['train_loss'])[k]]}"
        )


def _drop_timing(obj):
    if isinstance(obj, dict):
        return {k: _drop_timing(v) for k, v in obj.items() if not any(t in k for t in TIMING_KEYS)}
    if isinstance(obj, list):
        return [_drop_timing(v) for v in obj]
    return obj


def main_job() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        subprocess.run(
            [sys.executable, "-m", "experiments.compare_optimizers.main", f"--workdir={workdir}"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        results = json.loads((pathlib.Path(workdir) / "results.json").read_text())
    cleaned = _drop_timing(results)
    blob = json.dumps(cleaned, sort_keys=True).encode()
    print(f"(c) main job results.json (timings dropped): {hashlib.sha256(blob).hexdigest()[:16]}")
    numbers = {k: v for k, v in cleaned.items() if k != "config"}
    numbers["runs"] = [{k: v for k, v in run.items() if k != "message"} for run in numbers.get("runs", [])]
    blob = json.dumps(numbers, sort_keys=True).encode()
    print(f"(c) main job results.json numbers only (no config, no messages): {hashlib.sha256(blob).hexdigest()[:16]}")
    for run in cleaned.get("final_runs", cleaned.get("runs", []))[:50] if isinstance(cleaned, dict) else []:
        print("    ", json.dumps(run, sort_keys=True)[:300])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip_main", action="store_true", help="skip (c), the main job (about 1 minute)")
    args = parser.parse_args()
    fit_mnist1d_mlp()
    sweep_four()
    if not args.skip_main:
        main_job()


if __name__ == "__main__":
    main()
