"""Every setting as nested frozen dataclasses, validated on construction.

``RunConfig.from_dict`` loads JSON/YAML-shaped dicts; ``PRESETS`` holds named starting points
(``paper``: the paper's settings; ``demo``: small enough for 2 CPU cores). Secrets never live
here: API keys come from the environment only."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ipo_vlm.errors import ConfigError

DEFAULT_VLM = "hf:openai/clip-vit-base-patch16"
#: how a run finds its template; every method writes the same run files
METHODS = ("ipo", "random", "handcrafted", "ensemble80")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "demo"
    data_root: str | None = None
    shots: int = 16
    seed: int = 1

    def __post_init__(self) -> None:
        if self.shots < 1:
            raise ConfigError(f"shots must be >= 1, got {self.shots}")


@dataclass(frozen=True)
class LLMConfig:
    spec: str = "local"
    temperature: float = 1.1
    top_p: float = 0.95
    repeat_penalty: float | None = 1.2
    max_tokens: int = 400
    use_cache: bool = True
    #: ask the backend to constrain output to templates (grammar / JSON schema)
    constrained: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.temperature <= 2.5:
            raise ConfigError(f"temperature must be in [0, 2.5], got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 16:
            raise ConfigError(f"max_tokens must be >= 16, got {self.max_tokens}")


@dataclass(frozen=True)
class CaptionerConfig:
    spec: str = "interrogate"
    #: budget for descriptions inside one meta-prompt, in (approximate) tokens
    budget_tokens: int = 600
    #: how descriptions are chosen within the budget
    selection: str = "round_robin"

    def __post_init__(self) -> None:
        if self.budget_tokens < 0:
            raise ConfigError("captioner budget_tokens must be >= 0")
        if self.selection not in ("round_robin", "first"):
            raise ConfigError(f"unknown description selection {self.selection!r}; known: round_robin, first")


@dataclass(frozen=True)
class OptimizeConfig:
    steps: int = 100
    candidates: int = 5
    memory_size: int = 20
    select_on: str = "train"
    max_llm_tokens: int | None = None
    #: extra LLM calls allowed per step when too few valid candidates came back
    max_retries_per_step: int = 2

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ConfigError(f"steps must be >= 0, got {self.steps}")
        if self.candidates < 1:
            raise ConfigError(f"candidates must be >= 1, got {self.candidates}")
        if self.memory_size < 1:
            raise ConfigError(f"memory size must be >= 1, got {self.memory_size}")
        if self.select_on not in ("train", "val"):
            raise ConfigError(f"select_on must be 'train' or 'val', got {self.select_on!r}")
        if self.max_llm_tokens is not None and self.max_llm_tokens < 1:
            raise ConfigError("max_llm_tokens must be a positive integer")


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    vlm: str = DEFAULT_VLM
    llm: LLMConfig = field(default_factory=LLMConfig)
    captioner: CaptionerConfig = field(default_factory=CaptionerConfig)
    optimize: OptimizeConfig = field(default_factory=OptimizeConfig)
    method: str = "ipo"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown method {self.method!r}; known: {', '.join(METHODS)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "RunConfig":
        return _build(cls, raw, "config")

    @classmethod
    def from_file(cls, path: str | Path) -> "RunConfig":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
        if path.suffix in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(text) or {}
        else:
            import json

            raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {path} must hold a mapping")
        return cls.from_dict(raw)

    def updated(self, **sections: dict[str, Any]) -> "RunConfig":
        """Override fields section by section, e.g. ``updated(optimize={"steps": 3})``;
        ``vlm`` takes a string."""
        new = self
        for name, value in sections.items():
            if name in ("vlm", "method"):
                new = replace(new, **{name: value})
                continue
            current = getattr(new, name)
            try:
                new = replace(new, **{name: replace(current, **value)})
            except TypeError as e:
                raise ConfigError(f"bad setting in section {name!r}: {e}") from None
        return new


def _build(cls: type, raw: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"unknown setting(s) in {where}: {', '.join(sorted(unknown))}")
    kwargs: dict[str, Any] = {}
    for name, value in raw.items():
        default = getattr(cls(), name) if name in known else None
        if hasattr(default, "__dataclass_fields__") and isinstance(value, dict):
            kwargs[name] = _build(type(default), value, f"{where}.{name}")
        else:
            kwargs[name] = value
    return cls(**kwargs)


PRESETS: dict[str, RunConfig] = {
    # The paper: CLIP ViT-B/16, 100 steps x 5 candidates, top-20 memory.
    "paper": RunConfig(
        data=DataConfig(shots=16, seed=1),
        vlm=DEFAULT_VLM,
        llm=LLMConfig(spec="openai:gpt-3.5-turbo", temperature=1.0, top_p=1.0, repeat_penalty=None),
        captioner=CaptionerConfig(spec="none"),
        optimize=OptimizeConfig(steps=100, candidates=5, memory_size=20),
    ),
    # Everything offline and small enough for a few minutes on 2 CPU cores.
    "demo": RunConfig(
        data=DataConfig(dataset="demo", shots=16, seed=1),
        vlm="demo:fashion",
        llm=LLMConfig(spec="local"),
        captioner=CaptionerConfig(spec="interrogate"),
        # select on the few-shot val images: on the demo, training accuracy moved by 1-2 of 80
        # images and the train-selected template lost a little H on test (seeds 1 and 2)
        optimize=OptimizeConfig(steps=8, candidates=5, memory_size=10, select_on="val"),
    ),
}


def preset(name: str) -> RunConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}") from None
