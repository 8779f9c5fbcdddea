"""What the agent factories share: their networks, their gradient clipping, their optimizer state."""

from __future__ import annotations

from typing import Mapping, Sequence

from jax231 import models, optimizers
from jax231.rl import _envs
from jax231.types import Array, OptState, Params


def policy_and_value_mlps(
    env: _envs.Env, hidden_sizes: Sequence[int], activation: str, *, names: tuple[str, str]
) -> tuple[models.Model, models.Model]:
    """Two separate Xavier-initialised MLPs on the observations: ``env.num_actions`` action
    scores (the policy) and one value (the critic or baseline), named ``names``."""
    policy = models.mlp(
        hidden_sizes=hidden_sizes,
        num_classes=env.num_actions,
        activation=activation,
        init="xavier",
        name=names[0],
    )
    value = models.mlp(hidden_sizes=hidden_sizes, num_classes=1, activation=activation, init="xavier", name=names[1])
    return policy, value


def with_grad_clipping(
    optimizer: optimizers.GradientTransformation, max_grad_norm: float
) -> optimizers.GradientTransformation:
    """``optimizer`` after clipping the gradient's global norm to ``max_grad_norm`` (0: unchanged)."""
    if max_grad_norm > 0:
        return optimizers.chain(optimizers.clip_by_global_norm(max_grad_norm), optimizer)
    return optimizer


def init_optimizer(
    optimizer: optimizers.GradientTransformation, params: Params, hyperparams: Mapping[str, Array]
) -> OptState:
    """``optimizer.init(params)`` with the agent's ``hyperparams`` (see :class:`~jax231.rl.Agent`) set in it."""
    opt_state = optimizer.init(params)
    if hyperparams:
        opt_state = optimizers.set_hyperparams(opt_state, **hyperparams)
    return opt_state
