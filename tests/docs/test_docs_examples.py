"""The commands and grid files shown in the README and the docs are accepted by the code as
written: every ``ipo ...`` line parses with the real argument parser, every grid file loads."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
# Flags the docs describe ahead of the branch that adds them; checked as soon as the parser has them.
PENDING_FLAGS = {"--track": "MLflow tracking"}


def _blocks(lang: str) -> list[tuple[str, str]]:
    out = []
    for page in PAGES:
        for block in re.findall(rf"```{lang}\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S):
            out.append((str(page.relative_to(REPO)), block))
    return out


def ipo_commands() -> list[tuple[str, str]]:
    commands = []
    for where, block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith("ipo "):
                commands.append((where, line))
    return commands


def test_the_pages_show_commands():
    assert len(ipo_commands()) >= 30


@pytest.mark.parametrize("where,line", ipo_commands(), ids=lambda v: v if isinstance(v, str) and v.startswith("ipo") else None)
def test_a_shown_command_parses(where, line, capsys):
    from ipo_vlm.cli.main import build_parser

    parser = build_parser()
    known = {flag for sub in next(a for a in parser._actions if a.dest == "command").choices.values() for flag in sub._option_string_actions}
    pending = [f for f in PENDING_FLAGS if f in line.split() and f not in known]
    if pending:
        pytest.skip(f"{PENDING_FLAGS[pending[0]]} ({pending[0]}) is not in the parser yet")
    try:
        parser.parse_args(shlex.split(line)[1:])
    except SystemExit as e:
        pytest.fail(f"{where}: `{line}` is refused by the parser (exit {e.code}): {capsys.readouterr().err.strip()}")


def test_the_grid_files_shown_load(tmp_path):
    from ipo_vlm.benchmark.grid import load_grid

    grids = [(where, block) for where, block in _blocks("yaml") if re.search(r"^datasets:", block, flags=re.M)]
    assert len(grids) >= 2
    for i, (where, block) in enumerate(grids):
        path = tmp_path / f"grid{i}.yaml"
        path.write_text(block, encoding="utf-8")
        assert load_grid(path).cells(), where


def test_the_readme_links_resolve_and_it_stays_short():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) <= 10_000, "README.md over 10 KB: move detail into docs/"
    headings = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}
    for target in re.findall(r"\]\(([^)]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        if path:
            assert (REPO / path).exists(), target
        else:
            assert anchor in headings, target
    # the first screen leads to the own-images recipe
    assert "your own images with your API key" in "\n".join(text.splitlines()[:12])
