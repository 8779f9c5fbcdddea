"""``run_steps`` / ``run_in_chunks``: the primitive of the algorithm loops (GAN, RL)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import training

N, B = 20, 6  # 3 batches per epoch, 2 examples of each epoch order dropped


def _record(state, batch):
    """A step that counts and reports its batch."""
    return state + 1, {"batch": batch["x"], "sum": jnp.sum(batch["x"]).astype(jnp.float32)}


def test_batches_follow_fits_epoch_order():
    key = jax.random.PRNGKey(4)
    data = {"x": jnp.arange(N) * 10, "y": jnp.arange(N)}
    out = training.run_steps(_record, jnp.int32(0), 8, start=2, data=data, data_key=key, batch_size=B)
    assert int(out.state) == 8 and bool(out.alive) and int(out.bad_step) == -1
    for i in range(8):  # the documented order, written out: epoch t // S, position t % S
        t = 2 + i
        perm = np.asarray(training.epoch_permutation(key, t // (N // B), N))
        np.testing.assert_array_equal(out.metrics["batch"][i], 10 * perm[(t % 3) * B : (t % 3 + 1) * B])


def test_without_data_the_step_gets_the_global_step():
    out = training.run_steps(lambda s, t: (s + t, {"t": t}), jnp.int32(0), 5, start=3)
    np.testing.assert_array_equal(out.metrics["t"], [3, 4, 5, 6, 7])
    assert int(out.state) == sum(range(3, 8))


def test_guard_freezes_the_last_good_state():
    def step(s, t):
        loss = jnp.where(t == 3, jnp.nan, 1.0)
        return s + 1.0, {"loss": loss}

    out = training.run_steps(step, jnp.float32(0.0), 6, is_bad=lambda m: ~jnp.isfinite(m["loss"]))
    assert float(out.state) == 3.0  # steps 0, 1, 2 kept; step 3 bad; 4, 5 dropped
    assert not bool(out.alive) and int(out.bad_step) == 3


def test_chunks_equal_one_scan_and_vmap_works():
    key = jax.random.PRNGKey(0)
    data = {"x": jnp.arange(N)}

    @functools.partial(jax.jit, static_argnames="length")
    def program(state, start, length):
        out = training.run_steps(_record, state, length, start=start, data=data, data_key=key, batch_size=B)
        return out.state, out.metrics

    whole, m_whole = program(jnp.int32(0), 0, 10)
    state, chunks = training.run_in_chunks(lambda s, done, n: program(s, done, n), jnp.int32(0), 10, chunk_size=4)
    assert [c["sum"].shape[0] for c in chunks] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([c["sum"] for c in chunks]), m_whole["sum"])
    assert int(state) == int(whole) == 10
    many = jax.vmap(lambda s: training.run_steps(lambda c, t: (c * 2, {}), s, 3).state)(jnp.arange(4))
    np.testing.assert_array_equal(many, np.arange(4) * 8)


def test_run_in_chunks_stops_past_max_seconds():
    _, chunks = training.run_in_chunks(lambda s, done, n: (s, {}), 0, 100, chunk_size=10, max_seconds=0.0)
    assert len(chunks) == 1


@pytest.mark.parametrize("kwargs", [dict(chunk_size=0), dict(chunk_size=1.5)])
def test_run_in_chunks_rejects_bad_chunk_sizes(kwargs):
    with pytest.raises(ValueError, match="^chunk_size: expected"):
        training.run_in_chunks(lambda s, done, n: (s, {}), 0, 10, **kwargs)
