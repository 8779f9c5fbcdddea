"""The speedrun's PyTorch peer: airbench's recipe in PyTorch, on the same data, for accuracy and time.

Run from the repo root (needs the ``bench`` extra, ``pip install -e '.[bench]'``)::

    python -m benchmarks.speedrun_torch --preset cpu93 [--seeds 0,1,2] [--epochs 11] [--threads 2]

It reads the preset of ``experiments/speedrun/config.py`` (widths, epochs, batch size, learning
rate, momentum, weight decay, bias scaler, label smoothing, whitening, schedule, Lookahead,
translations) and the same images (``experiments.speedrun.experiment.load_data``), and trains
airbench's network the way ``airbench93.py`` / ``airbench94.py`` do, written here from their
description: PyTorch's SGD with Nesterov momentum on the SUM of the batch's losses, a rate of
``lr / (1024 (1 + 1 / (1 - mu)))`` and an L2 strength of ``weight_decay B / (1024 (1 + 1 / (1 -
mu))) / rate`` per group (the batch-norm shifts at ``bias_scaler`` times the rate),
``LambdaLR`` over the triangular schedule, a random half of the images mirrored once and every
image mirrored in the odd epochs, translations by up to 2 pixels of reflect-padded images drawn
once per epoch, the whitening bias frozen after ``whiten_bias_epochs``, Lookahead from epoch 3 on
every parameter AND buffer (batch-norm running statistics too) with the cubic ramp of its decay,
and airbench's test-time augmentation (logits ``0.5 mirror(x) + 0.25 mirror(x shifted by (-1, -1))
+ 0.25 mirror(x shifted by (1, 1))``, reflect padding).

Its table (one row per seed: test accuracy without and with TTA, training seconds without
compilation or evaluation) is the reference the jax231 speedrun is compared with: the same
recipe on the same JPEG copy of CIFAR-10 tells how much of a gap to airbench's published figures
is the data's and how much the implementation's.

Measured (fifth session, 2026-12-01, 2-core reference CPU, load 2-3.6 from one niced helper):
``python -m benchmarks.speedrun_torch --preset cpu93 --seeds 0`` (from the prototype of this
script, the same computation) gave 88.64% without TTA and **89.43% with TTA**, 1,453 s of
training (24 min 27 s wall, 1,814 s user + 252 s sys); the jax231 speedrun's cpu93 seed 0 gave
88.42% / 89.35% in 1,277 s. So on this copy airbench93's recipe reaches ~89.4%, not the 93.0% it
reaches on true CIFAR-10: the JPEG re-encoding (quality ~75, 4:2:0 chroma) costs ~3.6 points, not
the ~0.5 the dataset README expected.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from typing import Any

import numpy as np

from experiments.speedrun import config as speedrun_config
from experiments.speedrun import experiment
from jax231 import models

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError:  # pragma: no cover - the bench extra is not installed
    torch = None  # type: ignore[assignment]

_Module: Any = nn.Module if torch is not None else object


def to_torch(images: np.ndarray) -> "torch.Tensor":
    """uint8 NHWC pixels -> normalised float32 NCHW (channels-last memory), as airbench's loader."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div(255).permute(0, 3, 1, 2)
    mean = torch.tensor(models.CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(models.CIFAR10_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


def whitening_weights(images: "torch.Tensor", patch_size: int, eps: float) -> "torch.Tensor":
    """airbench's whitening filters ``(2 D, C, k, k)``: eigenvectors of the stride-1 patch second moment
    over ``sqrt(lambda + eps)``, in decreasing eigenvalue order, both signs (float64 eigh)."""
    c, k = images.shape[1], patch_size
    patches = images.unfold(2, k, 1).unfold(3, k, 1).transpose(1, 3).reshape(-1, c, k, k)
    flat = patches.reshape(len(patches), -1).double()
    eigenvalues, vectors = torch.linalg.eigh(flat.T @ flat / len(flat))
    eigenvalues, vectors = eigenvalues.flip(0).view(-1, 1, 1, 1), vectors.T.reshape(c * k * k, c, k, k).flip(0)
    scaled = vectors / torch.sqrt(eigenvalues.clamp_min(0) + eps)
    return torch.cat((scaled, -scaled)).float()


def _conv(c_in: int, c_out: int) -> "nn.Conv2d":
    """3x3 'same' conv without bias, PyTorch's default init, then identity on its first ``c_in`` filters."""
    conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding="same", bias=False)
    torch.nn.init.dirac_(conv.weight.data[:c_in])
    return conv


def _norm(channels: int) -> "nn.BatchNorm2d":
    """Batch norm with a frozen scale, eps 1e-12, running statistics kept at 0.6 old / 0.4 new."""
    norm = nn.BatchNorm2d(channels, eps=1e-12, momentum=0.4)
    norm.weight.requires_grad = False
    return norm


class _Group(_Module):
    """conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1, self.norm1 = _conv(c_in, c_out), _norm(c_out)
        self.conv2, self.norm2 = _conv(c_out, c_out), _norm(c_out)

    def forward(self, x):
        x = F.gelu(self.norm1(F.max_pool2d(self.conv1(x), 2)))
        return F.gelu(self.norm2(self.conv2(x)))


class _Scale(_Module):
    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return x * self.scale


def make_net(config: Any, whitening: "torch.Tensor") -> "nn.Sequential":
    """airbench's network for ``config.widths`` with the given whitening filters (frozen)."""
    width = whitening.shape[0]
    whiten = nn.Conv2d(3, width, kernel_size=config.whiten_patch_size, padding=0, bias=True)
    whiten.weight.data[:] = whitening
    whiten.bias.data.zero_()
    whiten.weight.requires_grad = False
    w1, w2, w3 = config.widths
    net = nn.Sequential(
        whiten,
        nn.GELU(),
        _Group(width, w1),
        _Group(w1, w2),
        _Group(w2, w3),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Linear(w3, 10, bias=False),
        _Scale(config.head_scale),
    )
    return net.to(memory_format=torch.channels_last)


def _translate(padded: "torch.Tensor", pad: int, generator: "torch.Generator") -> "torch.Tensor":
    """A random crop of every reflect-padded image: a shift of up to ``pad`` pixels each way."""
    n, size = len(padded), padded.shape[-1] - 2 * pad
    shifts = torch.randint(-pad, pad + 1, (n, 2), generator=generator)
    out = torch.empty((n, padded.shape[1], size, size))
    for dy in range(-pad, pad + 1):
        for dx in range(-pad, pad + 1):
            pick = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            out[pick] = padded[pick, :, pad + dy : pad + dy + size, pad + dx : pad + dx + size]
    return out.contiguous(memory_format=torch.channels_last)


def tta_logits(net: "nn.Module", images: "torch.Tensor") -> "torch.Tensor":
    """airbench's TTA (level 2): mirror-averaged logits of the image and of its two diagonal shifts."""

    def mirrored(x):
        return 0.5 * net(x) + 0.5 * net(x.flip(-1))

    padded = F.pad(images, (1,) * 4, "reflect")
    shifted = 0.5 * mirrored(padded[:, :, :-2, :-2]) + 0.5 * mirrored(padded[:, :, 2:, 2:])
    return 0.5 * mirrored(images) + 0.5 * shifted


def accuracy(net: "nn.Module", images: "torch.Tensor", labels: "torch.Tensor", *, tta: bool) -> float:
    net.eval()
    with torch.no_grad():
        logits = torch.cat([(tta_logits(net, x) if tta else net(x)) for x in images.split(1000)])
    net.train()
    return (logits.argmax(1) == labels).float().mean().item()


def _optimizer(config: Any, net: "nn.Module", total_steps: int):
    """Nesterov SGD per group (airbench's decoupled lr and wd) and the triangular ``LambdaLR``."""
    kilostep = 1024 * (1 + 1 / (1 - config.momentum))
    lr = config.lr / kilostep
    decay = config.weight_decay * config.batch_size / kilostep
    lr_bias = lr * config.bias_scaler
    norm_biases = [p for k, p in net.named_parameters() if "norm" in k and p.requires_grad]
    others = [p for k, p in net.named_parameters() if "norm" not in k and p.requires_grad]
    groups = [
        {"params": norm_biases, "lr": lr_bias, "weight_decay": decay / lr_bias},
        {"params": others, "lr": lr, "weight_decay": decay / lr},
    ]
    optimizer = torch.optim.SGD(groups, momentum=config.momentum, nesterov=True)
    knots = (0, int(config.warmup_fraction * total_steps), total_steps)
    shape = lambda i: float(np.interp(i, knots, config.lr_knots))  # noqa: E731
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, shape)


