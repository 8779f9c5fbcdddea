"""airbench94_muon's Muon as jax231 pieces: ``muon(bias_correction=False)`` chained with
``normalize_weights()``, against a float64 NumPy transcription of the PyTorch ``Muon.step`` of
``airbench94_muon.py`` (weights in PyTorch's OIHW layout there, HWIO here).

The transcription (per step, ``mu`` the momentum, ``eta`` the rate)::

    buf = mu * buf + g;  g' = g + mu * buf                 (Nesterov on a summed buffer)
    p *= sqrt(len(p)) / ||p||_F                            (len(p) = output channels)
    p -= eta * NS_3(g'.reshape(len(g), -1)).reshape(p.shape)

with ``NS_3`` three quintic Newton-Schulz steps, ``X /= ||X|| + eps`` first (airbench: bf16;
here float64 in NumPy and float32 in jax231, hence the tolerance).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import optimizers

A, B, C = 3.4445, -4.7750, 2.0315


def np_newton_schulz(g: np.ndarray, steps: int, eps: float) -> np.ndarray:
    x = g / (np.linalg.norm(g) + eps)
    tall = x.shape[0] > x.shape[1]
    x = x.T if tall else x
    for _ in range(steps):
        a = x @ x.T
        x = A * x + (B * a + C * a @ a) @ x
    return x.T if tall else x


def np_airbench_muon(p_oihw: np.ndarray, grads: list[np.ndarray], lr: float, mu: float) -> np.ndarray:
    """The PyTorch Muon.step of airbench94_muon.py, transcribed (float64)."""
    p, buf = p_oihw.copy(), np.zeros_like(p_oihw)
    for g in grads:
        buf = mu * buf + g
        g = g + mu * buf
        p = p * (np.sqrt(len(p)) / np.linalg.norm(p))
        p = p - lr * np_newton_schulz(g.reshape(len(g), -1), 3, 1e-7).reshape(g.shape)
    return p


def _to_oihw(x: np.ndarray) -> np.ndarray:
    return np.transpose(x, (3, 2, 0, 1))


@pytest.mark.parametrize("shape", [(3, 3, 4, 6), (3, 3, 24, 64), (1, 1, 8, 8)])  # airbench's group-1 conv1
def test_airbench_muon_matches_the_pytorch_step_transcribed(shape):
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=shape)
    grads = [rng.normal(size=shape) for _ in range(4)]
    lr, mu = 0.24, 0.6
    opt = optimizers.chain(
        optimizers.muon(lr, beta=mu, ns_steps=3, eps=1e-7, bias_correction=False), optimizers.normalize_weights()
    )
    params = {"w": jnp.asarray(p0, jnp.float32)}
    state = opt.init(params)
    for g in grads:
        updates, state = opt.update({"w": jnp.asarray(g, jnp.float32)}, state, params)
        params = optimizers.apply_updates(params, updates)
    expected = np_airbench_muon(_to_oihw(p0), [_to_oihw(g) for g in grads], lr, mu)
    # jax231's Muon scales by sqrt(max(1, fan_out / fan_in)), airbench's does not: equal when
    # fan_in = kh kw c_in >= c_out, as for every conv of airbench94 (and these shapes).
    # float32 against float64 over 4 steps of entries ~0.1-1: 2e-5.
    np.testing.assert_allclose(_to_oihw(np.asarray(params["w"])), expected, atol=2e-5)


def test_normalize_weights_sets_the_norm_and_leaves_vectors_alone():
    opt = optimizers.normalize_weights()
    params = {"w": jnp.full((2, 2, 3, 5), 3.0), "b": jnp.full((5,), 7.0)}
    updates = {"w": jnp.zeros((2, 2, 3, 5)), "b": jnp.ones((5,))}
    out, _ = opt.update(updates, opt.init(params), params)
    new = optimizers.apply_updates(params, out)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(new["w"])), np.sqrt(5.0), rtol=1e-6)
    np.testing.assert_array_equal(out["b"], updates["b"])
    with pytest.raises(ValueError, match=r"^params: expected the parameters"):
        opt.update(updates, opt.init(params), None)


def test_bias_correction_must_be_a_bool():
    with pytest.raises(ValueError, match=r"^bias_correction: expected True or False, got 'no'"):
        optimizers.muon(0.1, bias_correction="no")
