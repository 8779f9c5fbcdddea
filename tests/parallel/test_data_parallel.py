"""Data parallelism on 1, 2, 4 and 8 emulated CPU devices equals one device.

Each device count runs in its own subprocess (XLA fixes the device count when
JAX starts); one subprocess checks everything for that count, because JAX's
start-up costs seconds.
"""

from __future__ import annotations

import numpy as np
import optax
import pytest

from jax231 import parallel
from tests import test_utils
from tests.parallel import tiny_models

CHILD = """
import chex, jax, jax.numpy as jnp, numpy as np, optax
from jax231 import parallel, training
from tests.parallel import tiny_models

assert jax.device_count() == 8, jax.devices()
# The global batch (16) is split into D shards of 16 / D. Per-device means
# averaged by pmean (or XLA's all-reduce) sum in another order than one mean
# over 16 examples; after 3 float32 steps the results agree to ~1e-7 relative.
# 1e-5 keeps room for that and still fails on any real difference (unsynced
# BatchNorm below differs by ~1e-2).
RTOL, ATOL = 1e-5, 1e-6
data = tiny_models.blobs(48)
batches = [{k: v[16 * i:16 * (i + 1)] for k, v in data.items()} for i in range(3)]
tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=0.9)
plain = tiny_models.mlp(batch_norm=True)                        # BN over whatever batch it sees
synced = tiny_models.mlp(batch_norm=True, bn_axis_name="batch")  # BN moments pmean-ed over devices

def fresh():
    return training.create_train_state(plain, tx, rng=jax.random.key(0), input_shape=(5,))

# The reference: one device, the global batch.
step = training.make_train_step(plain, tx)
jitted = jax.jit(step)
ref, ref_metrics = fresh(), []
for b in batches:
    ref, m = jitted(ref, b)
    ref_metrics.append(m)

def run_pmap(model, devices):
    pstep = parallel.make_pmap_train_step(model, tx, axis_name="batch", devices=devices)
    state = parallel.replicate(fresh(), devices)
    for b in batches:
        state, m = pstep(state, parallel.split_batch(b, len(devices)))
    return parallel.unreplicate(state), parallel.unreplicate(m)

for D in (1, 2, 4, 8):
    devices = jax.devices()[:D]
    # 1. jit + NamedSharding over a 'batch' mesh axis: global semantics (BN statistics of all 16).
    sharded_step = parallel.make_sharded_train_step(step, parallel.make_mesh(D))
    state = fresh()
    for b, rm in zip(batches, ref_metrics):
        state, m = sharded_step(state, b)
        chex.assert_trees_all_close(m["loss"], rm["loss"], rtol=RTOL, atol=ATOL, custom_message=f"D={D}")
    assert state.params["dense1"]["w"].sharding.is_fully_replicated
    assert len(state.params["dense1"]["w"].sharding.device_set) == D
    for name in ("params", "model_state", "opt_state"):
        chex.assert_trees_all_close(getattr(state, name), getattr(ref, name), rtol=RTOL, atol=ATOL,
                                    custom_message=f"sharded {name}, D={D}")

    # 2. pmap + pmean with synchronised BatchNorm.
    state, m = run_pmap(synced, devices)
    chex.assert_trees_all_close(m["loss"], ref_metrics[-1]["loss"], rtol=RTOL, atol=ATOL)
    for name in ("params", "model_state", "opt_state"):
        chex.assert_trees_all_close(getattr(state, name), getattr(ref, name), rtol=RTOL, atol=ATOL,
                                    custom_message=f"pmap {name}, D={D}")
    assert int(state.step) == 3

    # 3. Bad input: a global batch not divisible by D (clear error, before compiling).
    if D > 1:
        bad = {k: v[:2 * D + 1] for k, v in data.items()}
        for fn in (lambda: sharded_step(fresh(), bad), lambda: parallel.split_batch(bad, D)):
            try:
                fn()
            except ValueError as err:
                assert f"{2 * D + 1} examples" in str(err) and f"divisible by the {D} devices" in str(err), err
            else:
                raise AssertionError(f"no ValueError for an indivisible batch, D={D}")
    print("CHECKED", D)

# 4. pmap without synchronisation: per-device BN statistics (2 examples each), so it must differ.
state, _ = run_pmap(plain, jax.devices())
gap = float(jnp.max(jnp.abs(state.params["dense1"]["w"] - ref.params["dense1"]["w"])))
assert gap > 1e-3, gap
try:
    parallel.make_pmap_train_step(synced, tx)(parallel.replicate(fresh()), batches[0])  # forgot split_batch
except ValueError as err:
    assert "split_batch" in str(err), err
else:
    raise AssertionError("no ValueError for an unsplit batch")
print("UNSYNCED DIFFERS", gap)

# 5. The same with jax231's own BatchNorm MLP (bn_axis_name): pmap over 8 devices equals one device.
from jax231 import models
real = dict(hidden_sizes=(8,), num_classes=3, norm="batch")
one, synced_real = models.get("mlp", **real), models.get("mlp", **real, bn_axis_name="batch")
ref_real = training.create_train_state(one, tx, rng=jax.random.key(1), input_shape=(5,))
pstep = parallel.make_pmap_train_step(synced_real, tx)
state = parallel.replicate(ref_real)
jitted_real = jax.jit(training.make_train_step(one, tx))
for b in batches:
    ref_real, _ = jitted_real(ref_real, b)
    state, _ = pstep(state, parallel.split_batch(b, 8))
state = parallel.unreplicate(state)
for name in ("params", "model_state"):
    chex.assert_trees_all_close(getattr(state, name), getattr(ref_real, name), rtol=RTOL, atol=ATOL,
                                custom_message=f"jax231 mlp {name}")
print("JAX231 BN SYNCED")
"""