class _Lookahead:
    """airbench's Lookahead: an average of every float tensor of the state dict, copied back."""

    def __init__(self, net: "nn.Module"):
        self.average = {k: v.clone() for k, v in net.state_dict().items()}

    def update(self, net: "nn.Module", decay: float) -> None:
        for average, current in zip(self.average.values(), net.state_dict().values()):
            if current.dtype == torch.float32:
                average.lerp_(current, 1 - decay)
                current.copy_(average)


def to_tensors(data: dict) -> dict[str, tuple["torch.Tensor", "torch.Tensor"]]:
    """``{'train', 'test'}``: normalised images (:func:`to_torch`) and int64 labels, converted once for all seeds."""
    return {
        split: (to_torch(arrays["image"]), torch.from_numpy(arrays["label"]).long()) for split, arrays in data.items()
    }


def train_seed(config: Any, tensors: dict, whitening: "torch.Tensor", seed: int) -> dict[str, float]:
    """One run of the recipe on :func:`to_tensors`'s splits with the (seed-independent) whitening
    filters: ``{'seed', 'test_accuracy', 'tta_test_accuracy', 'training_seconds'}``."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    (train_x, train_y), (test_x, test_y) = tensors["train"], tensors["test"]
    net = make_net(config, whitening)
    batch = config.batch_size
    steps_per_epoch = len(train_x) // batch
    total_steps = math.ceil(steps_per_epoch * config.epochs)
    optimizer, scheduler = _optimizer(config, net, total_steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing, reduction="none")
    flip = torch.rand(len(train_x), generator=generator) < 0.5
    images = torch.where(flip.view(-1, 1, 1, 1), train_x.flip(-1), train_x) if config.flip else train_x
    pad = config.translate
    padded = F.pad(images, (pad,) * 4, "reflect") if pad else images
    lookahead, step, seconds = None, 0, 0.0
    for epoch in range(math.ceil(config.epochs)):
        start = time.perf_counter()
        net[0].bias.requires_grad = epoch < config.whiten_bias_epochs
        epoch_images = _translate(padded, pad, generator) if pad else images
        if config.flip and epoch % 2 == 1:
            epoch_images = epoch_images.flip(-1)
        order = torch.randperm(len(epoch_images), generator=generator)
        for i in range(steps_per_epoch):
            pick = order[i * batch : (i + 1) * batch]
            loss = loss_fn(net(epoch_images[pick]), train_y[pick]).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if epoch >= 3 and step % config.lookahead_every == 0:
                if lookahead is None:
                    lookahead = _Lookahead(net)
                else:
                    decay = config.lookahead_decay**config.lookahead_every * (step / total_steps) ** 3
                    lookahead.update(net, decay)
            if step >= total_steps:
                break
        if lookahead is not None:
            lookahead.update(net, decay=1.0)
        seconds += time.perf_counter() - start
    return {
        "seed": seed,
        "test_accuracy": accuracy(net, test_x, test_y, tta=False),
        "tta_test_accuracy": accuracy(net, test_x, test_y, tta=True),
        "training_seconds": seconds,
    }


def _mean_std(values: list[float]) -> str:
    mean = 100 * statistics.fmean(values)
    return f"{mean:.2f}" if len(values) < 2 else f"{mean:.2f} ± {100 * statistics.stdev(values):.2f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu93", help="a preset of experiments/speedrun/config.py")
    parser.add_argument("--seeds", default="0", help="comma list of seeds")
    parser.add_argument("--epochs", type=float, default=0.0, help="override the preset's epochs (0: keep)")
    parser.add_argument("--threads", type=int, default=0, help="PyTorch's intra-op threads (0: its default)")
    args = parser.parse_args(argv)
    if torch is None:
        parser.exit(1, "speedrun_torch: PyTorch is not installed (pip install -e '.[bench]')\n")
    if args.preset not in speedrun_config.PRESETS:
        parser.error(f"--preset: expected one of {speedrun_config.PRESETS}, got {args.preset!r}")
    config = speedrun_config.get_config(args.preset)
    if config.optimizer != "nesterov":
        parser.error(f"--preset: expected a preset with optimizer 'nesterov', got {args.preset!r} ({config.optimizer})")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s]
    except ValueError:
        parser.error(f"--seeds: expected a comma list of ints, got {args.seeds!r}")
    if not seeds:
        parser.error(f"--seeds: expected at least one seed, got {args.seeds!r}")
    if args.epochs < 0 or args.threads < 0:
        parser.error(f"--epochs/--threads: expected values >= 0, got {args.epochs} and {args.threads}")
    if args.epochs:
        config.epochs = args.epochs
    if args.threads:
        torch.set_num_threads(args.threads)
    data = experiment.load_data(config)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; preset {args.preset}, {config.epochs} epochs")
    tensors = to_tensors(data)
    train_x = tensors["train"][0]
    whitening = whitening_weights(train_x[: config.whiten_examples], config.whiten_patch_size, config.whiten_eps)
    rows = [train_seed(config, tensors, whitening, seed) for seed in seeds]
    print("| seed | test accuracy | TTA test accuracy | training s |\n|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['seed']} | {100 * r['test_accuracy']:.2f}% | {100 * r['tta_test_accuracy']:.2f}% "
            f"| {r['training_seconds']:,.0f} |"
        )
    print(
        f"mean over {len(rows)} seed(s): {_mean_std([r['test_accuracy'] for r in rows])}% without TTA, "
        f"{_mean_std([r['tta_test_accuracy'] for r in rows])}% with TTA"
    )


if __name__ == "__main__":
    main()
