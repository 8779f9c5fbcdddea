"""On-device epochs and splitting batches across devices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import pipelines
from jax231._rng import run_keys
from tests import test_utils


def _arrays(n=50):
    image = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, 6, 6, 3)).copy()
    return {"image": image, "label": (np.arange(n) % 7).astype(np.int32)}


def _rows(batches):
    return np.concatenate([np.asarray(b["image"][:, 2, 2, 0]) for b in batches]).astype(int)


def test_device_epochs_are_seeded_permutations():
    run = lambda seed: _rows(pipelines.device_epochs(_arrays(), batch_size=10, seed=seed, num_epochs=2))  # noqa: E731
    a, b, c = run(0), run(0), run(1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(np.sort(a[:50]), np.arange(50))
    np.testing.assert_array_equal(np.sort(a[50:]), np.arange(50))
    assert not np.array_equal(a[:50], a[50:])


def test_epoch_order_is_a_function_of_key_and_epoch_only():
    # The RNG convention (jax231/_rng.py): epochs use run_keys(seed).data, the key fit's order uses.
    key = run_keys(5).data
    first = list(pipelines.device_epochs(_arrays(), batch_size=10, seed=5, num_epochs=3))
    replay = pipelines.epoch_indices(key, 2, 50, 10)
    np.testing.assert_array_equal(_rows(first[10:]), np.asarray(replay).reshape(-1))


def test_eval_batches_keep_order_remainder_and_are_never_augmented():
    arrays = _arrays(23)
    batches = list(pipelines.device_epochs(arrays, batch_size=10, seed=0, shuffle=False, drop_remainder=False))
    assert [len(b["label"]) for b in batches] == [10, 10, 3]
    np.testing.assert_array_equal(np.concatenate([b["image"] for b in batches]), arrays["image"])
    with pytest.raises(ValueError, match="training only"):
        next(pipelines.device_epochs(arrays, batch_size=10, seed=0, shuffle=False, augment=True))


def test_device_augmentation_keeps_labels():
    arrays = _arrays()
    for batch in pipelines.device_epochs(arrays, batch_size=10, seed=0, augment={"pad_crop": 1, "flip": True}):
        assert batch["image"].shape == (10, 6, 6, 3)
        # Pixel [2, 2] is never padding with pad 1: it still holds the row index.
        np.testing.assert_array_equal(_rows([batch]) % 7, batch["label"])


def test_epoch_indices_and_gather_work_inside_scan():
    data = pipelines.to_device(_arrays())

    @jax.jit
    def epoch_sum(key):
        indices = pipelines.epoch_indices(key, 0, 50, 10)

        def step(total, idx):
            return total + pipelines.gather_batch(data, idx)["image"][:, 2, 2, 0].sum(), None

        return jax.lax.scan(step, jnp.float32(0), indices)[0]

    assert float(epoch_sum(jax.random.key(0))) == float(np.arange(50).sum())


def test_shard_batch_adds_a_device_axis():
    batch = {"image": np.zeros((8, 4, 4, 3)), "label": np.arange(8)}
    out = pipelines.shard_batch(batch, 4)
    assert out["image"].shape == (4, 2, 4, 4, 3)
    np.testing.assert_array_equal(out["label"], np.arange(8).reshape(4, 2))
    with pytest.raises(ValueError, match="batch size 8 is not divisible by num_devices=3"):
        pipelines.shard_batch(batch, 3)


def test_global_batch_on_four_devices():
    out = test_utils.run_with_devices(
        """
        import jax, numpy as np
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
        from jax231 import pipelines
        mesh = Mesh(np.array(jax.devices()), ("data",))
        batch = {"image": np.arange(8 * 3, dtype=np.float32).reshape(8, 3), "label": np.arange(8)}
        g = pipelines.global_batch(batch, NamedSharding(mesh, P("data")))
        assert g["image"].shape == (8, 3) and len(g["image"].addressable_shards) == 4
        assert all(s.data.shape == (2, 3) for s in g["image"].addressable_shards)
        np.testing.assert_array_equal(np.asarray(g["label"]), np.arange(8))
        print("OK")
    """,
        num_devices=4,
    )
    assert "OK" in out


def test_bad_device_inputs():
    with pytest.raises(ValueError, match="batch_size"):
        next(pipelines.device_epochs(_arrays(5), batch_size=6, seed=0))
    with pytest.raises(ValueError, match="arrays"):
        pipelines.to_device({"image": np.zeros((3, 2)), "label": np.zeros(4)})
    with pytest.raises(ValueError, match="sharding"):
        pipelines.global_batch({"x": np.zeros(2)}, "data")
