"""Greedy NMS of 1,000 boxes: ``jax231.detection.nms`` under ``jit`` vs NumPy (and torchvision).

Run from the repo root::

    python -m benchmarks.bench_nms [--repeats 7] [--num_boxes 1000]

Random boxes on a 512x512 image (corners uniform, sides 8-128 px), scores uniform, IoU
threshold 0.5, every box allowed out (``max_output_size = N``). Contenders, timed in
alternation round by round (median of ``--repeats`` rounds after a warm-up round that
compiles jax231's program):

* ``jax231 nms (jit)``: the pairwise IoU matrix, then one ``lax.fori_loop`` over the sorted boxes;
* ``NumPy greedy``: the usual vectorised loop (take the best box, drop those above the threshold);
* ``torchvision.ops.nms`` (CPU) when torchvision is installed (skipped with a note otherwise).

Before timing, the kept indices of every contender are checked equal. Printed: a table of
median milliseconds and the ratio to jax231.
"""

from __future__ import annotations

import argparse
import importlib.util
import os

import jax
import numpy as np

from benchmarks._timing import time_interleaved
from jax231 import detection


def numpy_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """The NumPy peer: vectorised greedy NMS (ties broken by index, as jax231 and torchvision)."""
    order = np.lexsort((np.arange(len(scores)), -scores))
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        wh = np.clip(np.minimum(boxes[i, 2:], boxes[rest, 2:]) - np.maximum(boxes[i, :2], boxes[rest, :2]), 0, None)
        inter = wh[:, 0] * wh[:, 1]
        iou = inter / (area[i] + area[rest] - inter)
        order = rest[iou <= threshold]
    return np.asarray(keep)


def make_boxes(num_boxes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 512, size=(num_boxes, 2))
    wh = rng.uniform(8, 128, size=(num_boxes, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32), rng.uniform(size=num_boxes).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--num_boxes", type=int, default=1000)
    args = parser.parse_args()
    boxes, scores = make_boxes(args.num_boxes)
    n = args.num_boxes
    jitted = jax.jit(lambda b, s: detection.nms(b, s, iou_threshold=0.5, max_output_size=n))
    b_dev, s_dev = jax.device_put(boxes), jax.device_put(scores)

    def ours(b, s):
        return jitted(b, s).indices

    calls = {"jax231 nms (jit)": (ours, (b_dev, s_dev)), "NumPy greedy": (numpy_nms, (boxes, scores, 0.5))}
    out = jitted(b_dev, s_dev)
    kept = np.asarray(out.indices)[np.asarray(out.valid)]
    np.testing.assert_array_equal(kept, numpy_nms(boxes, scores, 0.5))
    note = "torchvision: not installed here (torch alone is), so its row is absent"
    if importlib.util.find_spec("torchvision") is not None:
        import torch
        import torchvision

        tb, ts = torch.from_numpy(boxes), torch.from_numpy(scores)
        np.testing.assert_array_equal(kept, torchvision.ops.nms(tb, ts, 0.5).numpy())
        calls["torchvision.ops.nms (CPU)"] = (lambda b, s: torchvision.ops.nms(b, s, 0.5), (tb, ts))
        note = f"torchvision {torchvision.__version__}"
    times = time_interleaved(calls, repeats=args.repeats, warmup=1)
    dev = jax.devices()[0]
    print(f"device: {dev.platform}, {os.cpu_count()} host CPUs; {n} boxes, IoU 0.5, {len(kept)} kept; {note}")
    print()
    print("| implementation | median ms | time / jax231 |")
    print("|---|---:|---:|")
    ref = times["jax231 nms (jit)"]
    for name, seconds in times.items():
        print(f"| {name} | {1e3 * seconds:,.2f} | {seconds / ref:.2f} |")


if __name__ == "__main__":
    main()
