"""Hand-written optimizers speaking optax's protocol.

Each optimizer is a factory returning a :class:`GradientTransformation`
``(init, update)`` of pure functions; ``apply_updates(params, updates)`` adds
the updates. They mix with optax (``optax.chain``, ``optax.apply_updates``,
optax schedules).

Hyperparameters live in the state (``state.hyperparams['learning_rate']``) and
``update`` reads them from there: :func:`set_hyperparams` plus ``jax.vmap``
sweeps many settings in one compiled program. A hyperparameter given as a
schedule ``step -> value`` (see :mod:`jax231.optimizers.schedules`) is
re-evaluated at the state's ``step`` at every update and the value used is
written back to ``state.hyperparams``.

Every ``update`` accepts and ignores unknown keyword extras; :func:`lbfgs`
reads ``value``, ``grad`` and ``value_fn`` (see :func:`needs_value_fn`).

Examples:
  >>> opt = adam(learning_rate=1e-3)
  >>> state = opt.init(params)
  >>> updates, state = opt.update(grads, state, params)
  >>> params = apply_updates(params, updates)
"""

from jax231.optimizers import schedules
from jax231.optimizers._adam import AdamState, adam, adamw
from jax231.optimizers._adaptive import AdagradState, RmspropState, adagrad, rmsprop
from jax231.optimizers._averaged import AveragedState, averaged
from jax231.optimizers._base import (
    GradientTransformation,
    apply_updates,
    chain,
    get_hyperparams,
    set_hyperparams,
)
from jax231.optimizers._constraints import MaxNormState, max_norm, project_max_norm
from jax231.optimizers._lbfgs import LbfgsResult, LbfgsState, lbfgs, lbfgs_minimize
from jax231.optimizers._linesearch import LineSearchResult, strong_wolfe_line_search
from jax231.optimizers._lion import LionState, lion
from jax231.optimizers._lookahead import LookaheadState, lookahead
from jax231.optimizers._make_schedule import SCHEDULES, ScheduleOptions, make_schedule
from jax231.optimizers._multi_transform import (
    MultiTransformState,
    ScaleByGroupState,
    SetToZeroState,
    multi_transform,
    scale_by_group,
    set_to_zero,
)
from jax231.optimizers._muon import MuonState, muon, newton_schulz
from jax231.optimizers._nadam import NadamState, nadam, nadamw
from jax231.optimizers._registry import NAMES, REGISTRY, get, needs_value_fn
from jax231.optimizers._schedule_free import (
    ScheduleFreeState,
    schedule_free_adamw,
    schedule_free_sgd,
)
from jax231.optimizers._second_order import (
    MinimizeResult,
    SecondOrderState,
    bfgs,
    bfgs_minimize,
    newton,
    newton_minimize,
)
from jax231.optimizers._sgd import MomentumState, SgdState, momentum, nesterov, sgd
from jax231.optimizers._shampoo import ShampooState, inverse_root, sequential_eigh, shampoo
from jax231.optimizers._transforms import (
    AddWeightDecayState,
    ClipByGlobalNormState,
    ParamsAverage,
    ParamsAverageState,
    add_weight_decay,
    average_params,
    clip_by_global_norm,
    ema,
    polyak_average,
)
from jax231.optimizers._weight_norm import NormalizeWeightsState, normalize_weights

__all__ = [
    "NAMES",
    "REGISTRY",
    "SCHEDULES",
    "ScheduleOptions",
    "AdagradState",
    "AdamState",
    "AddWeightDecayState",
    "AveragedState",
    "ClipByGlobalNormState",
    "GradientTransformation",
    "LbfgsResult",
    "LbfgsState",
    "LineSearchResult",
    "MaxNormState",
    "MinimizeResult",
    "LionState",
    "LookaheadState",
    "MomentumState",
    "MuonState",
    "NormalizeWeightsState",
    "NadamState",
    "ParamsAverage",
    "ParamsAverageState",
    "RmspropState",
    "SecondOrderState",
    "ScheduleFreeState",
    "MultiTransformState",
    "ScaleByGroupState",
    "SetToZeroState",
    "SgdState",
    "ShampooState",
    "adagrad",
    "adam",
    "adamw",
    "add_weight_decay",
    "average_params",
    "apply_updates",
    "bfgs",
    "bfgs_minimize",
    "averaged",
    "chain",
    "clip_by_global_norm",
    "ema",
    "get",
    "get_hyperparams",
    "inverse_root",
    "sequential_eigh",
    "lbfgs",
    "lbfgs_minimize",
    "make_schedule",
    "max_norm",
    "lion",
    "lookahead",
    "momentum",
    "muon",
    "nadam",
    "nadamw",
    "multi_transform",
    "needs_value_fn",
    "nesterov",
    "newton",
    "newton_minimize",
    "newton_schulz",
    "normalize_weights",
    "polyak_average",
    "project_max_norm",
    "rmsprop",
    "schedule_free_adamw",
    "schedule_free_sgd",
    "scale_by_group",
    "schedules",
    "set_hyperparams",
    "set_to_zero",
    "sgd",
    "shampoo",
    "strong_wolfe_line_search",
]
