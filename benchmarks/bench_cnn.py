"""CNN train-step throughput: jax231 against flax.linen + optax and PyTorch, measured in one run.

Run from the repo root::

    python -m benchmarks.bench_cnn [--repeats 7] [--rounds 5] [--nets vgg,resnet20] [--layers]

PyTorch is an optional peer (``pip install -e '.[bench]'``); without it its rows are left out.

Nets (float32, NHWC for JAX, channels-last for PyTorch, batch 128, 32x32x3 inputs, 10 classes,
softmax cross-entropy, Adam lr 1e-3, He-normal fan-in initialisation everywhere):

* ``vgg``: the ``cifar10_cnn`` preset of ``experiments/train`` -- conv3x3 32-64-128 (no bias),
  batch norm, ReLU, 2x2 max pool after each, FC 256, FC 10 (0.60 GFLOP forward per batch... see
  the printed table for the exact count);
* ``resnet20``: ``models.get('resnet', depth=20)`` (3 stages of 3 basic blocks, 16-32-64 channels).

jax231 runs twice: ``jax231`` is the jitted step (``training.jit_train_step``) called once per
step from Python, like the peers; ``jax231, fit's loop`` runs the same step ``--repeats`` times as
one compiled ``training.run_steps`` program (how ``training.fit`` trains: batches gathered on the
device from 1,024 random images, fit's explosion guard on the loss). The loop used to be ~15%
faster than the jitted step on XLA:CPU because each call of a program mapped its temporaries
afresh: a ResNet-20 step's ~230 MB (one ``posix_memalign`` from an XLA worker thread, served by
``mmap``) page-faulted in every call. ``import jax231`` now tunes glibc malloc so those pages are
reused (``jax231/_host_malloc.py``; ``JAX231_HOST_MALLOC=0`` measures the old behaviour).

Each contender runs ``--repeats`` train steps per round (state carried, buffers donated where
the framework allows), rounds interleaved so all see the same load on a shared machine; the
table gives the median images/s over rounds, GFLOP/s (3 x the forward FLOPs of convolutions
and dense layers per batch, the usual forward + two backward products) and the ratio to each
peer. ``--layers`` adds the per-layer table of the preset's three stages and of ResNet-20's
3x3 convolutions at its three widths (16, 32, 64 channels on 32x32, 16x16, 8x8): forward, input
gradient and filter gradient of each convolution for every implementation of ``layers.conv2d``
(``impl='xla'|'im2col'|'native'``) and for PyTorch (``aten.convolution_backward``), and forward /
forward + backward of each stage's batch norm -> ReLU -> 2x2 max pool (``layers.batch_norm``
``'autodiff'|'fused'`` with ``layers.max_pool`` ``'reduce_window'|'reshape'``, and PyTorch).

On a loaded machine PyTorch's two OpenMP threads collapse (slower than one); the one-core
comparison ``taskset -c 1 python -m benchmarks.bench_cnn --torch_threads 1`` pins every
contender to the same core and is the fair one then (README's bench_cnn row).

``import jax231`` makes XLA:CPU run convolutions in Eigen instead of YNNPACK
(``jax231/_xla_cpu.py``; the header line says which); the flax.linen contender runs in the
same process, so it gets the same kernels. ``JAX231_XLA_CPU_FLAGS=0`` measures the old setting.

``--loop`` times one ``impl='xla'`` convolution update (forward, both gradients, an SGD step on
the filter) three ways: a jitted update called per step, the same update as the body of a
``lax.scan`` (the compiled chunk of ``fit``), and that scan with the update passed through
``training.loop_body`` (every convolution in XLA:CPU's canonical layout; see
``jax231/training/_conv_layout.py`` for the root cause). CPU seconds per update, medians of
interleaved rounds.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from benchmarks._timing import time_interleaved
from jax231 import _xla_cpu, models, optimizers, training
from jax231.models import layers

try:  # optional peer
    import torch
except ImportError:  # pragma: no cover - the bench extra is not installed
    torch = None

BATCH = 128
FIT_LOOP = "jax231, fit's loop"
"""The contender that runs ``--repeats`` steps as one compiled ``training.run_steps`` call."""
LR = 1e-3
EXPLOSION_FACTOR = 3.0
"""``training.fit``'s default ``explosion_factor``, the guard of the fit's-loop contender."""
NUM_CLASSES = 10
VGG_WIDTHS = (32, 64, 128)
VGG_HIDDEN = 256


# ----------------------------------------------------------------------------- FLOPs


def vgg_forward_flops(batch: int = BATCH) -> float:
    """Multiply-adds x 2 of the preset's convolutions and dense layers, one forward pass."""
    flops, hw, c_in = 0.0, 32, 3
    for width in VGG_WIDTHS:
        flops += 2 * batch * hw * hw * 9 * c_in * width
        hw, c_in = hw // 2, width
    flops += 2 * batch * (hw * hw * c_in * VGG_HIDDEN + VGG_HIDDEN * NUM_CLASSES)
    return flops


