"""Data-parallel train-step time on 1, 2, 4 and 8 emulated CPU devices.

Run from the repo root::

    python -m benchmarks.bench_data_parallel [--global-batch 512] [--repeats 7]

Starts one child process with ``--xla_force_host_platform_device_count=8``
(XLA fixes the device count at start-up) that times, for D = 1, 2, 4, 8, one
update of an MLP 40 -> 100 -> 100 -> 10 (momentum SGD) on a global batch of
MNIST-1D-shaped inputs:

* single: ``jax.jit`` of the step on one device, the whole global batch (the peer);
* sharded: :func:`jax231.parallel.make_sharded_train_step` over a mesh of D devices;
* pmap: :func:`jax231.parallel.make_pmap_train_step` over D devices (``lax.pmean``).

The three are timed in alternation, round by round (medians, buffers donated,
batches already on their devices). Emulated devices share the host's cores, so
on a CPU the table shows the *overhead* of partitioning and collectives, not a
speed-up; on a machine with D accelerators the same script measures scaling.
Prints ratios single / contender (> 1 means faster than one device).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

NUM_DEVICES = 8


def child(global_batch: int, repeats: int) -> None:
    import jax
    import numpy as np

    from benchmarks._timing import time_interleaved
    from jax231 import models, optimizers, parallel, training

    rng = np.random.default_rng(0)
    batch = {
        "image": rng.normal(size=(global_batch, 40, 1)).astype(np.float32),
        "label": rng.integers(0, 10, size=global_batch).astype(np.int32),
    }
    model = models.get("mlp", hidden_sizes=(100, 100), num_classes=10)
    tx = optimizers.get("momentum", learning_rate=0.01, momentum=0.9)
    step = training.make_train_step(model, tx)

    def fresh():
        return training.create_train_state(model, tx, rng=jax.random.PRNGKey(0), input_shape=(40, 1))

    single = jax.jit(step, donate_argnums=0)
    print(
        f"backend: {jax.default_backend()}, {jax.device_count()} emulated devices on {os.cpu_count()} cores, "
        f"global batch {global_batch}, median of {repeats}\n"
    )
    print("| devices | single ms | sharded ms | pmap ms | single / sharded | single / pmap |")
    print("|---:|---:|---:|---:|---:|---:|")
    for d in (1, 2, 4, 8):
        devices = jax.devices()[:d]
        mesh = parallel.make_mesh(d)
        sharded = parallel.make_sharded_train_step(step, mesh)
        pmapped = parallel.make_pmap_train_step(model, tx, devices=devices)
        on_one = jax.device_put(batch, jax.devices()[0])
        on_mesh = jax.device_put(batch, parallel.batch_sharding(mesh))
        on_pmap = jax.pmap(lambda b: b, devices=devices)(parallel.split_batch(batch, d))
        calls = {
            "single": (lambda s, b: (single(s, b)[0],), (fresh(), on_one)),
            "sharded": (lambda s, b: (sharded(s, b)[0],), (fresh(), on_mesh)),
            "pmap": (lambda s, b: (pmapped(s, b)[0],), (parallel.replicate(fresh(), devices), on_pmap)),
        }
        t = time_interleaved(calls, repeats=repeats, warmup=2, carry=True)
        print(
            f"| {d} | {1e3 * t['single']:.2f} | {1e3 * t['sharded']:.2f} | {1e3 * t['pmap']:.2f} | "
            f"{t['single'] / t['sharded']:.2f}x | {t['single'] / t['pmap']:.2f}x |",
            flush=True,
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--global-batch", type=int, default=512, help="examples per update (divisible by 8)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (medians)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.global_batch % NUM_DEVICES:
        parser.error(f"--global-batch must be divisible by {NUM_DEVICES}; got {args.global_batch}")
    if args.child:
        child(args.global_batch, args.repeats)
        return
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    env["XLA_FLAGS"] = " ".join(
        [
            env.get("XLA_FLAGS", ""),
            f"--xla_force_host_platform_device_count={NUM_DEVICES}",
            "--xla_cpu_collective_call_terminate_timeout_seconds=600",
        ]
    ).strip()
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.bench_data_parallel",
        "--child",
        "--global-batch",
        str(args.global_batch),
        "--repeats",
        str(args.repeats),
    ]
    sys.exit(subprocess.run(cmd, env=env).returncode)


if __name__ == "__main__":
    main()
