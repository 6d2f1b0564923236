"""The captioner protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ipo_vlm.registry import takes_options

if TYPE_CHECKING:
    from PIL import Image


@runtime_checkable
class Captioner(Protocol):
    #: identifies the captioner for cache keys; ``"none"`` disables the stage
    model_id: str

    def describe(self, images: Sequence["Image.Image"], instruction: str) -> list[str]: ...


class NoCaptioner:
    model_id = "none"

    def describe(self, images: Sequence["Image.Image"], instruction: str) -> list[str]:
        return []


@takes_options()
def load_none(name: str = "", **_: Any) -> NoCaptioner:
    return NoCaptioner()
