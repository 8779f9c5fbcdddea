"""Tiny VGG-style networks shared by the visualisation tests."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import models


def make_tiny_vgg(seed=0, *, channels=3, size=8, norm="batch", activation="relu", dtype=jnp.float32):
    """A random 2-stage vgg; batch-norm statistics moved off (0, 1) by one train-mode pass."""
    model = models.vgg(
        stage_widths=(4, 8), convs_per_stage=(1, 1), hidden_dims=(16,), num_classes=5, norm=norm, activation=activation
    )
    cast = lambda tree: jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), tree)
    params, state = cast(model.init(jax.random.key(seed), (size, size, channels)))
    if norm:
        batch = jax.random.uniform(jax.random.key(seed + 1), (16, size, size, channels), dtype)
        _, state = model.apply(params, state, batch, train=True)
    return model, params, state


@pytest.fixture
def tiny_vgg():
    return make_tiny_vgg()


def random_images(seed, n=4, size=8, channels=3):
    return np.random.default_rng(seed).uniform(size=(n, size, size, channels)).astype(np.float32)
