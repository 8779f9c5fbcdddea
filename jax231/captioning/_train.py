"""Training a :class:`~jax231.models.Captioner` by teacher forcing, in compiled chunks of updates.

``jax231.training.fit`` calls ``apply(x)`` on images alone; a captioner's forward pass also
reads the caption (the teacher-forced inputs), so it is trained here with the same update
``w <- w + update(grad mean_i L_i(w))``, data order (:func:`jax231.training.epoch_permutation`)
and one ``lax.scan`` of updates between two history rows.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jax231 import training
from jax231.types import OptState, Params


class CaptionTrainResult(NamedTuple):
    """Final ``params`` and ``opt_state``; ``history``: ``'step'``, ``'time'``, ``'loss'`` (chunk means)."""

    params: Params
    opt_state: OptState
    history: dict[str, list]


@functools.partial(jax.jit, static_argnames=("loss_fn", "optimizer", "num_steps", "batch_size"),
                   donate_argnums=(0, 1))
def _chunk(params, opt_state, step0, data_key, images, captions, *, loss_fn, optimizer, num_steps, batch_size):
    n = images.shape[0]
    per_epoch = n // batch_size

    def objective(p, x, y):
        return jnp.mean(loss_fn(p, x, y))

    def body(carry, t):
        p, s = carry
        perm = training.epoch_permutation(data_key, t // per_epoch, n)
        idx = jax.lax.dynamic_slice_in_dim(perm, (t % per_epoch) * batch_size, batch_size)
        value, grads = jax.value_and_grad(objective)(p, images[idx], captions[idx])
        updates, s = optimizer.update(grads, s, p)
        p = jax.tree_util.tree_map(lambda w, u: (w + u).astype(w.dtype), p, updates)
        return (p, s), value

    (params, opt_state), values = jax.lax.scan(body, (params, opt_state), step0 + jnp.arange(num_steps))
    return params, opt_state, jnp.mean(values)


def train_captioner(
    model: Any,
    optimizer: Any,
    data: Mapping[str, Any],
    *,
    num_steps: int,
    batch_size: int,
    seed: int = 0,
    eval_every: int = 100,
    progress: bool = False,
    max_seconds: float | None = None,
) -> CaptionTrainResult:
    """Trains ``model`` on ``data = {'image': (N, H, W, C), 'caption': (N, T)}`` for ``num_steps`` updates.

    Update :math:`t` uses examples ``epoch_permutation(data_key, t // (N // B), N)[(t mod (N // B)) B :][:B]``,
    ``init_key, data_key = split(key(seed))``: same seed, same parameters.

    Args:
      model: a :class:`~jax231.models.Captioner`.
      optimizer: a ``GradientTransformation``.
      data: the images and their token ids.
      num_steps, batch_size, seed: updates, examples per update, the run's seed.
      eval_every: updates per compiled chunk (one history row each).
      progress: a progress bar on stderr.
      max_seconds: stop at the first chunk boundary past this wall-clock budget.

    Returns:
      A :class:`CaptionTrainResult`.
    """
    for name, value in (("num_steps", num_steps), ("batch_size", batch_size), ("eval_every", eval_every)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    images, captions = jnp.asarray(data["image"]), jnp.asarray(data["caption"], jnp.int32)
    if captions.ndim != 2 or captions.shape[0] != images.shape[0]:
        raise ValueError(f"data: expected 'caption' of shape ({images.shape[0]}, T), got {tuple(captions.shape)}")
    if batch_size > images.shape[0]:
        raise ValueError(f"batch_size: expected at most the {images.shape[0]} examples, got {batch_size}")
    init_key, data_key = jax.random.split(jax.random.PRNGKey(seed))
    params = model.init(init_key)
    opt_state = optimizer.init(params)
    history: dict[str, list] = {"step": [], "time": [], "loss": []}
    bar = training.ProgressBar(num_steps) if progress else None
    start, t = time.monotonic(), 0
    while t < num_steps:
        length = min(eval_every, num_steps - t)
        params, opt_state, loss = _chunk(params, opt_state, jnp.int32(t), data_key, images, captions,
                                         loss_fn=model.loss, optimizer=optimizer, num_steps=length,
                                         batch_size=batch_size)
        t += length
        history["step"].append(t)
        history["time"].append(time.monotonic() - start)
        history["loss"].append(float(loss))
        if bar is not None:
            bar.update(t, {"train_loss": history["loss"][-1]})
        if not math.isfinite(history["loss"][-1]) or (max_seconds is not None and time.monotonic() - start > max_seconds):
            break
    if bar is not None:
        bar.close()
    return CaptionTrainResult(params, opt_state, history)
