"""The one RNG convention of every training path (``fit``, ``run_sweep``, the experiments).

A run is named by an integer ``seed``; every random number it draws comes from
``root = jax.random.PRNGKey(seed)`` through these derivations, and nothing else::

    init_key, data_key = jax.random.split(root)          # run_keys(seed).init / .data
    hook_key           = jax.random.fold_in(root, 1)     # run_keys(seed).hook
    param_key, rng     = jax.random.split(init_key)      # create_train_state: params, TrainState.rng

    order of epoch e        = permutation(fold_in(data_key, e), N)  # epoch_permutation
    dropout key of update t = fold_in(TrainState.rng, t)           # make_train_step
    batch_fn key of update t = fold_in(hook_key, t)                # augmentation / noise hooks

Every key of update ``t`` is a function of the global step ``t`` only, so a run
gives the same numbers whatever its chunking, its resumption from a checkpoint
(the step is checkpointed, hence the position of the augmentation stream too),
or whether it runs alone (``fit``) or as member ``k`` of a vmapped sweep
(``run_sweep`` applies the same derivations to ``seeds[k]``).

``jax231.pipelines.device_epochs`` should draw its epoch orders from
``epoch_permutation(run_keys(seed).data, e, N)`` so that it feeds the batches
``fit`` would use for the same seed.
"""

from __future__ import annotations

from typing import NamedTuple

import jax

from jax231.types import ArrayLike, PRNGKey

HOOK_FOLD = 1
"""``hook_key = fold_in(PRNGKey(seed), HOOK_FOLD)``."""


class RunKeys(NamedTuple):
    """The keys of one run (see the module docstring).

    Attributes:
      init: initialises the parameters and, split once more, gives ``TrainState.rng``
        (the source of the dropout keys).
      data: the data order, ``epoch_permutation(data, e, N)``.
      hook: the on-device batch hook (augmentation, noise), ``fold_in(hook, t)``.
    """

    init: PRNGKey
    data: PRNGKey
    hook: PRNGKey


def run_keys(seed: ArrayLike) -> RunKeys:
    """The :class:`RunKeys` of ``seed`` (an int, or a traced int32 scalar under ``vmap``)."""
    root = jax.random.PRNGKey(seed)
    init_key, data_key = jax.random.split(root)
    return RunKeys(init=init_key, data=data_key, hook=jax.random.fold_in(root, HOOK_FOLD))


def step_key(key: PRNGKey, step: ArrayLike) -> PRNGKey:
    """The key of update ``step`` drawn from a run key: ``fold_in(key, step)``."""
    return jax.random.fold_in(key, step)