def test_sharded_and_pmap_steps_equal_single_device_on_1_2_4_8_devices():
    # One child with 8 emulated devices checks meshes (and pmaps) over the
    # first 1, 2, 4 and 8 of them: JAX's start-up costs more than the checks.
    out = test_utils.run_with_devices(tiny_models.prepend_slow_collective_flags(CHILD), 8, timeout=400)
    for num_devices in (1, 2, 4, 8):
        assert f"CHECKED {num_devices}" in out, out
    assert "UNSYNCED DIFFERS" in out, out
    assert "JAX231 BN SYNCED" in out, out


def test_split_batch_layout_matches_contiguous_shards():
    batch = {"image": np.arange(24.0).reshape(8, 3), "label": np.arange(8)}
    split = parallel.split_batch(batch, 4)
    assert split["image"].shape == (4, 2, 3)
    np.testing.assert_array_equal(split["label"][2], [4, 5])


@pytest.mark.parametrize(
    "batch, match",
    [
        ({"image": np.zeros((6, 2)), "label": np.zeros(5)}, r"share one leading.*\[5, 6\]"),
        ({"image": np.zeros((6, 2)), "label": np.zeros(6)}, "6 examples.*divisible by the 4 devices"),
    ],
)
def test_split_batch_bad_input(batch, match):
    with pytest.raises(ValueError, match=match):
        parallel.split_batch(batch, 4)


def test_make_mesh_and_sharded_step_bad_input():
    with pytest.raises(ValueError, match=r"num_devices must be in \[1, 1\].*got 2"):
        parallel.make_mesh(2)
    with pytest.raises(ValueError, match="axis_name.*'data'"):
        parallel.make_sharded_train_step(lambda s, b: (s, {}), parallel.make_mesh(), axis_name="data")


def test_replicate_roundtrip_keeps_typed_keys():
    import jax

    tree = {"w": np.ones((2, 3), np.float32), "rng": jax.random.key(1), "tx": optax.sgd(0.1).init(np.ones(2))}
    rep = parallel.replicate(tree)
    assert rep["w"].shape == (1, 2, 3)
    back = parallel.unreplicate(rep)
    np.testing.assert_array_equal(back["w"], tree["w"])
    np.testing.assert_array_equal(jax.random.key_data(back["rng"]), jax.random.key_data(tree["rng"]))
