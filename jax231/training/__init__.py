"""Training: pure train/eval steps, the ``fit`` loop, guards, checkpoints and logs.

The steps are pure and un-jitted (jit, vmap over seeds, pmap with
``axis_name`` as you need); ``fit`` runs chunks of steps as one compiled loop on
on-device data, with the sanity checks of the CS231n notes.
"""

from jax231.training._checkpoint import Checkpointer, CorruptCheckpointError, tree_digest
from jax231.training._files import WorkdirLock, WorkdirLockedError, atomic_path, atomic_write_text
from jax231.training._fit import HISTORY_KEYS, STATUSES, FitResult, fit
from jax231.training._guards import (
    EarlyStopping,
    EarlyStoppingState,
    InitialLossCheck,
    check_initial_loss,
    expected_initial_loss,
    is_exploded,
)
from jax231.training._logging import MetricLogger, ProgressBar
from jax231.training._metrics import global_norm, update_ratio, update_ratios
from jax231.training._overfit import OverfitResult, overfit_subset
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
    "CorruptCheckpointError",
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
    "check_initial_loss",
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
