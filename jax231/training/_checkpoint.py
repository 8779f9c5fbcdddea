"""Orbax checkpoints of a training run: the TrainState, the best snapshot, the loop.

Atomicity: orbax writes every checkpoint into a temporary directory
(``<step>.orbax-checkpoint-tmp-*``) and renames it to ``<step>`` only once all
files are written (``CheckpointManager`` + ``AtomicRenameTemporaryPath``); a
crash mid-write leaves a tmp directory that ``latest_step`` ignores and the
previous checkpoint intact. ``tests/training/test_checkpoint.py`` checks both.

Verification: every save records, inside the same atomic write, a SHA-256
digest of each saved state's arrays (leaf paths, dtypes, shapes and bytes) and
their shapes. A restore recomputes the digest; a checkpoint whose files are
truncated, zeroed or otherwise altered, or that cannot be read at all, is
reported in one line and the newest intact older checkpoint is used instead
(never silent garbage) and the corrupt ones are renamed ``corrupt-<step>``
(kept for inspection; the resumed run writes those steps again); with none
intact, a one-line ``ValueError``. A
checkpoint written by a run of another shape (a different model size) is
refused before orbax reads a byte, naming the differing leaves, and one
written under another configuration is refused naming the differing fields
(unless the caller allows the change).
"""

from __future__ import annotations

import hashlib
import pathlib
import warnings
from typing import Any, Mapping

import jax
import numpy as np

from jax231.training._state import TrainState

CHECKPOINT_DIR = "checkpoints"


def _is_typed_key(x: Any) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _to_savable(state: TrainState) -> TrainState:
    """Replaces a typed PRNG key by its raw uint32 data (orbax stores plain arrays)."""
    return jax.tree_util.tree_map(lambda x: jax.random.key_data(x) if _is_typed_key(x) else x, state)


def _from_savable(restored: TrainState, template: TrainState) -> TrainState:
    return jax.tree_util.tree_map(
        lambda r, t: jax.random.wrap_key_data(r, impl=jax.random.key_impl(t)) if _is_typed_key(t) else r,
        restored,
        template,
    )


def _abstract(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), tree)


