"""Update time of each jax231 rule against its optax counterpart on a 10M-parameter pytree.

Run from the repo root::

    python -m benchmarks.bench_optimizers [--repeats 15] [--rules sgd,adam]

Prints a markdown table: median time of one jitted, buffer-donating step
``(params, state) -> (params + updates, new state)`` for jax231 and optax and
their ratio (target: <= 1.0; the two are timed in alternation, round by round,
so both see the same load), the same ratio in CPU time (all threads; steadier
than wall time on a shared machine), the achieved memory bandwidth (bytes of params,
grads and state read and written per step) and, for scale, the bandwidth of an
in-place ``x + 1`` over the same tree (donated: read once, written once),
measured in the same process. About a minute on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import time

import jax
import optax

import jax231.optimizers as jopt
from benchmarks._timing import time_interleaved

# ~10M float32 parameters in a nested tree.
SHAPES = {
    "block1": {"w": (2048, 2048), "b": (2048,)},
    "block2": {"w": (2048, 2048), "b": (2048,)},
    "head": {"w": (1024, 1536), "b": (1536,)},
}

# name -> (jax231 rule, optax rule with the same math, number of state trees)
RULES = {
    "sgd": (lambda: jopt.sgd(1e-2), lambda: optax.sgd(1e-2), 0),
    "momentum": (lambda: jopt.momentum(1e-2), lambda: optax.sgd(1e-2, momentum=0.9), 1),
    "nesterov": (lambda: jopt.nesterov(1e-2), lambda: optax.sgd(1e-2, momentum=0.9, nesterov=True), 1),
    "adagrad": (lambda: jopt.adagrad(1e-2), lambda: optax.adagrad(1e-2, initial_accumulator_value=0.0), 1),
    "rmsprop": (lambda: jopt.rmsprop(1e-2), lambda: optax.rmsprop(1e-2, decay=0.99, eps_in_sqrt=False), 1),
    "adam": (lambda: jopt.adam(1e-3), lambda: optax.adam(1e-3), 2),
    "adamw": (lambda: jopt.adamw(1e-3), lambda: optax.adamw(1e-3), 2),
}


def make_tree(seed: int):
    leaves, treedef = jax.tree_util.tree_flatten(
        SHAPES, is_leaf=lambda s: isinstance(s, tuple) and all(isinstance(i, int) for i in s)
    )
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree_util.tree_unflatten(treedef, [jax.random.normal(k, s) for k, s in zip(keys, leaves)])


def make_step(opt):
    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return jax.jit(step, donate_argnums=(0, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed calls per measurement (median)")
    parser.add_argument("--rules", default=",".join(RULES), help="comma-separated subset of rules")
    args = parser.parse_args()

    grads = make_tree(1)
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(grads))
    tree_bytes = 4 * n_params
    copy = jax.jit(lambda t: jax.tree_util.tree_map(lambda x: x + 1.0, t), donate_argnums=0)

    print(f"{n_params / 1e6:.2f}M float32 parameters, {jax.devices()[0].platform}, median of {args.repeats}")
    print()
    print("| rule | jax231 ms | optax ms | ratio | CPU-time ratio | jax231 GB/s | copy GB/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.rules.split(","):
        ours_fn, theirs_fn, n_state = RULES[name]

        def fresh_calls():  # donated buffers are consumed: each measurement gets its own
            calls = {}
            for label, factory in (("ours", ours_fn), ("optax", theirs_fn)):
                opt = factory()
                params = make_tree(0)
                calls[label] = (make_step(opt), (params, opt.init(params), grads))
            calls["copy"] = (copy, (make_tree(2),))
            return calls

        # alternate the contenders (and the copy) within each round: all see the same load
        times = time_interleaved(fresh_calls(), repeats=args.repeats, warmup=2, carry=True)
        cpu = time_interleaved(fresh_calls(), repeats=args.repeats, warmup=2, carry=True, clock=time.process_time)
        # read params, grads and each state tree; write params and each state tree
        moved = tree_bytes * (3 + 2 * n_state)
        print(
            f"| {name} | {1e3 * times['ours']:.2f} | {1e3 * times['optax']:.2f} | "
            f"{times['ours'] / times['optax']:.2f} | {cpu['ours'] / cpu['optax']:.2f} | "
            f"{moved / times['ours'] / 1e9:.1f} | {2 * tree_bytes / times['copy'] / 1e9:.1f} |"
        )


if __name__ == "__main__":
    main()
