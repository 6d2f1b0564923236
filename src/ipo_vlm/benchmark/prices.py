"""What LLM tokens cost: a dated price table shipped with the package (``assets/prices.yaml``),
USD per 1M tokens per model, overridable by a grid's ``prices:``."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class PriceTable:
    models: dict[str, dict[str, float]]
    free_schemes: tuple[str, ...] = ()
    date: str = ""
    source: str = ""
    overridden: tuple[str, ...] = field(default_factory=tuple)

    def price(self, llm_spec: str) -> dict[str, float] | None:
        """``{"input", "output"}`` USD per 1M tokens for an LLM spec; zero for backends that
        run locally; None when the model is not in the table."""
        scheme, _, name = llm_spec.partition(":")
        if scheme in self.free_schemes:
            return {"input": 0.0, "output": 0.0}
        model = name.split("?", 1)[0]
        return self.models.get(model) or self.models.get(llm_spec)

    def cost(self, llm_spec: str, tokens_in: int, tokens_out: int) -> float | None:
        p = self.price(llm_spec)
        if p is None:
            return None
        return (tokens_in * p["input"] + tokens_out * p["output"]) / 1e6

    def to_dict(self) -> dict[str, Any]:
        return {"date": self.date, "source": self.source, "models": self.models,
                "free_schemes": list(self.free_schemes), "overridden": list(self.overridden)}


def load_prices(overrides: dict[str, dict[str, float]] | None = None) -> PriceTable:
    import yaml

    raw = yaml.safe_load((resources.files("ipo_vlm") / "assets" / "prices.yaml").read_text(encoding="utf-8"))
    models = {str(k): {"input": float(v["input"]), "output": float(v["output"])} for k, v in raw["models"].items()}
    models.update(overrides or {})
    return PriceTable(models, tuple(raw.get("free_schemes", ())), str(raw.get("date", "")), str(raw.get("source", "")),
                      tuple(sorted(overrides or {})))
