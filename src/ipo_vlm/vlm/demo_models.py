"""The ``demo:`` backend: the offline stand-in VLMs of the Fashion-MNIST demo, by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ipo_vlm.errors import ConfigError
from ipo_vlm.registry import positive_int, takes_options
from ipo_vlm.registry import text as text_option

#: name -> what it is, for error lines
MODELS = {"fashion": "the plain demo's model", "fashion-shifted": "the shifted condition's model"}


@takes_options(weights=text_option, device=text_option, batch_size=positive_int)
def load_demo(
    name: str = "fashion", weights: str | Path | None = None, device: str = "cpu", batch_size: int | None = None, **options: Any
) -> Any:
    """Factory behind ``demo:fashion`` and ``demo:fashion-shifted``. ``weights`` may point at
    another trained file (its checksum file beside it as ``<stem>.sha256``). The models are
    small and run on the CPU only; ``batch_size`` is accepted for uniformity."""
    name = name or "fashion"
    if name not in MODELS:
        raise ConfigError(f"unknown demo VLM {name!r}; known: {', '.join(MODELS)}")
    if options:
        raise ConfigError(f"demo VLM takes no options {sorted(options)}")
    if device != "cpu":
        raise ConfigError(f"the demo VLMs run on the CPU only, not {device!r}")
    if name == "fashion-shifted":
        from ipo_vlm.vlm.demo_shifted import load_shifted

        return load_shifted(weights)
    from ipo_vlm.vlm.demo import load_fashion

    return load_fashion(weights)
