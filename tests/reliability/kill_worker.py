"""A training run that SIGKILLs itself at a chosen moment, and the resumption that follows.

``python -m tests.reliability.kill_worker run WORKDIR MOMENT``: trains the tiny
digits MLP (augmented through ``batch_fn``) with checkpoints every 10 steps and
evaluations every 5, and kills itself with ``SIGKILL`` (no cleanup, no atexit,
as ``kill -9``) at ``MOMENT``:

* ``before_first_checkpoint``: at the evaluation of step 5;
* ``between_checkpoints``: at the evaluation of step 15 (checkpoint 10 written);
* ``inside_write_items``: inside checkpoint 10's write, when orbax renames its
  first finished item (the step directory is still a tmp directory);
* ``inside_write_finalize``: at the rename of checkpoint 10's tmp directory onto
  ``10`` (every file written, the checkpoint not yet visible);
* ``after_last_checkpoint``: right after checkpoint 20 became visible.

``python -m tests.reliability.kill_worker resume OUT FRESH WORKDIR...``: runs a fresh
uninterrupted run in ``FRESH`` and each killed workdir to the end (resuming), and saves every
final parameter set to ``OUT`` (``.npz``) for a bitwise comparison.
"""

from __future__ import annotations

import os
import signal
import sys

import jax
import numpy as np
from orbax.checkpoint._src.path import async_path

from jax231 import models, optimizers, pipelines, training

NUM_STEPS = 20
MODEL = models.get("mlp", hidden_sizes=(16,), num_classes=10)
OPT = optimizers.adam(learning_rate=1e-2)


def augment(key, batch):
    """On-device crops and flips: the augmentation stream is part of what must resume exactly."""
    return {**batch, "image": pipelines.augment_batch(key, batch["image"], pad_crop=1)}


def data() -> dict:
    train = pipelines.load_arrays("digits", "train[:256]")
    return {"image": train["image"], "label": train["label"]}


def fit(workdir: str, eval_fn=None) -> training.FitResult:
    return training.fit(
        MODEL,
        OPT,
        train=data(),
        num_steps=NUM_STEPS,
        batch_size=32,
        eval_every=5,
        checkpoint_every=10,
        seed=3,
        workdir=workdir,
        batch_fn=augment,
        eval_fn=eval_fn,
        check_initial_loss=False,
    )


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_at_rename(checkpoints: str, step: int, *, finalize: bool, after: bool = False) -> None:
    original = async_path.rename

    async def rename(src_path, dst_path):
        dst = str(dst_path)
        is_step_dir = os.path.dirname(dst) == checkpoints
        inside_step = os.path.basename(os.path.dirname(dst)).startswith(f"{step}.orbax-checkpoint-tmp")
        if not after and ((finalize and is_step_dir and dst.endswith(f"/{step}")) or (not finalize and inside_step)):
            _die()
        out = await original(src_path, dst_path)
        if after and is_step_dir and dst.endswith(f"/{step}"):
            _die()
        return out

    async_path.rename = rename


def run(workdir: str, moment: str) -> None:
    checkpoints = os.path.join(os.path.realpath(workdir), "checkpoints")
    eval_fn = None
    if moment in ("before_first_checkpoint", "between_checkpoints"):
        at = 5 if moment == "before_first_checkpoint" else 15

        def eval_fn(step, state):
            if step == at:
                _die()
    elif moment == "inside_write_items":
        _kill_at_rename(checkpoints, 10, finalize=False)
    elif moment == "inside_write_finalize":
        _kill_at_rename(checkpoints, 10, finalize=True)
    elif moment == "after_last_checkpoint":
        _kill_at_rename(checkpoints, NUM_STEPS, finalize=True, after=True)
    else:
        raise SystemExit(f"unknown moment {moment!r}")
    fit(workdir, eval_fn)
    raise SystemExit("the run was not killed")


def resume(out: str, workdirs: list[str]) -> None:
    arrays = {}
    for workdir in workdirs:  # the first is a fresh workdir: the uninterrupted run
        name = "uninterrupted" if workdir == workdirs[0] else os.path.basename(workdir)
        result = fit(workdir)
        arrays[f"{name}/status"] = np.asarray(result.status)
        arrays[f"{name}/step"] = np.asarray(int(result.state.step))
        for path, leaf in jax.tree_util.tree_leaves_with_path(result.state.params):
            arrays[f"{name}/{jax.tree_util.keystr(path)}"] = np.asarray(leaf)
    np.savez(out, **arrays)


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3])
    else:
        resume(sys.argv[2], sys.argv[3:])
