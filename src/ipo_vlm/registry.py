"""Backends are named by spec strings ``scheme:name`` (``hf:openai/clip-vit-base-patch16``,
``openai:gpt-4o-mini``, ``llamacpp:/path/model.gguf``, ``demo:fashion``) or a bare ``scheme``
(``local``, ``none``). One ``Registry`` per kind maps a scheme to a factory. Built-ins register
in code, next to the registry (``REGISTRY.register("hf", "ipo_vlm.vlm.hf:load_hf")``: a
``module:attr`` string, imported only when the scheme is first used); third-party plugins register
through the entry-point group ``ipo_vlm.<kind>`` (``ipo_vlm.vlm``, ``ipo_vlm.method``, ...) and
are then looked up exactly like a built-in. Entry points are read lazily, on the first lookup,
never at import time; a built-in name wins over a plugin of the same name.

Options ride on any spec as a query string (``hf:/models/clip?device=cpu``,
``local?n_ctx=8192``, ``interrogate?max_attributes=3``). A factory declares the options it takes
with :func:`takes_options`; the registry then parses, converts and validates them for every
kind alike, so an unknown option or a bad value is one clear ``ConfigError`` before anything is
loaded. A factory that declares nothing (an older plugin) receives the query untouched."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module, metadata
from typing import Any, Generic, TypeVar

from ipo_vlm.errors import ConfigError

T = TypeVar("T")


OptionTypes = dict[str, Callable[[str], Any]]


def spec_options(name: str, option_types: OptionTypes, what: str) -> tuple[str, dict[str, Any]]:
    """Split ``"gpt-4o-mini?concurrency=8&timeout=30"`` into the name and typed options; an
    unknown option or a bad value is a ``ConfigError`` naming ``what`` and the option."""
    from urllib.parse import parse_qsl

    base, _, query = name.partition("?")
    options: dict[str, Any] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ConfigError(f"bad {what} options {query!r}: expected name=value pairs joined by '&'") from None
    for key, value in pairs:
        options[key] = convert_option(key, value, option_types, what)
    return base, options


def convert_option(key: str, value: Any, option_types: OptionTypes, what: str) -> Any:
    """One option through its declared type; strings are converted, other values kept."""
    if key not in option_types:
        raise ConfigError(f"unknown {what} option {key!r}; known: {', '.join(sorted(option_types)) or 'none'}")
    if not isinstance(value, str):
        return value
    convert = option_types[key]
    try:
        return convert(value)
    except ValueError as e:
        expected = getattr(convert, "expected", None) or str(e).splitlines()[0]
        raise ConfigError(f"bad value for {what} option {key!r}: {value!r} ({expected})") from None


def _typed(expected: str, parse: Callable[[str], Any], ok: Callable[[Any], bool] = lambda v: True) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        value = parse(text.strip())
        if not ok(value):
            raise ValueError(expected)
        return value

    convert.expected = expected  # type: ignore[attr-defined]
    return convert


def _bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def int_at_least(low: int) -> Callable[[str], int]:
    return _typed(f"expected an integer >= {low}", int, lambda v: v >= low)


def float_at_least(low: float) -> Callable[[str], float]:
    return _typed(f"expected a number >= {low:g}", float, lambda v: v >= low)


def one_of(*choices: str) -> Callable[[str], str]:
    return _typed(f"expected one of {', '.join(choices)}", str, lambda v: v in choices)


def _is_device(v: str) -> bool:
    head, _, index = v.partition(":")
    return v in ("cpu", "auto", "mps") or (head == "cuda" and (not index or index.isdigit()))


integer = _typed("expected an integer", int)
positive_int = int_at_least(1)
nonnegative_int = int_at_least(0)
positive_float = _typed("expected a number > 0", float, lambda v: v > 0)
nonnegative_float = float_at_least(0.0)
boolean = _typed("expected true or false", _bool)
text = _typed("expected text", str, lambda v: bool(v))
device = _typed("expected cpu, cuda, cuda:N, mps or auto", str, _is_device)


def takes_options(**option_types: Callable[[str], Any]) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Declare the spec options a factory takes, e.g. ``@takes_options(device=device)``."""

    def mark(factory: Callable[..., T]) -> Callable[..., T]:
        factory.spec_options = dict(option_types)  # type: ignore[attr-defined]
        return factory

    return mark


def split_spec(spec: str) -> tuple[str, str]:
    """``"hf:openai/clip"`` -> ``("hf", "openai/clip")``; ``"local"`` -> ``("local", "")``;
    options stay on the name: ``"local?n_ctx=8"`` -> ``("local", "?n_ctx=8")``."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"empty backend spec {spec!r}")
    head, q, query = spec.strip().partition("?")
    scheme, sep, name = head.partition(":")
    return scheme.strip().lower(), (name.strip() if sep else "") + q + query


@dataclass
class Registry(Generic[T]):
    """Scheme -> factory. A factory takes the name part of the spec plus keyword options.

    Factories may be given as ``"module:attr"`` strings so that registering a backend does not
    import its heavy dependencies."""

    kind: str
    #: how error lines name a backend of this kind after its scheme ("VLM", "captioner")
    noun: str = ""
    #: entries are backends ("unknown vlm backend 'x'"); False for "unknown method 'x'"
    backends: bool = True
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
            what = f"{self.kind} backend" if self.backends else self.kind
            raise ConfigError(f"unknown {what} {scheme!r}; known: {known}")
        factory = self._factories[scheme]
        if isinstance(factory, str):
            module, _, attr = factory.partition(":")
            factory = getattr(import_module(module), attr)
            self._factories[scheme] = factory
        return factory

    def create(self, spec: str, **options: Any) -> T:
        """The backend for ``spec``; keyword options win over the spec's own. Declared options
        given as strings (flags such as ``--device``) are validated like the spec's."""
        scheme, name = split_spec(spec)
        factory = self._factory(scheme)
        option_types = getattr(factory, "spec_options", None)
        if option_types is not None:
            what = f"{scheme} {self.noun}".strip()
            name, parsed = spec_options(name, option_types, what)
            given = {k: convert_option(k, v, option_types, what) if k in option_types else v for k, v in options.items()}
            options = {**parsed, **given}
        return factory(name, **options)
