"""Orbax checkpoints of a training run: the TrainState, the best snapshot, the loop.

Atomicity: orbax writes every checkpoint into a temporary directory
(``<step>.orbax-checkpoint-tmp-*``) and renames it to ``<step>`` only once all
files are written (``CheckpointManager`` + ``AtomicRenameTemporaryPath``); a
crash mid-write leaves a tmp directory that ``latest_step`` ignores and the
previous checkpoint intact. ``tests/training/test_checkpoint.py`` checks both.
"""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import numpy as np

from jax231.training._state import TrainState

CHECKPOINT_DIR = "checkpoints"


def _is_typed_key(x: Any) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _to_savable(state: TrainState) -> TrainState:
    """Replaces a typed PRNG key by its raw uint32 data (orbax stores plain arrays)."""
    return jax.tree_util.tree_map(
        lambda x: jax.random.key_data(x) if _is_typed_key(x) else x, state
    )


def _from_savable(restored: TrainState, template: TrainState) -> TrainState:
    return jax.tree_util.tree_map(
        lambda r, t: jax.random.wrap_key_data(r, impl=jax.random.key_impl(t)) if _is_typed_key(t) else r,
        restored,
        template,
    )


def _abstract(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), tree)


class Checkpointer:
    """Saves and restores ``(state, best_state, loop)`` under ``workdir/checkpoints``.

    ``loop`` is a JSON-serialisable dict (history, early-stopping progress, ...);
    ``best_state`` is optional (``None`` when early stopping is off).
    """

    def __init__(self, workdir: str | pathlib.Path, *, max_to_keep: int | None = 2):
        import orbax.checkpoint as ocp  # lazy: importing orbax costs ~1 s

        self._ocp = ocp
        self.directory = pathlib.Path(workdir).resolve() / CHECKPOINT_DIR
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
        )

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def save(self, step: int, state: TrainState, loop: dict, best_state: TrainState | None = None) -> None:
        ocp = self._ocp
        items = {"state": ocp.args.StandardSave(_to_savable(state)), "loop": ocp.args.JsonSave(loop)}
        if best_state is not None:
            items["best"] = ocp.args.StandardSave(_to_savable(best_state))
        self._manager.save(int(step), args=ocp.args.Composite(**items), force=True)

    def restore(
        self, template: TrainState, step: int | None = None, *, with_best: bool = False
    ) -> tuple[TrainState, dict, TrainState | None]:
        """Restores checkpoint ``step`` (default: the latest) onto ``template``'s structure."""
        ocp = self._ocp
        step = self.latest_step() if step is None else step
        if step is None:
            raise ValueError(f"workdir: no checkpoint to restore in {self.directory}")
        abstract = _abstract(_to_savable(template))
        items = {"state": ocp.args.StandardRestore(abstract), "loop": ocp.args.JsonRestore()}
        if with_best:
            items["best"] = ocp.args.StandardRestore(abstract)
        out = self._manager.restore(step, args=ocp.args.Composite(**items))
        state = _from_savable(out["state"], template)
        best = _from_savable(out["best"], template) if with_best else None
        return state, dict(out["loop"]), best

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
