"""Tiny models and data for the parallel tests (contract: ``Model(init, apply)``).

Local on purpose: the parallel machinery is checked on a model whose every
operation is visible here (a BatchNorm whose statistics can be synchronised over
a named axis, a dropout whose rate may be a traced sweep value), independent of
the shapes and defaults of ``jax231.models``.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


# A loaded CI machine can be slow to schedule the threads of 8 emulated devices
# (or of cooperating processes); XLA's default 40 s for all of them to reach a
# collective would then abort a correct run. Raising it changes no result.
SLOW_COLLECTIVE_FLAGS = (
    "--xla_cpu_collective_call_terminate_timeout_seconds=600 --xla_cpu_collective_timeout_seconds=600"
)


def prepend_slow_collective_flags(code: str) -> str:
    """``code`` preceded by lines adding :data:`SLOW_COLLECTIVE_FLAGS` to ``XLA_FLAGS``.

    For children of ``test_utils.run_with_devices``: XLA reads ``XLA_FLAGS``
    when the backend starts, i.e. after these lines run.
    """
    return f"import os\nos.environ['XLA_FLAGS'] += ' {SLOW_COLLECTIVE_FLAGS}'\n" + code


class Model(NamedTuple):
    init: Callable
    apply: Callable


def mlp(
    *,
    num_classes: int = 3,
    hidden: int = 8,
    batch_norm: bool = False,
    bn_axis_name: str | None = None,
    drop_rate=0.0,
    bn_momentum: float = 0.9,
    eps: float = 1e-5,
) -> Model:
    """``x -> dense -> [batch norm] -> relu -> [dropout] -> dense``.

    Batch norm uses ``var = E[h^2] - E[h]^2`` so that with ``bn_axis_name`` both
    moments are ``lax.pmean``-ed: the statistics of the global batch.
    ``drop_rate`` may be a traced scalar (sweeps); the Python float ``0.0``
    leaves dropout out of the program (random bits are slow to compile on CPU).
    """

    def init(rng, input_shape):
        d = math.prod(input_shape)
        k1, k2 = jax.random.split(rng)
        params = {
            "dense1": {"w": jax.random.normal(k1, (d, hidden)) * math.sqrt(2.0 / d), "b": jnp.zeros(hidden)},
            "dense2": {
                "w": jax.random.normal(k2, (hidden, num_classes)) * math.sqrt(1.0 / hidden),
                "b": jnp.zeros(num_classes),
            },
        }
        state = {}
        if batch_norm:
            params["bn"] = {"scale": jnp.ones(hidden), "bias": jnp.zeros(hidden)}
            state["bn"] = {"mean": jnp.zeros(hidden), "var": jnp.ones(hidden)}
        return params, state

    def apply(params, state, x, *, train, rng=None):
        h = x.reshape(x.shape[0], -1) @ params["dense1"]["w"] + params["dense1"]["b"]
        new_state = state
        if batch_norm:
            if train:
                mean, meansq = h.mean(0), (h * h).mean(0)
                if bn_axis_name is not None:
                    mean, meansq = jax.lax.pmean((mean, meansq), bn_axis_name)
                var = meansq - mean * mean
                running = state["bn"]
                new_state = {
                    "bn": {
                        "mean": bn_momentum * running["mean"] + (1 - bn_momentum) * mean,
                        "var": bn_momentum * running["var"] + (1 - bn_momentum) * var,
                    }
                }
            else:
                mean, var = state["bn"]["mean"], state["bn"]["var"]
            h = (h - mean) / jnp.sqrt(var + eps) * params["bn"]["scale"] + params["bn"]["bias"]
        h = jax.nn.relu(h)
        if train and rng is not None and not (isinstance(drop_rate, float) and drop_rate == 0.0):
            keep = jax.random.bernoulli(rng, 1.0 - drop_rate, h.shape)
            h = jnp.where(keep, h / (1.0 - drop_rate), 0.0)
        return h @ params["dense2"]["w"] + params["dense2"]["b"], new_state

    return Model(init, apply)


def blobs(num_examples: int, *, dim: int = 5, num_classes: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """A linearly separable-ish problem: ``label = argmax(x @ W)`` with Gaussian ``x``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(num_examples, dim)).astype(np.float32)
    w = rng.normal(size=(dim, num_classes)).astype(np.float32)
    return {"image": x, "label": np.argmax(x @ w, axis=1).astype(np.int32)}
