"""Data on the accelerator: in-memory epochs and splitting batches across devices.

``device_epochs`` keeps a whole (small) dataset on the device and cuts
shuffled batches there, so a training loop never waits on the host; the
pieces (:func:`epoch_indices`, :func:`gather_batch`) are pure and jittable for
an epoch written as one ``lax.scan``. ``shard_batch`` and ``global_batch``
prepare host batches for data-parallel steps.
"""

from __future__ import annotations

import functools
from typing import Iterator, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from jax231._rng import run_keys
from jax231._validation import check_int, check_seed
from jax231.pipelines._augment import Augment, apply_params, as_augment, sample_params
from jax231.types import Array, PRNGKey, PyTree


class DeviceDataset(NamedTuple):
    """A split held on the device.

    Attributes:
      image: ``(N, *image_shape)`` float32.
      label: ``(N,)`` int32.
    """

    image: Array
    label: Array


def to_device(arrays: dict, *, sharding: Optional[jax.sharding.Sharding] = None) -> DeviceDataset:
    """Puts ``{'image', 'label'}`` (e.g. from :func:`load_arrays`) on the device."""
    if not isinstance(arrays, dict) or not {"image", "label"} <= set(arrays):
        raise ValueError(f"arrays: expected a dict with 'image' and 'label', got {type(arrays).__name__}")
    image, label = np.asarray(arrays["image"]), np.asarray(arrays["label"])
    if image.shape[:1] != label.shape or label.ndim != 1:
        raise ValueError(f"arrays: image {image.shape} and label {label.shape} differ in length")
    if image.dtype == np.uint8:
        image = image.astype(np.float32) / np.float32(255.0)
    put = functools.partial(jax.device_put, device=sharding)
    return DeviceDataset(put(image.astype(np.float32)), put(label.astype(np.int32)))


def epoch_indices(key: PRNGKey, epoch, num_examples: int, batch_size: int, *, shuffle: bool = True) -> Array:
    """``(num_batches, batch_size)`` example indices of one epoch (remainder dropped).

    The order is ``jax.random.permutation(fold_in(key, epoch), num_examples)``:
    a pure function of ``(key, epoch)``, so any epoch can be replayed.
    """
    if not 1 <= batch_size <= num_examples:
        raise ValueError(f"batch_size: expected 1 <= batch_size <= {num_examples} examples, got {batch_size}")
    num_batches = num_examples // batch_size
    order = (
        jax.random.permutation(jax.random.fold_in(key, epoch), num_examples) if shuffle else jnp.arange(num_examples)
    )
    return order[: num_batches * batch_size].reshape(num_batches, batch_size)


def gather_batch(
    data: DeviceDataset, indices: Array, key: Optional[PRNGKey] = None, augment: Optional[Augment] = None
) -> dict[str, Array]:
    """One batch ``{'image', 'label'}``, augmented with :func:`augment_batch` if asked."""
    images = data.image[indices]
    if augment is not None:
        if key is None:
            raise ValueError("key: augmentation needs a random key")
        params = sample_params(key, images.shape[0], images.shape[1:], augment)
        images = jax.vmap(lambda p, x: apply_params(p, x, augment))(params, images)
    return {"image": images, "label": data.label[indices]}


_gather_jit = jax.jit(gather_batch, static_argnames=("augment",))
_indices_jit = jax.jit(epoch_indices, static_argnames=("num_examples", "batch_size", "shuffle"))


def device_epochs(
    arrays: Union[dict, DeviceDataset],
    *,
    batch_size: int,
    seed: int,
    num_epochs: Optional[int] = 1,
    shuffle: bool = True,
    augment: Union[None, bool, dict, Augment] = None,
    drop_remainder: bool = True,
) -> Iterator[dict[str, Array]]:
    """Batches cut on the device from a dataset held there.

    Randomness follows the one RNG convention of jax231 (:mod:`jax231._rng`,
    the keys ``fit`` draws for the same seed): epoch ``e`` uses the permutation
    of :func:`epoch_indices` with key ``run_keys(seed).data`` (fit's
    ``epoch_permutation``), and batch ``b`` of epoch ``e`` is augmented with
    ``fold_in(run_keys(seed).hook, e * num_batches + b)``, the key fit's
    ``batch_fn`` gets at that update (on the device, :func:`augment_batch`'s
    transforms).

    Args:
      arrays: ``{'image', 'label'}`` NumPy arrays or a :class:`DeviceDataset`.
      batch_size: examples per batch.
      seed: seed of the order and of the augmentation.
      num_epochs: passes; ``None`` = forever.
      shuffle: shuffle each epoch (training); ``False`` keeps the stored order.
      augment: training-only augmentation (requires ``shuffle=True``).
      drop_remainder: drop the last partial batch (only ``shuffle=False`` may
        keep it).

    Yields:
      ``{'image': (B, ...) float32, 'label': (B,) int32}`` device arrays.
    """
    data = arrays if isinstance(arrays, DeviceDataset) else to_device(arrays)
    cfg = as_augment(augment)
    if cfg is not None and not shuffle:
        raise ValueError("augment: augmentation is for training only; pass shuffle=True")
    n = int(data.label.shape[0])
    check_int("batch_size", batch_size, low=1, high=n)
    keys = run_keys(check_seed("seed", seed))
    order_key, aug_key = keys.data, keys.hook
    epoch = 0
    while num_epochs is None or epoch < num_epochs:
        indices = _indices_jit(order_key, epoch, num_examples=n, batch_size=batch_size, shuffle=shuffle)
        for b in range(indices.shape[0]):
            key = jax.random.fold_in(aug_key, epoch * indices.shape[0] + b)
            yield _gather_jit(data, indices[b], key, cfg)
        if not drop_remainder and not shuffle and n % batch_size:
            yield _gather_jit(data, jnp.arange(n - n % batch_size, n), None, None)
        epoch += 1


def shard_batch(batch: PyTree, num_devices: int) -> PyTree:
    """Adds a leading device axis: ``(B, ...) -> (num_devices, B / num_devices, ...)``.

    For ``pmap``/``shard_map`` data parallelism.

    Raises:
      ValueError: ``B`` is not divisible by ``num_devices``.
    """
    if not isinstance(num_devices, (int, np.integer)) or num_devices < 1:
        raise ValueError(f"num_devices: expected an int >= 1, got {num_devices!r}")

    def split(x):
        b = x.shape[0]
        if b % num_devices:
            raise ValueError(
                f"batch: batch size {b} is not divisible by num_devices={num_devices}; "
                "use drop_remainder=True and a batch size that is a multiple of the device count"
            )
        return x.reshape(num_devices, b // num_devices, *x.shape[1:])

    return jax.tree_util.tree_map(split, batch)


def global_batch(batch: PyTree, sharding: jax.sharding.Sharding) -> PyTree:
    """This process's batch -> globally sharded ``jax.Array`` s.

    Each host passes its own part (e.g. from ``load(..., shard=(i, n))``); the
    global batch is the concatenation over processes along axis 0
    (``jax.make_array_from_process_local_data``).
    """
    if not isinstance(sharding, jax.sharding.Sharding):
        raise ValueError(f"sharding: expected a jax.sharding.Sharding, got {type(sharding).__name__}")
    return jax.tree_util.tree_map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)
