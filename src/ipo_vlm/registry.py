"""Backends are named by spec strings ``scheme:name`` (``hf:openai/clip-vit-base-patch16``,
``openai:gpt-4o-mini``, ``llamacpp:/path/model.gguf``, ``demo:fashion``) or a bare ``scheme``
(``local``, ``none``). One ``Registry`` per kind maps a scheme to a factory. Built-ins register
exactly like third-party plugins do, through the entry-point group ``ipo_vlm.<kind>``; the
entry points are read lazily, on the first lookup, never at import time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module, metadata
from typing import Any, Generic, TypeVar

from ipo_vlm.errors import ConfigError

T = TypeVar("T")


def spec_options(name: str, option_types: dict[str, Callable[[str], Any]], what: str) -> tuple[str, dict[str, Any]]:
    """Split ``"gpt-4o-mini?concurrency=8&timeout=30"`` into the name and typed options; an
    unknown option or a value of the wrong type is a ``ConfigError`` naming ``what``."""
    from urllib.parse import parse_qsl

    base, _, query = name.partition("?")
    options: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in option_types:
            raise ConfigError(f"unknown {what} option {key!r}; known: {', '.join(sorted(option_types))}")
        try:
            options[key] = option_types[key](value)
        except ValueError:
            raise ConfigError(f"bad value for {what} option {key!r}: {value!r}") from None
    return base, options


def split_spec(spec: str) -> tuple[str, str]:
    """``"hf:openai/clip"`` -> ``("hf", "openai/clip")``; ``"local"`` -> ``("local", "")``."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"empty backend spec {spec!r}")
    scheme, sep, name = spec.strip().partition(":")
    return scheme.strip().lower(), name.strip() if sep else ""


@dataclass
class Registry(Generic[T]):
    """Scheme -> factory. A factory takes the name part of the spec plus keyword options.

    Factories may be given as ``"module:attr"`` strings so that registering a backend does not
    import its heavy dependencies."""

    kind: str
    #: what one entry is called in messages ("unknown vlm backend 'x'"); empty for "unknown method 'x'"
    noun: str = "backend"
    _factories: dict[str, Callable[..., T] | str] = field(default_factory=dict)
    _help: dict[str, str] = field(default_factory=dict)
    _plugins_loaded: bool = False

    def register(self, scheme: str, factory: Callable[..., T] | str, help: str = "") -> None:
        self._factories[scheme.lower()] = factory
        self._help[scheme.lower()] = help

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        try:
            eps = metadata.entry_points(group=f"ipo_vlm.{self.kind}")
        except Exception:  # a broken environment must not break built-in backends
            return
        for ep in eps:
            if ep.name.lower() not in self._factories:
                self._factories[ep.name.lower()] = ep.value
                self._help[ep.name.lower()] = f"plugin from {ep.value}"

    def schemes(self) -> dict[str, str]:
        """Known schemes with a one-line description each."""
        self._load_plugins()
        return dict(sorted(self._help.items()))

    def _factory(self, scheme: str) -> Callable[..., T]:
        self._load_plugins()
        if scheme not in self._factories:
            known = ", ".join(sorted(self._factories)) or "none"
            what = f"{self.kind} {self.noun}".strip()
            raise ConfigError(f"unknown {what} {scheme!r}; known: {known}")
        factory = self._factories[scheme]
        if isinstance(factory, str):
            module, _, attr = factory.partition(":")
            factory = getattr(import_module(module), attr)
            self._factories[scheme] = factory
        return factory

    def create(self, spec: str, **options: Any) -> T:
        scheme, name = split_spec(spec)
        return self._factory(scheme)(name, **options)