def resnet20_forward_flops(batch: int = BATCH) -> float:
    """The same count for ResNet-20 (3x3 convs, 1x1 projection shortcuts, head)."""
    flops = 2 * batch * 32 * 32 * 9 * 3 * 16  # stem
    c_in, hw = 16, 32
    for stage, width in enumerate((16, 32, 64)):
        for block in range(3):
            stride = 2 if stage > 0 and block == 0 else 1
            hw_out = hw // stride
            flops += 2 * batch * hw_out * hw_out * 9 * c_in * width
            flops += 2 * batch * hw_out * hw_out * 9 * width * width
            if stride != 1 or c_in != width:
                flops += 2 * batch * hw_out * hw_out * c_in * width
            c_in, hw = width, hw_out
    return flops + 2 * batch * 64 * NUM_CLASSES


# ----------------------------------------------------------------------------- jax231


def jax231_step(net: str) -> tuple[Callable, tuple]:
    """jax231's jitted, donated train step and its initial ``(state, batch)``."""
    step, state = _jax231_setup(net)
    jitted = training.jit_train_step(step)
    return (lambda s, b: (jitted(s, b)[0],)), (state, _batch())


def jax231_loop(net: str, steps: int) -> tuple[Callable, tuple]:
    """``steps`` of the same train step as one ``training.run_steps`` program (fit's compiled loop).

    The batches come from 1,024 device-resident random images in fit's epoch order and fit's
    explosion guard on the loss is on, so each step does a little more than :func:`jax231_step`'s.
    """
    step, state = _jax231_setup(net)
    data = _batch(8 * BATCH, seed=1)
    initial_loss = training.expected_initial_loss(NUM_CLASSES)

    def program(state):
        out = training.run_steps(
            step,
            state,
            steps,
            data=data,
            data_key=jax.random.key(2),
            batch_size=BATCH,
            is_bad=lambda m: training.is_exploded(m["loss"], initial_loss, EXPLOSION_FACTOR),
        )
        return (out.state,)

    return jax.jit(program, donate_argnums=0), (state,)


def _jax231_setup(net: str) -> tuple[Callable, Any]:
    """The (unjitted) train step of ``net`` with Adam, and its initial state."""
    if net == "vgg":
        model = models.get(
            "vgg", stage_widths=VGG_WIDTHS, convs_per_stage=(1, 1, 1), hidden_dims=(VGG_HIDDEN,), norm="batch"
        )
    else:
        model = models.get("resnet", depth=20)
    opt = optimizers.adam(learning_rate=LR)
    state = training.create_train_state(model, opt, rng=jax.random.key(0), input_shape=(32, 32, 3))
    return training.make_train_step(model, opt), state


def _batch(size: int = BATCH, *, seed: int = 0) -> dict[str, jax.Array]:
    rng = np.random.default_rng(seed)
    return {
        "image": jnp.asarray(rng.normal(size=(size, 32, 32, 3)), jnp.float32),
        "label": jnp.asarray(rng.integers(0, NUM_CLASSES, size), jnp.int32),
    }


# ----------------------------------------------------------------------------- flax.linen


