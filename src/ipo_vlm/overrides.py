"""One override vocabulary for every entry point: ``section.key=value`` (``--set`` on the command
line, dotted keys in a grid file, ``bench/``), nested like ``RunConfig.to_dict()``."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ipo_vlm.config import RunConfig, _Settings, merge_settings
from ipo_vlm.errors import ConfigError


def parse_setting(text: str) -> dict[str, Any]:
    """One override in the vocabulary every entry point shares (``--set`` on the command line,
    dotted keys in a grid file, ``bench/``): ``"section.key=value"`` (or ``vlm=...``,
    ``method=...``), the value read as YAML (``3``, ``true``, ``edit``, ``null``, ``[a, b]``).
    Returns it nested like ``RunConfig.to_dict()``: ``{"optimize": {"steps": 3}}``."""
    name, sep, raw = str(text).partition("=")
    if not sep or not name.strip():
        raise ConfigError(f"expected SECTION.KEY=VALUE (e.g. optimize.steps=3), got {text!r}")
    import yaml

    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return setting(name.strip(), value)


def setting(name: str, value: Any) -> dict[str, Any]:
    """The dotted setting ``name`` (``optimize.steps``, ``vlm_options.device``, ``vlm``) set to
    ``value``, nested like ``RunConfig.to_dict()``; an unknown name lists the known ones."""
    section, _, key = name.partition(".")
    top = {f.name: f for f in fields(RunConfig)}
    if section not in top:
        raise ConfigError(f"unknown setting {name!r}; sections: {', '.join(top)}")
    default = getattr(RunConfig(), section)
    if not key:
        if isinstance(default, _Settings):
            raise ConfigError(f"{name!r} is a section; name one of its settings, e.g. {section}.{fields(default)[0].name}")
        return {section: value}
    if isinstance(default, _Settings):
        known = [f.name for f in fields(default)]
        if key not in known:
            raise ConfigError(f"unknown setting {name!r}; {section} has: {', '.join(known)}")
    elif section != "vlm_options":
        raise ConfigError(f"{section!r} is a single setting, not a section: {section}=VALUE")
    return {section: {key: value}}


def settings_from(items: Any) -> dict[str, Any]:
    """Several ``section.key=value`` overrides, later ones winning, nested and merged."""
    out: dict[str, Any] = {}
    for item in items or ():
        out = merge_settings(out, parse_setting(item))
    return out
