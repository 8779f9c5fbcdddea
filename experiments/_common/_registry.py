"""The library's registries seen from the command line: errors name the flag and exit 2.

Models, optimizers and datasets are registered once, in the library
(:data:`jax231.models.REGISTRY`, :data:`jax231.optimizers.REGISTRY`,
:data:`jax231.pipelines.SOURCES`, all :class:`jax231._registry.Registry`). A
:class:`Registry` here adds only what a flag needs: comma-separated selections
(``'all'``), and errors that are :class:`~experiments._common.UsageError` naming the
flag (``--models: expected one of linear, mlp, ..., got 'mlpp'``) — the one-line,
exit-code-2 error of :func:`experiments._common.run`.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, Iterable, Mapping, Optional, TypeVar, Union

from experiments._common._cli import UsageError, split_list
from jax231 import _validation, models, optimizers, pipelines
from jax231._registry import Registry as LibraryRegistry

T = TypeVar("T")


class Registry(Generic[T]):
    """One flag's view of a library registry.

    Args:
      flag: the flag the names come from, for messages (e.g. ``'optimizers'`` or
        ``'config.model'``).
      entries: a :class:`jax231._registry.Registry`, or a mapping ``name -> factory``
        (registered into a new one).
      build: ``build(name, **kwargs)`` making the object (default: the library
        registry's ``get``).
      extra: further names accepted as they are (passed to ``build``).
    """

    def __init__(
        self,
        flag: str,
        entries: Union[LibraryRegistry[T], Mapping[str, Callable[..., T]]],
        *,
        build: Optional[Callable[..., T]] = None,
        extra: Iterable[str] = (),
    ) -> None:
        if not isinstance(entries, LibraryRegistry):
            library: LibraryRegistry[T] = LibraryRegistry(flag)
            for name, factory in entries.items():
                library.register(factory, name=name)
            entries = library
        self.flag = flag
        self.library = entries
        self._build = build if build is not None else entries.get
        self._extra = tuple(name for name in extra if name not in entries.names)

    @property
    def names(self) -> tuple[str, ...]:
        """The valid fixed names, in registration order."""
        return (*self.library.names, *self._extra)

    def _choices(self) -> tuple[str, ...]:
        return (*self.names, *(f"{p}<...>" for p in self.library.prefixes))

    def check(self, name: str) -> str:
        """Returns ``name`` if accepted; ``UsageError`` listing the valid names otherwise."""
        if name in self._extra or name in self.library:
            return name
        raise UsageError(str(_validation.error(f"--{self.flag}", f"one of {', '.join(self._choices())}", name)))

    def parse(self, value: Union[str, Iterable[str], None]) -> tuple[str, ...]:
        """Parses a comma-separated selection (``'all'`` = every fixed name) against the registry."""
        names = split_list(value)
        if names == ("all",):
            return self.names
        if not names:
            raise UsageError(
                str(_validation.error(f"--{self.flag}", f"at least one of {', '.join(self._choices())}", value))
            )
        return tuple(dict.fromkeys(self.check(name) for name in names))

    def get(self, name: str, **kwargs: Any) -> T:
        """Builds the object registered under ``name``; a bad keyword or value is a ``UsageError``."""
        self.check(name)
        try:
            return self._build(name, **kwargs)
        except ValueError as err:
            if isinstance(err, UsageError):
                raise
            # A library message already names its argument ('discount: expected ...'); say which
            # selection built it only when it does not.
            named = str(err).split(":", 1)[0].replace(" ", "").replace("_", "").isalnum()
            raise UsageError(str(err) if named else f"--{self.flag}={name}: {err}") from None


# ----------------------------------------------------------------------------- models
MODEL_NAMES: tuple[str, ...] = models.REGISTRY.names
"""Names accepted by :func:`jax231.models.get`."""


def model_registry(flag: str = "models") -> Registry:
    """:data:`jax231.models.REGISTRY` for ``--flag``: ``registry.get('mlp', num_classes=10, ...)``."""
    return Registry(flag, models.REGISTRY)


# ------------------------------------------------------------------------- optimizers
OPTIMIZER_NAMES: tuple[str, ...] = optimizers.REGISTRY.names
"""Names accepted by :func:`jax231.optimizers.get` (the notes' order)."""


def optimizer_registry(flag: str = "optimizers") -> Registry:
    """:data:`jax231.optimizers.REGISTRY` for ``--flag``: ``registry.get('adam', learning_rate=1e-3)``."""
    return Registry(flag, optimizers.REGISTRY)


# --------------------------------------------------------------------------- datasets
DATASET_NAMES: tuple[str, ...] = pipelines.SOURCES.names
"""Datasets that need no download (``cifar10_shared`` reads ``../shared``)."""

DATASET_PREFIXES: tuple[str, ...] = pipelines.SOURCES.prefixes
"""Open-ended dataset names: ``tfds:<TFDS name>`` (may download), ``npz:<path>``, ``imagefolder:<path>``."""


def dataset_name(name: str) -> str:
    """The name :func:`jax231.pipelines.load_arrays` takes (``'tfds:mnist'`` -> ``'mnist'``)."""
    return name[len("tfds:") :] if name.startswith("tfds:") else name


def _load_arrays(name: str, **kwargs: Any) -> Any:
    return pipelines.load_arrays(dataset_name(name), **kwargs)


def dataset_registry(flag: str = "dataset", *, extra: Iterable[str] = ()) -> Registry:
    """:data:`jax231.pipelines.SOURCES` for ``--flag``: ``registry.get('mnist1d', split='train')``
    gives :func:`jax231.pipelines.load_arrays`'s arrays.

    Args:
      flag: flag name for error messages.
      extra: further names to accept as they are (e.g. a TFDS name served by
        ``tfds.testing.mock_data`` in tests).
    """
    return Registry(flag, pipelines.SOURCES, build=_load_arrays, extra=extra)
