"""README, --help and the presets name the same default backends."""

from __future__ import annotations

from pathlib import Path

from ipo_vlm.cli.main import build_parser
from ipo_vlm.config import PRESETS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _help(command: str) -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return " ".join(sub.choices[command].format_help().split())


def test_optimize_help_names_each_presets_backends() -> None:
    text = _help("optimize")
    for name, config in PRESETS.items():
        assert f"{config.llm.spec} ({name})" in text
        assert f"{config.captioner.spec} ({name})" in text


def test_readme_describes_the_presets_as_they_are() -> None:
    paper, demo = PRESETS["paper"], PRESETS["demo"]
    assert f"`{paper.llm.spec}`, captioner `{paper.captioner.spec}`" in README
    assert f"`{demo.llm.spec}` (offline; the demo preset's LLM)" in README
    assert f"`{demo.captioner.spec}` (offline; the demo preset's captioner)" in README
    assert "offline default" not in README and "(default, offline)" not in README