def _leaves(tree: Any) -> list[tuple[str, Any]]:
    return [(jax.tree_util.keystr(path), leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(tree)]


def tree_digest(tree: Any) -> str:
    """SHA-256 of a pytree of arrays: every leaf's path, dtype, shape and bytes, in tree order."""
    digest = hashlib.sha256()
    for name, leaf in _leaves(tree):
        array = np.ascontiguousarray(np.asarray(leaf))
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def tree_shapes(tree: Any) -> dict[str, list]:
    """``{leaf path: [shape, dtype]}``: what a checkpoint's structure is compared on before reading it."""
    return {name: [list(np.shape(leaf)), str(np.asarray(leaf).dtype)] for name, leaf in _leaves(tree)}


def config_differences(saved: Mapping[str, Any], given: Mapping[str, Any]) -> list[str]:
    """``'field: checkpoint a, now b'`` for every field whose value differs (missing counts as differing)."""
    out = []
    for key in sorted(set(saved) | set(given)):
        a, b = saved.get(key, "<absent>"), given.get(key, "<absent>")
        if a != b:
            out.append(f"{key}: checkpoint {a!r}, now {b!r}")
    return out


class CorruptCheckpointError(ValueError):
    """A checkpoint that cannot be read or whose arrays do not match their recorded digest."""


class Checkpointer:
    """Saves and restores ``(state, best_state, loop)`` under ``workdir/checkpoints``.

    ``loop`` is a JSON-serialisable dict (history, early-stopping progress, ...);
    ``best_state`` is optional (``None`` when early stopping is off). ``config``
    (optional, JSON-serialisable) is the run's configuration: a restore given
    another one is refused, naming the differing fields.

    Attributes:
      directory: ``workdir/checkpoints``.
      skipped: after :meth:`restore`, ``[(step, reason), ...]`` of the newer
        checkpoints found corrupt and passed over.
      restored_step: after :meth:`restore`, the step of the checkpoint actually
        restored (older than :meth:`latest_step` when newer ones were corrupt).
    """

    def __init__(self, workdir: str | pathlib.Path, *, max_to_keep: int | None = 2):
        import orbax.checkpoint as ocp  # lazy: importing orbax costs ~1 s

        self._ocp = ocp
        self.directory = pathlib.Path(workdir).resolve() / CHECKPOINT_DIR
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
        )
        self.skipped: list[tuple[int, str]] = []
        self.restored_step: int | None = None

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def save(
        self,
        step: int,
        state: TrainState,
        loop: dict,
        best_state: TrainState | None = None,
        *,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        """Writes checkpoint ``step`` atomically, with the digests and shapes that verify it."""
        ocp = self._ocp
        state = jax.device_get(_to_savable(state))
        integrity = {"state": tree_digest(state), "shapes": tree_shapes(state), "config": dict(config or {})}
        items = {"state": ocp.args.StandardSave(state)}
        if best_state is not None:
            best_state = jax.device_get(_to_savable(best_state))
            integrity["best"] = tree_digest(best_state)
            items["best"] = ocp.args.StandardSave(best_state)
        items["loop"] = ocp.args.JsonSave({**loop, "_integrity": integrity})
        self._manager.save(int(step), args=ocp.args.Composite(**items), force=True)

    def restore(
        self,
        template: TrainState,
        step: int | None = None,
        *,
        with_best: bool = False,
        config: Mapping[str, Any] | None = None,
        allow_config_change: bool = False,
    ) -> tuple[TrainState, dict, TrainState | None]:
        """Restores checkpoint ``step`` (default: the newest INTACT one) onto ``template``'s structure.

        Args:
          template: a state of the run's structure (shapes, dtypes, key types).
          step: a given step (verified; a corrupt one raises) or ``None``: the
            newest checkpoint that verifies, older ones tried in turn, the
            passed-over ones recorded in :attr:`skipped` and warned about once.
          with_best: also restore the best-validation snapshot.
          config: the current run's configuration; compared with the one saved.
          allow_config_change: restore although ``config`` differs (the saved
            state then wins for what it holds; the caller is told which fields).

        Returns:
          ``(state, loop, best)``; ``loop`` without the integrity record.

        Raises:
          ValueError: no checkpoint; none intact (each step's reason named); a
            structure that does not match ``template`` (leaves named); or a
            different configuration without ``allow_config_change``.
        """
        steps = sorted(self.all_steps(), reverse=True) if step is None else [int(step)]
        if not steps:
            raise ValueError(f"workdir: expected a checkpoint to restore in {self.directory}, got none")
        self.skipped = []
        for s in steps:
            try:
                state, loop, best = self._restore_verified(template, s, with_best=with_best)
            except CorruptCheckpointError as error:
                if step is not None:
                    raise
                self.skipped.append((s, str(error)))
                continue
            if self.skipped:
                moved = self._set_aside([bad for bad, _ in self.skipped])
                warnings.warn(
                    "checkpoint: "
                    + "; ".join(reason for _, reason in self.skipped)
                    + f"; resuming from the newest intact checkpoint, step {s} (the corrupt ones kept as "
                    + ", ".join(moved)
                    + ")",
                    stacklevel=2,
                )
            self._check_config(loop.pop("_integrity", {}).get("config"), config, allow_config_change)
            self.restored_step = s
            return state, loop, best
        raise ValueError(
            f"workdir: expected an intact checkpoint in {self.directory}, got none: "
            + "; ".join(reason for _, reason in self.skipped)
        )

    def _set_aside(self, steps: list[int]) -> list[str]:
        """Renames corrupt step directories to ``corrupt-<step>[-k]`` (kept for inspection, no longer a
        step: the resumed run writes that step again)."""
        names = []
        for step in steps:
            target = self.directory / f"corrupt-{step}"
            k = 1
            while target.exists():
                target, k = self.directory / f"corrupt-{step}-{k}", k + 1
            (self.directory / str(step)).rename(target)
            names.append(target.name)
        self._manager.reload()
        return names

    def _restore_verified(
        self, template: TrainState, step: int, *, with_best: bool
    ) -> tuple[TrainState, dict, TrainState | None]:
        ocp = self._ocp
        savable = _to_savable(template)
        try:
            loop = dict(self._manager.restore(step, args=ocp.args.Composite(loop=ocp.args.JsonRestore()))["loop"])
        except Exception as error:  # orbax raises many types for unreadable files
            raise CorruptCheckpointError(
                f"checkpoint {step} is unreadable ({type(error).__name__}: {_first_line(error)})"
            ) from None
        integrity = loop.get("_integrity")
        if not isinstance(integrity, dict) or "state" not in integrity:
            raise CorruptCheckpointError(f"checkpoint {step} has no integrity record (written by an older jax231?)")
        _check_shapes(integrity.get("shapes", {}), tree_shapes(jax.device_get(savable)), step)
        abstract = _abstract(savable)
        items = {"state": ocp.args.StandardRestore(abstract)}
        if with_best and "best" in integrity:
            items["best"] = ocp.args.StandardRestore(abstract)
        try:
            out = self._manager.restore(step, args=ocp.args.Composite(**items))
        except Exception as error:
            raise CorruptCheckpointError(
                f"checkpoint {step} is unreadable ({type(error).__name__}: {_first_line(error)})"
            ) from None
        for name in items:
            if tree_digest(jax.device_get(out[name])) != integrity[name]:
                raise CorruptCheckpointError(
                    f"checkpoint {step} is corrupt: its {name!r} arrays do not match "
                    "the SHA-256 recorded when it was written"
                )
        state = _from_savable(out["state"], template)
        best = _from_savable(out["best"], template) if "best" in items else None
        return state, loop, best

    def _check_config(self, saved: Any, given: Mapping[str, Any] | None, allow: bool) -> None:
        if given is None or saved is None:
            return
        diffs = config_differences(saved, dict(given))
        if diffs and not allow:
            raise ValueError(
                f"workdir: expected the configuration of the checkpointed run in "
                f"{self.directory.parent}, got changes ({'; '.join(diffs)}); use another "
                "workdir, or allow the change explicitly"
            )
        if diffs:
            warnings.warn("checkpoint: resuming with a changed configuration: " + "; ".join(diffs), stacklevel=3)

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else ""


def _check_shapes(saved: Mapping[str, Any], expected: Mapping[str, Any], step: int) -> None:
    """Refuses a checkpoint of another structure before reading its arrays."""
    diffs = [
        f"{k}: checkpoint {saved.get(k, 'absent')}, run {expected.get(k, 'absent')}"
        for k in sorted(set(saved) | set(expected))
        if saved.get(k) != expected.get(k)
    ]
    if diffs:
        shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
        raise ValueError(
            f"workdir: checkpoint {step} holds a run of another shape ({shown}); "
            "expected the same model and optimizer, or another workdir"
        )