class FlaxVGG(nn.Module):
    """The flax.linen twin of the preset's net."""

    @nn.compact
    def __call__(self, x, train: bool):
        init = nn.initializers.he_normal()
        for width in VGG_WIDTHS:
            x = nn.Conv(width, (3, 3), padding=1, use_bias=False, kernel_init=init)(x)
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
            x = nn.max_pool(nn.relu(x), (2, 2), (2, 2))
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(VGG_HIDDEN, kernel_init=init)(x))
        return nn.Dense(NUM_CLASSES, kernel_init=init)(x)


class FlaxBlock(nn.Module):
    width: int
    stride: int

    @nn.compact
    def __call__(self, x, train: bool):
        init = nn.initializers.he_normal()
        bn = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9)  # noqa: E731
        h = nn.Conv(self.width, (3, 3), self.stride, padding="SAME", use_bias=False, kernel_init=init)(x)
        h = nn.relu(bn()(h))
        h = bn()(nn.Conv(self.width, (3, 3), padding="SAME", use_bias=False, kernel_init=init)(h))
        if self.stride != 1 or x.shape[-1] != self.width:
            x = bn()(nn.Conv(self.width, (1, 1), self.stride, use_bias=False, kernel_init=init)(x))
        return nn.relu(x + h)


class FlaxResNet20(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool):
        init = nn.initializers.he_normal()
        x = nn.Conv(16, (3, 3), padding="SAME", use_bias=False, kernel_init=init)(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
        for stage, width in enumerate((16, 32, 64)):
            for block in range(3):
                x = FlaxBlock(width, 2 if stage > 0 and block == 0 else 1)(x, train)
        return nn.Dense(NUM_CLASSES, kernel_init=init)(jnp.mean(x, axis=(1, 2)))


def flax_step(net: str) -> tuple[Callable, tuple]:
    """A flax.linen + optax train step in the style of the flax examples."""
    module = FlaxVGG() if net == "vgg" else FlaxResNet20()
    batch = _batch()
    variables = module.init(jax.random.key(0), batch["image"], train=False)
    tx = optax.adam(LR)
    params, stats = variables["params"], variables["batch_stats"]

    def step(params, stats, opt_state, batch):
        def loss_fn(p):
            logits, updates = module.apply(
                {"params": p, "batch_stats": stats}, batch["image"], train=True, mutable=["batch_stats"]
            )
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
            return loss, updates["batch_stats"]

        (_, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_stats, opt_state

    jitted = jax.jit(step, donate_argnums=(0, 1, 2))
    return jitted, (params, stats, tx.init(params), batch)


# ----------------------------------------------------------------------------- PyTorch


def torch_step(net: str) -> tuple[Callable, tuple]:
    """The same net in PyTorch (CPU build), channels-last, ``torch.optim.Adam``."""
    tnn = torch.nn
    if net == "vgg":
        mods: list = []
        c_in = 3
        for width in VGG_WIDTHS:
            mods += [
                tnn.Conv2d(c_in, width, 3, padding=1, bias=False),
                tnn.BatchNorm2d(width, momentum=0.1),
                tnn.ReLU(),
                tnn.MaxPool2d(2),
            ]
            c_in = width
        mods += [tnn.Flatten(), tnn.Linear(c_in * 16, VGG_HIDDEN), tnn.ReLU(), tnn.Linear(VGG_HIDDEN, NUM_CLASSES)]
        module = tnn.Sequential(*mods)
    else:
        module = _torch_resnet20()
    for m in module.modules():
        if isinstance(m, (tnn.Conv2d, tnn.Linear)):
            tnn.init.kaiming_normal_(m.weight)
    module = module.to(memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(module.parameters(), lr=LR)
    rng = np.random.default_rng(0)
    images = torch.tensor(rng.normal(size=(BATCH, 3, 32, 32)), dtype=torch.float32).contiguous(
        memory_format=torch.channels_last
    )
    labels = torch.tensor(rng.integers(0, NUM_CLASSES, BATCH))
    loss_fn = tnn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(module(images), labels)
        loss.backward()
        opt.step()
        return loss.detach()

    return step, ()


def _torch_resnet20():
    tnn = torch.nn

    class Block(tnn.Module):
        def __init__(self, c_in, width, stride):
            super().__init__()
            self.c1 = tnn.Conv2d(c_in, width, 3, stride, 1, bias=False)
            self.b1 = tnn.BatchNorm2d(width)
            self.c2 = tnn.Conv2d(width, width, 3, 1, 1, bias=False)
            self.b2 = tnn.BatchNorm2d(width)
            self.short = None
            if stride != 1 or c_in != width:
                self.short = tnn.Sequential(tnn.Conv2d(c_in, width, 1, stride, bias=False), tnn.BatchNorm2d(width))

        def forward(self, x):
            h = torch.relu(self.b1(self.c1(x)))
            h = self.b2(self.c2(h))
            return torch.relu((x if self.short is None else self.short(x)) + h)

    mods = [tnn.Conv2d(3, 16, 3, padding=1, bias=False), tnn.BatchNorm2d(16), tnn.ReLU()]
    c_in = 16
    for stage, width in enumerate((16, 32, 64)):
        for block in range(3):
            mods.append(Block(c_in, width, 2 if stage > 0 and block == 0 else 1))
            c_in = width
    mods += [tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Linear(64, NUM_CLASSES)]
    return tnn.Sequential(*mods)


# ----------------------------------------------------------------------------- timing


def _runner(
    fn: Callable, args: tuple, calls: int, *, carry: bool, steps_per_call: int = 1
) -> Callable[[], tuple[float, float]]:
    """A closure timing ``calls`` calls of ``steps_per_call`` steps each: (wall, CPU) seconds per step.

    JAX state is carried (donated) from call to call.
    """
    state = {"args": args}
    steps = calls * steps_per_call

    def run() -> tuple[float, float]:
        args = state["args"]
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(calls):
            out = fn(*args)
            if carry:
                out = out if isinstance(out, tuple) else (out,)
                args = out + args[len(out) :]
        jax.block_until_ready(out)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        state["args"] = args
        return elapsed / steps, cpu / steps

    run()  # warm-up: compilation, allocator
    return run


def bench_net(net: str, *, repeats: int, rounds: int) -> list[dict[str, Any]]:
    contenders: dict[str, Callable[[], tuple[float, float]]] = {
        "jax231": _runner(*jax231_step(net), repeats, carry=True),
        FIT_LOOP: _runner(*jax231_loop(net, repeats), 1, carry=True, steps_per_call=repeats),
        "flax.linen + optax": _runner(*flax_step(net), repeats, carry=True),
    }
    if torch is not None:
        contenders[f"PyTorch {torch.__version__}"] = _runner(*torch_step(net), repeats, carry=False)
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in contenders}
    for _ in range(rounds):
        for name, run in contenders.items():
            times[name].append(run())
    flops = 3 * (vgg_forward_flops() if net == "vgg" else resnet20_forward_flops())
    wall = {k: statistics.median(t[0] for t in v) for k, v in times.items()}
    cpu = {k: statistics.median(t[1] for t in v) for k, v in times.items()}
    peers = [p for p in wall if not p.startswith("jax231")]
    rows = []
    for name, t in wall.items():
        rows.append(
            {
                "net": net,
                "framework": name,
                "img/s": BATCH / t,
                "GFLOP/s": flops / t / 1e9,
                "ms/step": 1e3 * t,
                "CPU ms/step": 1e3 * cpu[name],
                **{f"img/s ratio vs {p}": wall[p] / t for p in peers},
                **{f"CPU-time ratio vs {p}": cpu[p] / cpu[name] for p in peers},
            }
        )
    return rows


# ----------------------------------------------------------------------------- per layer


def _conv_pieces(x: jax.Array, w: jax.Array, impl: str) -> dict[str, tuple[Callable, tuple]]:
    """``{piece: (jitted fn, args)}``: forward, input gradient and filter gradient of one convolution."""
    conv = lambda x, w: layers.conv2d(x, w, padding=1, impl=impl)  # noqa: E731
    dy = jnp.ones(jax.eval_shape(conv, x, w).shape)
    return {
        "fwd": (jax.jit(conv), (x, w)),
        "d/dx": (jax.jit(lambda x, w: jax.vjp(lambda x: conv(x, w), x)[1](dy)[0]), (x, w)),
        "d/dw": (jax.jit(lambda x, w: jax.vjp(lambda w: conv(x, w), w)[1](dy)[0]), (x, w)),
    }


def _block_pieces(x: jax.Array, bn_impl: str, pool_impl: str) -> dict[str, tuple[Callable, tuple]]:
    """Batch norm -> ReLU -> 2x2 max pool of one stage: forward, and forward + backward."""
    c = x.shape[-1]

    def block(x, g, b):
        y = layers.batch_norm(x, g, b, jnp.zeros(c), jnp.ones(c), train=True, impl=bn_impl)[0]
        return layers.max_pool(jax.nn.relu(y), impl=pool_impl)

    args = (x, jnp.ones(c), jnp.zeros(c))
    cot = jnp.ones(jax.eval_shape(block, *args).shape)
    return {
        "fwd": (jax.jit(block), args),
        "fwd+bwd": (jax.jit(lambda *a: jax.vjp(block, *a)[1](cot)), args),
    }


def _torch_conv_pieces(x: jax.Array, w: jax.Array) -> dict[str, tuple[Callable, tuple]]:
    """The same three pieces in PyTorch (channels-last, ``aten.convolution_backward``)."""
    xt = torch.tensor(np.asarray(x)).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    wt = torch.tensor(np.asarray(w)).permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
    dy = torch.ones(xt.shape[0], wt.shape[0], *xt.shape[2:]).contiguous(memory_format=torch.channels_last)

    def backward(mask):
        return lambda: torch.ops.aten.convolution_backward(
            dy, xt, wt, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask
        )

    return {
        "fwd": (lambda: torch.nn.functional.conv2d(xt, wt, padding=1), ()),
        "d/dx": (backward([True, False, False]), ()),
        "d/dw": (backward([False, True, False]), ()),
    }


def _torch_block_pieces(x: jax.Array) -> dict[str, tuple[Callable, tuple]]:
    xt = torch.tensor(np.asarray(x)).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    xt.requires_grad_(True)
    bn = torch.nn.BatchNorm2d(xt.shape[1]).train()
    block = lambda: torch.nn.functional.max_pool2d(torch.relu(bn(xt)), 2)  # noqa: E731

    def fwd_bwd():
        y = block()
        y.backward(torch.ones_like(y))
        return y.detach()

    return {"fwd": (lambda: block().detach(), ()), "fwd+bwd": (fwd_bwd, ())}


def _layer_cases() -> list[tuple[str, str, dict[str, tuple[Callable, tuple]]]]:
    """(layer, implementation, pieces) for the preset's three stages and ResNet-20's three widths, every
    implementation and PyTorch."""
    key = jax.random.key(0)
    cases = []
    for hw, c_in, c_out in ((32, 3, 32), (16, 32, 64), (8, 64, 128), (32, 16, 16), (16, 32, 32), (8, 64, 64)):
        x = jax.random.normal(key, (BATCH, hw, hw, c_in))
        w = jax.random.normal(key, (3, 3, c_in, c_out)) * 0.1
        layer = f"conv {hw}x{hw}, {c_in}->{c_out}"
        native = jax.default_backend() == "cpu" and layers.native_kernels().available  # XLA:CPU kernels only
        impls = ("xla", "im2col", "native") if native else ("xla", "im2col")
        cases += [(layer, impl, _conv_pieces(x, w, impl)) for impl in impls]
        if torch is not None:
            cases.append((layer, "PyTorch", _torch_conv_pieces(x, w)))
    for hw, c in ((32, 32), (16, 64), (8, 128)):
        x = jax.random.normal(key, (BATCH, hw, hw, c))
        layer = f"BN-ReLU-pool {hw}x{hw}x{c}"
        for bn_impl, pool_impl in (("autodiff", "reduce_window"), ("fused", "reshape")):
            cases.append((layer, f"{bn_impl} BN, {pool_impl} pool", _block_pieces(x, bn_impl, pool_impl)))
        if torch is not None:
            cases.append((layer, "PyTorch", _torch_block_pieces(x)))
    return cases


def bench_layers(*, repeats: int) -> list[dict[str, Any]]:
    """Per-piece milliseconds (medians of interleaved rounds) of :func:`_layer_cases`."""
    calls, keys = {}, []
    for layer, impl, pieces in _layer_cases():
        for piece, (fn, args) in pieces.items():
            calls[f"{layer}|{impl}|{piece}"] = (fn, args)
        keys.append((layer, impl, tuple(pieces)))
    times = time_interleaved(calls, repeats=repeats)
    return [
        {"layer": layer, "impl": impl, **{f"{p} ms": 1e3 * times[f"{layer}|{impl}|{p}"] for p in pieces}}
        for layer, impl, pieces in keys
    ]


# ----------------------------------------------------------------------------- in a loop body


def _loop_cases(repeats: int) -> dict[str, Callable[[], Any]]:
    """``{case|path: call}``: ``repeats`` updates of one conv layer per call, three paths."""
    key = jax.random.key(1)
    calls: dict[str, Callable[[], Any]] = {}
    for hw, c_in, c_out in ((32, 3, 32), (8, 64, 128)):
        x = jax.random.normal(key, (BATCH, hw, hw, c_in))
        w0 = jax.random.normal(key, (3, 3, c_in, c_out)) * 0.1

        def update(w, x=x):
            gw, gx = jax.grad(lambda w, x: jnp.sum(layers.conv2d(x, w, padding=1, impl="xla") ** 2), (0, 1))(w, x)
            return w - 1e-6 * gw, jnp.sum(gx)

        def scan_of(update):
            return jax.jit(lambda w: lax.scan(lambda c, _: update(c), w, None, length=repeats)[0])

        jit_update = jax.jit(update)

        def plain(w=w0, jit_update=jit_update):
            for _ in range(repeats):
                w, _ = jit_update(w)
            return w

        case = f"conv {hw}x{hw}, {c_in}->{c_out}"
        calls[f"{case}|jitted update, Python loop"] = plain
        calls[f"{case}|lax.scan body (before)"] = functools.partial(scan_of(update), w0)
        calls[f"{case}|lax.scan body, training.loop_body"] = functools.partial(scan_of(training.loop_body(update)), w0)
    return calls


def bench_loop(*, repeats: int, rounds: int) -> list[dict[str, Any]]:
    calls = _loop_cases(repeats)
    for call in calls.values():
        jax.block_until_ready(call())  # compile
    cpu: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.process_time()
            jax.block_until_ready(call())
            cpu[name].append((time.process_time() - start) / repeats)
    rows = []
    for name, times in cpu.items():
        case, path = name.split("|")
        plain = statistics.median(cpu[f"{case}|jitted update, Python loop"])
        t = statistics.median(times)
        rows.append({"layer": case, "path": path, "CPU ms/update": 1e3 * t, "vs jitted update": t / plain})
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    fmt = lambda v: f"{v:,.2f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="train steps per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median over them)")
    parser.add_argument("--nets", default="vgg,resnet20", help="comma list of vgg, resnet20")
    parser.add_argument("--layers", action="store_true", help="also print the per-layer table")
    parser.add_argument("--loop", action="store_true", help="only the conv update in a loop body (see above)")
    parser.add_argument(
        "--torch_threads", type=int, default=0, help="PyTorch's intra-op threads (0: its default, one per core)"
    )
    args = parser.parse_args(argv)
    if args.torch_threads < 0:
        parser.error(f"--torch_threads: expected an int >= 0, got {args.torch_threads}")
    if torch is not None and args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    nets = [n for n in args.nets.split(",") if n]
    for n in nets:
        if n not in ("vgg", "resnet20"):
            parser.error(f"--nets: expected a comma list of vgg, resnet20, got {n!r}")
    print(
        f"jax {jax.__version__} on {jax.devices()[0].device_kind}; batch {BATCH}, float32; XLA:CPU convolutions in "
        + ("Eigen" if _xla_cpu.convolutions_in_eigen() else "YNNPACK")
        + ("" if torch is None else f"; torch {torch.__version__}, {torch.get_num_threads()} threads")
    )
    if args.loop:
        print(_table(bench_loop(repeats=args.repeats, rounds=args.rounds)))
        return
    rows = [r for n in nets for r in bench_net(n, repeats=args.repeats, rounds=args.rounds)]
    print(_table(rows))
    if args.layers:
        print()
        print(_table(bench_layers(repeats=args.repeats)))


if __name__ == "__main__":
    main()
