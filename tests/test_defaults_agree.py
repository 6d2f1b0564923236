"""The README and docs, --help and the presets name the same default backends."""

from __future__ import annotations

from pathlib import Path

from ipo_vlm.cli.main import build_parser
from ipo_vlm.config import PRESETS

REPO = Path(__file__).resolve().parents[1]
DOCS = "\n".join(p.read_text(encoding="utf-8") for p in [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))])


def _help(command: str) -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return " ".join(sub.choices[command].format_help().split())


def test_optimize_help_names_each_presets_backends() -> None:
    text = _help("optimize")
    for name, config in PRESETS.items():
        assert f"{config.llm.spec} ({name})" in text
        assert f"{config.captioner.spec} ({name})" in text


def test_the_docs_describe_the_presets_as_they_are() -> None:
    paper, demo = PRESETS["paper"], PRESETS["demo"]
    assert f"`{paper.llm.spec}`, captioner `{paper.captioner.spec}`" in DOCS
    assert f"`{demo.llm.spec}` (offline; the demo preset's LLM)" in DOCS
    assert f"`{demo.captioner.spec}` (offline; the demo preset's captioner)" in DOCS
    assert "offline default" not in DOCS and "(default, offline)" not in DOCS
