"""Schedules against optax's equivalents, or a float64 NumPy transcription where optax has none."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jax231.optimizers as jopt
from jax231.optimizers import schedules
from tests import test_utils

STEPS = np.arange(0, 60)


def np_sgdr(t, init, first_period, period_mult, min_value):
    """Walks the restarts one period at a time (the SGDR paper's T_cur / T_i)."""
    start, period = 0, first_period
    while t >= start + period:
        start, period = start + period, period * period_mult
    return min_value + 0.5 * (init - min_value) * (1 + math.cos(math.pi * (t - start) / period))


# (name, ours, reference step -> value: optax or NumPy)
CASES = [
    ("constant", schedules.constant(0.3), optax.constant_schedule(0.3)),
    (
        "step_decay",
        schedules.step_decay(0.1, decay_rate=0.5, step_size=7),
        optax.exponential_decay(0.1, transition_steps=7, decay_rate=0.5, staircase=True),
    ),
    (
        "exponential",
        schedules.exponential_decay(0.1, decay_rate=0.05),
        optax.exponential_decay(0.1, transition_steps=1, decay_rate=math.exp(-0.05)),
    ),
    ("inverse_time", schedules.inverse_time_decay(0.1, decay_rate=0.2), lambda t: 0.1 / (1 + 0.2 * t)),
    (
        "cosine",
        schedules.cosine_decay(0.1, decay_steps=40, final_value=0.01),
        optax.cosine_decay_schedule(0.1, decay_steps=40, alpha=0.1),
    ),
    (
        "linear_warmup",
        schedules.linear_warmup(0.1, warmup_steps=10),
        optax.join_schedules([optax.linear_schedule(0.0, 0.1, 10), optax.constant_schedule(0.1)], [10]),
    ),
    (
        "warmup_then_cosine",
        schedules.linear_warmup(
            0.1, warmup_steps=10, init_value=0.01, after=schedules.cosine_decay(0.1, decay_steps=30)
        ),
        optax.join_schedules([optax.linear_schedule(0.01, 0.1, 10), optax.cosine_decay_schedule(0.1, 30)], [10]),
    ),
    ("sgdr", schedules.sgdr(0.1, first_period=10, min_value=0.001), lambda t: np_sgdr(t, 0.1, 10, 1, 0.001)),
    ("sgdr_mult2", schedules.sgdr(0.1, first_period=5, period_mult=2), lambda t: np_sgdr(t, 0.1, 5, 2, 0.0)),
]


@pytest.mark.parametrize("name, ours, reference", CASES, ids=[c[0] for c in CASES])
def test_matches_reference_jitted_and_vmapped(name, ours, reference):
    with test_utils.x64():
        want = np.array([float(reference(int(t))) for t in STEPS])
        got_jit = np.array([float(jax.jit(ours)(jnp.int32(t))) for t in STEPS[:5]])
        got_vmap = np.asarray(jax.vmap(ours)(jnp.asarray(STEPS, jnp.int32)))
    # float64 on our side; optax's float32 constants (e.g. exp(-0.05)) limit agreement to ~1e-7.
    np.testing.assert_allclose(got_vmap, want, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(got_jit, want[:5], rtol=1e-6, atol=1e-9)


def test_sgdr_restarts_at_the_right_steps():
    s = schedules.sgdr(1.0, first_period=5, period_mult=2)
    values = np.asarray(jax.vmap(s)(jnp.arange(0, 40)))
    restarts = [t for t in range(40) if values[t] == pytest.approx(1.0)]
    assert restarts == [0, 5, 15, 35]  # periods 5, 10, 20


def test_schedule_drives_an_optimizer_like_numpy():
    """sgd with a schedule uses schedule(t) at update t (t = 0, 1, ...)."""
    sched = schedules.step_decay(0.5, decay_rate=0.1, step_size=2)
    opt = jopt.sgd(sched)
    x = jnp.ones(())
    state = opt.init(x)
    want = 1.0
    for t in range(5):
        u, state = opt.update(jnp.ones(()), state)
        x = jopt.apply_updates(x, u)
        want -= 0.5 * 0.1 ** (t // 2)
    np.testing.assert_allclose(x, want, rtol=1e-6)  # float32 arithmetic


@pytest.mark.parametrize(
    "factory, kwargs, name",
    [
        (schedules.step_decay, dict(init_value=0.1, decay_rate=0.5, step_size=0), "step_size"),
        (schedules.exponential_decay, dict(init_value=-0.1, decay_rate=0.5), "init_value"),
        (schedules.inverse_time_decay, dict(init_value=0.1, decay_rate=-1.0), "decay_rate"),
        (schedules.cosine_decay, dict(init_value=0.1, decay_steps=0), "decay_steps"),
        (schedules.linear_warmup, dict(peak_value=0.1, warmup_steps=-3), "warmup_steps"),
        (schedules.linear_warmup, dict(peak_value=0.1, warmup_steps=3, after=0.5), "after"),
        (schedules.sgdr, dict(init_value=0.1, first_period=10, period_mult=0), "period_mult"),
    ],
)
def test_bad_arguments_raise_naming_them(factory, kwargs, name):
    with pytest.raises(ValueError, match=name):
        factory(**kwargs)
