"""Tiny models and data obeying the jax231 Model contract, for the training tests.

They are local on purpose: the training tests check the loop, not the models, and
must not fail when a model in jax231.models changes.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Model(NamedTuple):
    init: Callable
    apply: Callable


def linear(num_classes: int = 3, scale: float = 1e-2) -> Model:
    """``logits = x.reshape(N, -1) @ w + b``, no model state."""

    def init(rng, input_shape):
        d = int(np.prod(input_shape))
        return {"dense": {"w": scale * jax.random.normal(rng, (d, num_classes)), "b": jnp.zeros((num_classes,))}}, {}

    def apply(params, state, x, *, train, rng=None):
        x = x.reshape(x.shape[0], -1)
        return x @ params["dense"]["w"] + params["dense"]["b"], state

    return Model(init, apply)


def mlp(
    num_classes: int = 3, hidden: int = 16, drop_rate: float = 0.0, batch_norm: bool = False, momentum: float = 0.9
) -> Model:
    """Dense -> (BatchNorm) -> ReLU -> (Dropout) -> Dense; BN running stats in the state."""

    def init(rng, input_shape):
        d = int(np.prod(input_shape))
        k1, k2 = jax.random.split(rng)
        params = {
            "dense1": {"w": jax.random.normal(k1, (d, hidden)) * np.sqrt(2.0 / d), "b": jnp.zeros((hidden,))},
            "dense2": {"w": jax.random.normal(k2, (hidden, num_classes)) * 1e-2, "b": jnp.zeros((num_classes,))},
        }
        state = {}
        if batch_norm:  # BN cancels the dense1 bias: its gradient is rounding noise, drop it
            del params["dense1"]["b"]
            params["bn"] = {"gamma": jnp.ones((hidden,)), "beta": jnp.zeros((hidden,))}
            state = {"bn": {"mean": jnp.zeros((hidden,)), "var": jnp.ones((hidden,))}}
        return params, state

    def apply(params, state, x, *, train, rng=None):
        h = x.reshape(x.shape[0], -1) @ params["dense1"]["w"] + params["dense1"].get("b", 0.0)
        new_state = state
        if batch_norm:
            if train:
                mean, var = h.mean(0), h.var(0)
                new_state = {
                    "bn": {
                        "mean": momentum * state["bn"]["mean"] + (1 - momentum) * mean,
                        "var": momentum * state["bn"]["var"] + (1 - momentum) * var,
                    }
                }
            else:
                mean, var = state["bn"]["mean"], state["bn"]["var"]
            h = (h - mean) / jnp.sqrt(var + 1e-5) * params["bn"]["gamma"] + params["bn"]["beta"]
        h = jax.nn.relu(h)
        if train and drop_rate > 0:
            keep = jax.random.bernoulli(rng, 1.0 - drop_rate, h.shape)
            h = jnp.where(keep, h / (1.0 - drop_rate), 0.0)
        return h @ params["dense2"]["w"] + params["dense2"]["b"], new_state

    return Model(init, apply)


def blobs(n: int = 96, num_classes: int = 3, dim: int = 4, seed: int = 0, spread: float = 1.0, centres_seed: int = 0):
    """Gaussian blobs ``{'image': (n, dim, 1) float32, 'label': (n,) int32}``.

    ``centres_seed`` fixes the class centres, ``seed`` the samples: a validation
    set is ``blobs(..., seed=1)``.
    """
    centres = 2.5 * np.random.RandomState(1000 + centres_seed).randn(num_classes, dim)
    rs = np.random.RandomState(seed)
    labels = rs.randint(0, num_classes, n)
    images = centres[labels] + spread * rs.randn(n, dim)
    return {"image": images[..., None].astype(np.float32), "label": labels.astype(np.int32)}


# Shared instances: fit caches its compiled loop per (model, optimizer) object, so
# test files that use these same objects compile the loop once per session.
TRAIN = blobs(96)
VAL = blobs(48, seed=1)
MLP = mlp(drop_rate=0.1, batch_norm=True)


def _adam():
    import optax

    return optax.adam(1e-2)


ADAM = _adam()
