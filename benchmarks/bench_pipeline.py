"""Images per second of the CIFAR-10 training pipeline against the CNN train step.

Run from the repo root::

    python -m benchmarks.bench_pipeline [--repeats 5] [--batches 40]

Measured in one process, each figure the median of ``--repeats`` runs:

1. ``load('cifar10_shared', 'train', batch_size=128, shuffle=True, augment=...)``
   (tf.data on the host CPU): images per second delivered as NumPy batches,
   without augmentation, with the CIFAR recipe (pad-crop 4 + flip) and with
   every augmentation on;
2. the augmentation alone, on one batch: the tf.data twin (a ``tf.function``)
   against :func:`jax231.pipelines.augment_batch` (jitted on the JAX device);
3. a jitted ``value_and_grad`` + ``optax.sgd`` step of the course's three-layer
   convnet (``jax231.models.three_layer_convnet``: 32 7x7 filters, hidden 100)
   on batch 128: images per second consumed; pipeline / step is the headroom
   (target >= 3x);
4. training end to end, timed in alternation: steps fed by the pipeline that
   augments in tf.data, against steps fed by the plain pipeline that augment
   inside the jitted step with ``augment_batch``.

Needs the CIFAR-10 copy in ``../shared/datasets``: without it the benchmark
says so and exits 0. About three minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks._timing import time_fn, time_interleaved
from jax231 import pipelines
from jax231.pipelines import _common

BATCH = 128
CIFAR = pipelines.Augment(pad_crop=4, flip=True)
HEAVY = pipelines.Augment(pad_crop=4, flip=True, brightness=0.2, contrast=0.2, saturation=0.2, cutout=8, translate=2)


def pipeline_rate(augment, batches: int, repeats: int) -> float:
    """Median images/s of the tf.data pipeline (after the shuffle buffer fills)."""
    it = pipelines.load(
        "cifar10_shared", "train", batch_size=BATCH, shuffle=True, seed=0, num_epochs=None, augment=augment
    )
    for _ in range(20):
        next(it)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(batches):
            next(it)
        rates.append(batches * BATCH / (time.perf_counter() - start))
    return statistics.median(rates)


def augment_rates(images: np.ndarray, augment: pipelines.Augment, repeats: int) -> tuple[float, float]:
    """Images/s of the augmentation alone: (tf.data twin, JAX augment_batch)."""
    import tensorflow as tf

    from jax231.pipelines import _tf_augment

    tf_images = tf.constant(images)
    tf_fn = tf.function(lambda x, s: _tf_augment.augment(x, s, augment))
    seed = tf.constant([0, 0], tf.int64)
    jax_fn = jax.jit(lambda key, x: pipelines.augment_batch(key, x, **augment._asdict()))
    times = time_interleaved(
        {
            "tf": (lambda: tf_fn(tf_images, seed).numpy(), ()),
            "jax": (jax_fn, (jax.random.key(0), jnp.asarray(images))),
        },
        repeats=repeats * 4,
        warmup=2,
    )
    return BATCH / times["tf"], BATCH / times["jax"]


def make_step(augment):
    from jax231.models import three_layer_convnet

    model = three_layer_convnet()
    params, state = model.init(jax.random.key(0), (32, 32, 3))
    opt = optax.sgd(1e-3, momentum=0.9)

    def loss_fn(params, images, labels):
        logits, _ = model.apply(params, state, images, train=True)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    def step(params, opt_state, images, labels, key):
        if augment is not None:
            images = pipelines.augment_batch(key, images, **augment._asdict())
        loss, grads = jax.value_and_grad(loss_fn)(params, images, labels)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return jax.jit(step, donate_argnums=(0, 1)), params, opt.init(params)


def step_rate(images, labels, repeats: int) -> float:
    step, params, opt_state = make_step(None)
    fn = lambda p, o, x, y, k: step(p, o, x, y, k)[:2]  # noqa: E731
    return BATCH / time_fn(
        fn, params, opt_state, images, labels, jax.random.key(1), repeats=repeats * 2, warmup=2, carry=True
    )


def end_to_end_rates(augment: pipelines.Augment, steps: int, repeats: int) -> tuple[float, float]:
    """Images/s of training fed by tf.data: (tf.data augments, the step augments in JAX)."""
    runs = {}
    for name, tf_aug, jax_aug in (("tf", augment, None), ("jax", None, augment)):
        step, params, opt_state = make_step(jax_aug)
        it = pipelines.load(
            "cifar10_shared", "train", batch_size=BATCH, shuffle=True, seed=1, num_epochs=None, augment=tf_aug
        )
        runs[name] = {"step": step, "it": it, "carry": [params, opt_state], "n": 0}

    def run(name):
        r = runs[name]
        loss = None
        for _ in range(steps):
            b = next(r["it"])
            key = jax.random.fold_in(jax.random.key(2), r["n"])
            r["carry"][0], r["carry"][1], loss = r["step"](*r["carry"], b["image"], b["label"], key)
            r["n"] += 1
        return loss

    times = time_interleaved({n: (run, (n,)) for n in runs}, repeats=repeats, warmup=1)
    return steps * BATCH / times["tf"], steps * BATCH / times["jax"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--batches", type=int, default=40, help="batches per pipeline run")
    parser.add_argument("--steps", type=int, default=4, help="train steps per end-to-end run")
    args = parser.parse_args(argv)
    archive = _common.shared_archive()
    if not archive.exists():
        print(f"SKIPPED: the CIFAR-10 copy {archive} is absent (../shared is not in a fresh clone).")
        return 0

    sample = pipelines.load_arrays("cifar10_shared", "test[:128]")
    images, labels = sample["image"], sample["label"]
    step = step_rate(jnp.asarray(images), jnp.asarray(labels), args.repeats)
    plain = pipeline_rate(None, args.batches, args.repeats)
    print(f"devices: {jax.devices()}; batch {BATCH}; medians of {args.repeats} runs; images/s")
    print(f"train step (three_layer_convnet, sgd): {step:,.0f}")
    print(f"tf.data pipeline without augmentation: {plain:,.0f} ({plain / step:.1f}x the step)\n")
    print(
        "| augmentation | tf.data pipeline | pipeline / step | augment alone: tf.data | "
        "augment alone: JAX | end to end: tf.data augments | end to end: JAX augments in step |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, augment in (("pad-crop 4 + flip", CIFAR), ("all seven", HEAVY)):
        rate = pipeline_rate(augment, args.batches, args.repeats)
        tf_alone, jax_alone = augment_rates(images, augment, args.repeats)
        e2e_tf, e2e_jax = end_to_end_rates(augment, args.steps, args.repeats)
        print(
            f"| {label} | {rate:,.0f} | {rate / step:.1f}x | {tf_alone:,.0f} | {jax_alone:,.0f} | "
            f"{e2e_tf:,.0f} | {e2e_jax:,.0f} ({e2e_jax / e2e_tf:.2f}x) |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
