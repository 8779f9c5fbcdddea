"""Small typed registries: name -> factory, listing the valid names in their errors.

Experiments pick models, optimizers and datasets by name from flags. A
:class:`Registry` maps each accepted name to a real callable (go-to-definition works)
and turns an unknown name into a :class:`~experiments._common.UsageError` that lists
the valid choices — the one-line, exit-code-2 error of :func:`experiments._common.run`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Generic, Iterable, Mapping, TypeVar

from jax231 import models, optimizers, pipelines

from experiments._common._cli import parse_choices, split_list

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Registry(Generic[T]):
    """Names accepted by one flag, each mapped to the factory it selects.

    Attributes:
      flag: the flag the names come from (used in error messages, e.g. ``'optimizers'``).
      entries: ``name -> factory``; ``factory(**kwargs)`` builds the object.
      prefixes: open-ended names also accepted (e.g. ``'tfds:'`` for ``'tfds:mnist'``).
      open_factory: ``factory(name, **kwargs)`` for the open-ended names.
    """

    flag: str
    entries: Mapping[str, Callable[..., T]]
    prefixes: tuple[str, ...] = ()
    open_factory: Callable[..., T] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The valid names, in registration order."""
        return tuple(self.entries)

    def _choices(self) -> tuple[str, ...]:
        return (*self.names, *(f"{p}<...>" for p in self.prefixes))

    def check(self, name: str) -> str:
        """Returns ``name`` if registered (or open-ended); ``UsageError`` listing valid names otherwise."""
        if any(name.startswith(p) and len(name) > len(p) for p in self.prefixes):
            return name
        return parse_choices(self.flag, [name], self._choices())[0]

    def parse(self, value: str | Iterable[str] | None) -> tuple[str, ...]:
        """Parses a comma-separated selection (``'all'`` = every fixed name) against the registry."""
        names = split_list(value)
        if names == ("all",):
            return self.names
        if not names:
            parse_choices(self.flag, names, self._choices())  # raises: nothing selected
        return tuple(dict.fromkeys(self.check(name) for name in names))

    def get(self, name: str, **kwargs: Any) -> T:
        """Builds the object registered under ``name`` with ``kwargs``."""
        name = self.check(name)
        if name not in self.entries and self.open_factory is not None:
            return self.open_factory(name, **kwargs)
        return self.entries[name](**kwargs)


# ----------------------------------------------------------------------------- models
MODEL_NAMES: tuple[str, ...] = tuple(models.NAMES)
"""Names accepted by :func:`jax231.models.get`."""


def model_registry(flag: str = "models") -> Registry:
    """Registry over :func:`jax231.models.get`: ``registry.get('mlp', num_classes=10, ...)``."""
    return Registry(flag, {name: functools.partial(models.get, name) for name in MODEL_NAMES})


# ------------------------------------------------------------------------- optimizers
OPTIMIZER_NAMES: tuple[str, ...] = tuple(optimizers.NAMES)
"""Names accepted by :func:`jax231.optimizers.get` (the notes' order)."""


def optimizer_registry(flag: str = "optimizers") -> Registry:
    """Registry over :func:`jax231.optimizers.get`: ``registry.get('adam', learning_rate=1e-3)``."""
    return Registry(flag, {name: functools.partial(optimizers.get, name) for name in OPTIMIZER_NAMES})


# --------------------------------------------------------------------------- datasets
DATASET_NAMES = ("mnist1d", "digits", "cifar10_shared")
"""Datasets that need no download (``cifar10_shared`` reads ``../shared``)."""

DATASET_PREFIXES = ("tfds:", "npz:", "imagefolder:")
"""Open-ended dataset names: ``tfds:<TFDS name>`` (may download), ``npz:<path>``, ``imagefolder:<path>``."""


def dataset_name(name: str) -> str:
    """The name :func:`jax231.pipelines.load_arrays` takes (``'tfds:mnist'`` -> ``'mnist'``)."""
    return name[len("tfds:"):] if name.startswith("tfds:") else name


def dataset_registry(flag: str = "dataset", *, extra: Iterable[str] = ()) -> Registry:
    """Registry over :func:`jax231.pipelines.load_arrays`: ``registry.get('mnist1d', split='train')``.

    Args:
      flag: flag name for error messages.
      extra: further names to accept as they are (e.g. a TFDS name served by
        ``tfds.testing.mock_data`` in tests).
    """
    names = tuple(dict.fromkeys((*DATASET_NAMES, *extra)))
    return Registry(flag, {name: functools.partial(pipelines.load_arrays, dataset_name(name)) for name in names},
                    prefixes=DATASET_PREFIXES,
                    open_factory=lambda name, **kw: pipelines.load_arrays(dataset_name(name), **kw))
