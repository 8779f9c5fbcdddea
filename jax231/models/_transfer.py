"""Transfer learning helpers: parameter groups, freeze labels, features at an intermediate stage.

The notes ("Transfer Learning"): with a small dataset, train a linear
classifier on the features of a pretrained network (possibly taken *earlier*
in the network when the new data differ from the old); with more data,
fine-tune the last stages, possibly with a lower learning rate for the
earlier ones. The groups are the top-level keys of a model's params
(``stem``, ``stage_0`` .., ``fc_0`` .., ``head``), ordered input to output by
:func:`param_groups`; :func:`group_labels` / :func:`freeze_labels` make the
labels trees of :func:`jax231.optimizers.multi_transform` and
:func:`jax231.optimizers.scale_by_group`.

:func:`stage_features` supports ``'resnet'``, ``'vgg'`` (stages ``stage_s``) and
``'mlp'`` (hidden layers ``dense_i``) (:data:`FEATURE_MODELS`): the model
truncated after that stage, evaluated in inference mode, on the full model's params.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Sequence

import jax.numpy as jnp

from jax231.models._cnn import vgg
from jax231.models._mlp import mlp
from jax231.models._resnet import _CONVS_PER_BLOCK, resnet
from jax231.types import Array, ArrayLike, ModelState, Params, PyTree

FEATURE_MODELS: tuple[str, ...] = ("mlp", "resnet", "vgg")
"""Models :func:`stage_features` can truncate."""

_RANK = {"stem": 0, "stage": 1, "conv": 1, "block": 1, "layer": 1, "dense": 1, "norm": 1, "fc": 2, "head": 3}


def _order(group: str) -> tuple[int, int, str]:
    match = re.fullmatch(r"([a-z]+)(?:_(\d+))?", group)
    prefix, index = (match.group(1), int(match.group(2) or 0)) if match else (group, 0)
    return _RANK.get(prefix, 1), index, group


def param_groups(params: Params) -> tuple[str, ...]:
    """The top-level parameter groups, from input to output (``stem``, ``stage_i``, ``fc_i``, ``head``)."""
    if not isinstance(params, Mapping) or not params:
        raise ValueError(f"params: expected a non-empty dict of parameter groups, got {type(params).__name__}")
    return tuple(sorted(params, key=_order))


def last_groups(params: Params, n: int) -> tuple[str, ...]:
    """The last ``n`` groups of :func:`param_groups` (``n = 1``: the head only)."""
    groups = param_groups(params)
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(groups):
        raise ValueError(f"n: expected an int in [0, {len(groups)}] (groups {list(groups)}), got {n!r}")
    return groups[len(groups) - n :]


def group_labels(params: Params, groups: Mapping[str, str] | None = None) -> PyTree:
    """A labels tree: every leaf gets its top-level group's name, or ``groups[name]`` when given.

    Raises:
      ValueError: when ``groups`` misses a group or names one the params lack.
    """
    names = param_groups(params)
    if groups is not None:
        unknown, missing = sorted(set(groups) - set(names)), sorted(set(names) - set(groups))
        if unknown or missing:
            raise ValueError(
                f"groups: expected a label for each of {list(names)}, got unknown {unknown}, missing {missing}"
            )
    label = (lambda g: g) if groups is None else groups.__getitem__
    return {g: _fill(params[g], label(g)) for g in params}


def _fill(tree: Any, value: str) -> Any:
    if isinstance(tree, Mapping):
        return {k: _fill(v, value) for k, v in tree.items()}
    return value


def freeze_labels(params: Params, trainable: Sequence[str]) -> PyTree:
    """``'train'`` on the leaves of the ``trainable`` groups, ``'frozen'`` elsewhere.

    With :func:`jax231.optimizers.multi_transform` ``({'train': opt, 'frozen':
    set_to_zero()}, labels)`` the frozen leaves get exactly zero updates.
    """
    names = param_groups(params)
    unknown = sorted(set(trainable) - set(names))
    if unknown:
        raise ValueError(f"trainable: expected groups among {list(names)}, got {unknown}")
    return group_labels(params, {g: "train" if g in trainable else "frozen" for g in names})


def _stage_index(name: str, stage: str, num_stages: int, prefix: str = "stage") -> int:
    match = re.fullmatch(prefix + r"_(\d+)", str(stage))
    if not match or int(match.group(1)) >= num_stages:
        raise ValueError(
            f"stage: expected one of {[f'{prefix}_{s}' for s in range(num_stages)]} for {name}, got {stage!r}"
        )
    return int(match.group(1))


def _identity_head(params: Params, groups: Sequence[str], dim: int) -> Params:
    """The kept groups, and a head that is the identity (its logits are the features, exactly)."""
    kept = {g: params[g] for g in groups}
    kept["head"] = {"w": jnp.eye(dim, dtype=jnp.float32), "b": jnp.zeros((dim,), jnp.float32)}
    return kept


def stage_features(name: str, stage: str, **config: Any) -> Callable[[Params, ModelState, ArrayLike], Array]:
    """``features(params, state, x)``: the output of ``stage`` of model ``name`` built with ``config``.

    ``resnet``: the globally average-pooled output of stage ``s`` (``(N, C_s)``);
    ``vgg``: the flattened, max-pooled output of stage ``s``; ``mlp``: hidden
    layer ``dense_i``'s activations (after its norm and activation). All in inference
    mode (BatchNorm running statistics), on the *full* model's params: the model
    is rebuilt with stages ``0..s`` only and a head equal to the identity.

    Raises:
      ValueError: for a model outside :data:`FEATURE_MODELS` or a stage it lacks.
    """
    if name == "resnet":
        num_stages, depth = config.get("num_stages", 3), config.get("depth", 20)
        s = _stage_index(name, stage, num_stages)
        per_block = _CONVS_PER_BLOCK[config.get("block", "basic")]
        blocks = (depth - 2) // (per_block * num_stages)
        model = resnet(**(dict(config) | {"num_stages": s + 1, "depth": per_block * (s + 1) * blocks + 2}))
        groups = ["stem"] + [f"stage_{i}" for i in range(s + 1)]
    elif name == "vgg":
        widths = tuple(config.get("stage_widths", (64, 128, 256, 512, 512)))
        convs = tuple(config.get("convs_per_stage", (2, 2, 3, 3, 3)))
        s = _stage_index(name, stage, len(widths))
        model = vgg(
            **(dict(config) | {"stage_widths": widths[: s + 1], "convs_per_stage": convs[: s + 1], "hidden_dims": ()})
        )
        groups = [f"stage_{i}" for i in range(s + 1)]
    elif name == "mlp":
        hidden = tuple(config.get("hidden_sizes", (100,)))
        s = _stage_index(name, stage, len(hidden), prefix="dense")
        model = mlp(**(dict(config) | {"hidden_sizes": hidden[: s + 1]}))
        groups = [f"{kind}_{i}" for i in range(s + 1) for kind in ("dense", "norm")]
    else:
        raise ValueError(
            f"name: expected one of {list(FEATURE_MODELS)} (models stage_features can truncate), got {name!r}"
        )

    def features(params: Params, state: ModelState, x: ArrayLike) -> Array:
        kept = [g for g in groups if g in params]
        dim = _feature_dim(name, params[kept[-1]] if name != "mlp" else params[f"dense_{s}"], x, s)
        kept_state = {g: state[g] for g in kept if g in state}
        return model.apply(_identity_head(params, kept, dim), kept_state, x, train=False)[0]

    return features


def _feature_dim(name: str, last_stage: Params, x: ArrayLike, s: int) -> int:
    """The width of the features of stage ``s`` (from its last weight and the input's size)."""
    if name == "mlp":
        return int(last_stage["w"].shape[-1])
    if name == "resnet":
        block = last_stage[max(last_stage, key=lambda k: int(k.split("_")[1]))]
        convs = sorted((k for k in block if k.startswith("conv_")), key=lambda k: int(k.split("_")[1]))
        return int(block[convs[-1]]["w"].shape[-1])
    convs = sorted((k for k in last_stage if k.startswith("conv_")), key=lambda k: int(k.split("_")[1]))
    h, w = jnp.shape(x)[1] // 2 ** (s + 1), jnp.shape(x)[2] // 2 ** (s + 1)
    return int(h * w * last_stage[convs[-1]]["w"].shape[-1])
