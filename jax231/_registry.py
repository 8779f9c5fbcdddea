"""One typed registry for every family chosen by name: models, optimizers, schedules, datasets.

A :class:`Registry` maps a name to a real factory (go-to-definition works, nothing is
a string DSL). Names are derived from what is registered (the factory's
``__name__`` unless a name is given once, at registration), never listed twice.
``registry.get(name, **kwargs)`` checks the name (the error lists the valid names)
and the keyword arguments against the factory's signature (the error lists the
valid keywords) before calling the factory, so a typo is a one-line ``ValueError``
and never a ``TypeError`` from deep inside.

Open-ended families (``npz:<path>``, ``imagefolder:<path>``) register a *prefix*
whose factory receives the rest of the name as its first argument.

Capabilities (does this optimizer need the objective?) are attributes of the built
object, never of its name: the registry only builds.

Examples:
  >>> registry = Registry[GradientTransformation]("optimizer")
  >>> registry.register(sgd)
  >>> registry.register(adam)
  >>> registry.names
  ('sgd', 'adam')
  >>> registry.get("adam", learning_rate=1e-3)
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Generic, Iterator, Optional, TypeVar

from jax231 import _validation

__all__ = ["Registry"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class Registry(Generic[T]):
    """Names -> factories of one family ``T``, with checked lookup.

    Args:
      kind: what the names name (``'model'``, ``'optimizer'``, ``'schedule'``,
        ``'dataset'``); the argument in error messages is ``f"{kind} name"``.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._prefixes: dict[str, Callable[..., T]] = {}

    # ---------------------------------------------------------------- registration
    def register(self, factory: F, *, name: Optional[str] = None) -> F:
        """Registers ``factory`` under ``name`` (default ``factory.__name__``); returns it.

        Usable as a decorator. Raises ``ValueError`` when the name is taken.
        """
        key = name if name is not None else factory.__name__
        if key in self._factories or key in self._prefixes:
            _validation.fail(f"{self.kind} name", "a name not registered yet", key)
        self._factories[key] = factory
        return factory

    def register_prefix(self, prefix: str, factory: Callable[..., T]) -> None:
        """Registers the open family ``prefix<rest>``: ``get(prefix + rest, **kw)`` calls
        ``factory(rest, **kw)``. ``prefix`` ends with ``':'``."""
        if not prefix.endswith(":"):
            _validation.fail("prefix", "a string ending with ':'", prefix)
        self._prefixes[prefix] = factory

    # ---------------------------------------------------------------------- lookup
    @property
    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._factories)

    @property
    def prefixes(self) -> tuple[str, ...]:
        """The open-family prefixes, in registration order."""
        return tuple(self._prefixes)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._factories or self._split(name) is not None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)

    def _split(self, name: str) -> Optional[tuple[str, str]]:
        for prefix in self._prefixes:
            if name.startswith(prefix) and len(name) > len(prefix):
                return prefix, name[len(prefix) :]
        return None

    def choices(self) -> tuple[str, ...]:
        """Everything accepted, for messages: the names, then ``'<prefix><...>'``."""
        return (*self.names, *(f"{p}<...>" for p in self._prefixes))

    def check(self, name: Any) -> str:
        """Returns ``name`` when it is registered; ``ValueError`` listing the valid names otherwise."""
        if not isinstance(name, str) or name not in self:
            _validation.fail(f"{self.kind} name", f"one of {', '.join(self.choices())}", name)
        return name

    def factory(self, name: str) -> Callable[..., T]:
        """The factory registered under ``name`` (for a prefixed name, the family's factory)."""
        self.check(name)
        split = self._split(name) if name not in self._factories else None
        return self._prefixes[split[0]] if split else self._factories[name]

    def keywords(self, name: str) -> tuple[str, ...]:
        """The keyword arguments ``get(name, ...)`` accepts (empty when the factory takes ``**kwargs``).

        For a prefixed name the first positional parameter (the rest of the name) is left out.
        """
        params = list(inspect.signature(self.factory(name)).parameters.values())
        if name not in self._factories:
            params = params[1:]
        return tuple(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))

    def _takes_any_keyword(self, name: str) -> bool:
        params = inspect.signature(self.factory(name)).parameters.values()
        return any(p.kind is p.VAR_KEYWORD for p in params)

    def get(self, name: str, **kwargs: Any) -> T:
        """Builds the object registered under ``name`` with ``kwargs``.

        Raises:
          ValueError: unknown name (lists the valid names); a keyword the factory does
            not take (lists those it takes); or a bad value (raised by the factory).
        """
        factory = self.factory(name)
        if not self._takes_any_keyword(name):
            _validation.check_keywords(name, kwargs, self.keywords(name))
        split = self._split(name) if name not in self._factories else None
        if split:
            return factory(split[1], **kwargs)
        return factory(**kwargs)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={self.choices()})"
