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

from experiments._common._cli import UsageError, parse_choices

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Registry(Generic[T]):
    """Names accepted by one flag, each mapped to the factory it selects.

    Attributes:
      flag: the flag the names come from (used in error messages, e.g. ``'optimizers'``).
      entries: ``name -> factory``; ``factory(**kwargs)`` builds the object.
    """

    flag: str
    entries: Mapping[str, Callable[..., T]]

    @property
    def names(self) -> tuple[str, ...]:
        """The valid names, in registration order."""
        return tuple(self.entries)

    def check(self, name: str) -> str:
        """Returns ``name`` if registered; raises ``UsageError`` listing valid names otherwise."""
        return parse_choices(self.flag, [name], self.names)[0]

    def parse(self, value: str | Iterable[str] | None) -> tuple[str, ...]:
        """Parses a comma-separated selection (``'all'`` = every name) against the registry."""
        return parse_choices(self.flag, value, self.names)

    def get(self, name: str, **kwargs: Any) -> T:
        """Builds the object registered under ``name`` with ``kwargs``."""
        return self.entries[self.check(name)](**kwargs)


# ----------------------------------------------------------------------------- models
MODEL_NAMES = ("linear", "mlp", "two_layer_net", "three_layer_convnet", "vgg", "resnet",
               "mobilenet", "cnn1d", "rnn", "lstm", "gru")
"""Model names of the ``jax231.models.get`` contract (used when the package lists none)."""


def model_registry(flag: str = "models") -> Registry:
    """Registry over :func:`jax231.models.get`: ``registry.get('mlp', num_classes=10, ...)``."""
    from jax231 import models  # pylint: disable=import-outside-toplevel

    names = tuple(getattr(models, "NAMES", MODEL_NAMES))
    return Registry(flag, {name: functools.partial(_build_model, name) for name in names})


def _build_model(name: str, **config: Any):
    from jax231 import models  # pylint: disable=import-outside-toplevel

    return models.get(name, **config)


# ------------------------------------------------------------------------- optimizers
OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "lbfgs")
"""Update rules of the notes, in the order the notes introduce them."""


def optimizer_registry(flag: str = "optimizers") -> Registry:
    """Registry over :func:`jax231.optimizers.get`: ``registry.get('adam', learning_rate=1e-3)``."""
    from jax231 import optimizers  # pylint: disable=import-outside-toplevel

    names = tuple(n for n in getattr(optimizers, "NAMES", OPTIMIZER_NAMES))
    return Registry(flag, {name: functools.partial(_build_optimizer, name) for name in names})


def _build_optimizer(name: str, **hyperparams: Any):
    from jax231 import optimizers  # pylint: disable=import-outside-toplevel

    return optimizers.get(name, **hyperparams)


# --------------------------------------------------------------------------- datasets
DATASET_NAMES = ("mnist1d", "digits", "cifar10_shared")
"""Datasets that need no download (``cifar10_shared`` reads ``../shared``)."""


def dataset_registry(flag: str = "dataset", *, extra: Iterable[str] = ()) -> Registry:
    """Registry over :func:`jax231.pipelines.load_arrays`: ``registry.get('mnist1d', split='train')``.

    Args:
      flag: flag name for error messages.
      extra: further TFDS names to accept (e.g. ``'mnist'``, which downloads, or a name
        served by ``tfds.testing.mock_data`` in tests).
    """
    from jax231 import pipelines  # pylint: disable=import-outside-toplevel

    names = tuple(dict.fromkeys((*DATASET_NAMES, *extra)))
    del pipelines  # imported above so that a missing package fails here, not later
    return Registry(flag, {name: functools.partial(_load_arrays, name) for name in names})


def _load_arrays(name: str, **kwargs: Any):
    from jax231 import pipelines  # pylint: disable=import-outside-toplevel

    return pipelines.load_arrays(name, **kwargs)
