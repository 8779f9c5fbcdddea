"""Training: pure train/eval steps, the one compiled loop, ``fit``, guards, checkpoints, logs.

The steps are pure and un-jitted (jit, vmap over seeds, pmap with
``axis_name`` as you need). :func:`run_chunk` is the one compiled training
loop (on-device batch order, an optional ``batch_fn`` hook, the explosion
guard at every update); ``fit`` drives it for one model and
``jax231.parallel.run_sweep`` drives its vmapped form. One RNG convention
(:func:`run_keys`, documented in ``jax231/_rng.py``) and one compile
cache (``_cache.py``) serve every path.
"""

from jax231._rng import RunKeys, run_keys
from jax231.training._checkpoint import Checkpointer, CorruptCheckpointError, tree_digest
from jax231.training._conv_layout import canonical_convolutions, has_noncanonical_convolution, loop_body
from jax231.training._core import TRAIN_METRICS, LoopData, run_chunk, step_is_bad
from jax231.training._files import WorkdirLock, WorkdirLockedError, atomic_path, atomic_write_text
from jax231.training._fit import HISTORY_KEYS, STATUSES, FitResult, fit, last_good_state
from jax231.training._fit_state import FitLoop
from jax231.training._guards import (
    BabysitCheck,
    EarlyStopping,
    EarlyStoppingState,
    InitialLossCheck,
    check_flat_loss,
    check_initial_loss,
    check_update_ratio,
    expected_initial_loss,
    is_exploded,
)
from jax231.training._logging import MetricLogger, ProgressBar, tensorboard_available, write_tensorboard
from jax231.training._metrics import global_norm, update_ratio, update_ratios
from jax231.training._options import Checkpointing, Guards, Logging, check_batch_fn, check_eval_fn
from jax231.training._overfit import OverfitResult, overfit_subset
from jax231.training._run_steps import StepsOut, batch_at, run_in_chunks, run_steps
from jax231.training._runner import eval_view, get_eval_step
from jax231.training._state import TrainState, create_train_state
from jax231.training._steps import (
    epoch_permutation,
    evaluate,
    jit_train_step,
    make_eval_step,
    make_loss_fn,
    make_train_step,
    train_epoch_scan,
)

__all__ = [
    "Checkpointer",
    "Checkpointing",
    "FitLoop",
    "Guards",
    "Logging",
    "LoopData",
    "RunKeys",
    "StepsOut",
    "batch_at",
    "run_in_chunks",
    "run_steps",
    "TRAIN_METRICS",
    "check_batch_fn",
    "check_eval_fn",
    "eval_view",
    "get_eval_step",
    "last_good_state",
    "run_chunk",
    "canonical_convolutions",
    "has_noncanonical_convolution",
    "loop_body",
    "run_keys",
    "step_is_bad",
    "tensorboard_available",
    "write_tensorboard",
    "CorruptCheckpointError",
    "BabysitCheck",
    "EarlyStopping",
    "EarlyStoppingState",
    "FitResult",
    "HISTORY_KEYS",
    "InitialLossCheck",
    "MetricLogger",
    "OverfitResult",
    "ProgressBar",
    "STATUSES",
    "TrainState",
    "WorkdirLock",
    "WorkdirLockedError",
    "atomic_path",
    "atomic_write_text",
    "check_flat_loss",
    "check_initial_loss",
    "check_update_ratio",
    "create_train_state",
    "epoch_permutation",
    "evaluate",
    "expected_initial_loss",
    "fit",
    "global_norm",
    "is_exploded",
    "jit_train_step",
    "make_eval_step",
    "make_loss_fn",
    "make_train_step",
    "overfit_subset",
    "train_epoch_scan",
    "tree_digest",
    "update_ratio",
    "update_ratios",
]
