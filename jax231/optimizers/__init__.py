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
from jax231.optimizers._base import (
    GradientTransformation,
    apply_updates,
    chain,
    get_hyperparams,
    set_hyperparams,
)
from jax231.optimizers._lbfgs import LbfgsResult, LbfgsState, lbfgs, lbfgs_minimize
from jax231.optimizers._linesearch import LineSearchResult, strong_wolfe_line_search
from jax231.optimizers._multi_transform import (
    MultiTransformState,
    ScaleByGroupState,
    SetToZeroState,
    multi_transform,
    scale_by_group,
    set_to_zero,
)
from jax231.optimizers._registry import NAMES, get, needs_value_fn
from jax231.optimizers._sgd import MomentumState, SgdState, momentum, nesterov, sgd
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

__all__ = [
    "NAMES",
    "AdagradState",
    "AdamState",
    "AddWeightDecayState",
    "ClipByGlobalNormState",
    "GradientTransformation",
    "LbfgsResult",
    "LbfgsState",
    "LineSearchResult",
    "MomentumState",
    "MultiTransformState",
    "ParamsAverage",
    "ParamsAverageState",
    "RmspropState",
    "ScaleByGroupState",
    "SetToZeroState",
    "SgdState",
    "adagrad",
    "adam",
    "adamw",
    "add_weight_decay",
    "average_params",
    "apply_updates",
    "chain",
    "clip_by_global_norm",
    "ema",
    "get",
    "get_hyperparams",
    "lbfgs",
    "lbfgs_minimize",
    "momentum",
    "multi_transform",
    "needs_value_fn",
    "nesterov",
    "polyak_average",
    "rmsprop",
    "scale_by_group",
    "schedules",
    "set_hyperparams",
    "set_to_zero",
    "sgd",
    "strong_wolfe_line_search",
]
