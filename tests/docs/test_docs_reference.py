"""The generated reference pages (command line, settings, Python API) match the code."""

from __future__ import annotations

import difflib
from pathlib import Path

from helpers.scripts import load_script

REPO = Path(__file__).resolve().parents[2]


def _generator():
    return load_script("scripts/gen_docs_reference.py")


def test_the_reference_pages_are_current():
    gen = _generator()
    stale = []
    for path, text in gen.render_pages().items():
        page = REPO / "docs" / path
        current = page.read_text(encoding="utf-8") if page.exists() else ""
        if current != text:
            diff = difflib.unified_diff(current.splitlines(), text.splitlines(), f"docs/{path} (committed)", f"docs/{path} (from the code)", lineterm="", n=1)
            stale.append("\n".join(list(diff)[:30]))
    assert not stale, f"reference pages out of date with the code; regenerate them with: {gen.REGENERATE}\n\n" + "\n\n".join(stale)


def test_every_subcommand_and_setting_is_on_its_page():
    from dataclasses import fields, is_dataclass

    from ipo_vlm.cli.main import build_parser
    from ipo_vlm.config import PRESETS, RunConfig

    gen = _generator()
    pages = gen.render_pages()
    parser = build_parser()
    commands = [path for path, _, _ in gen._subcommands(parser)]
    assert len(commands) >= 12
    for path in commands:
        assert f"## `ipo {path}`" in pages["reference/cli.md"]
    # every flag of every subcommand, as its --help prints it
    for path, _, sub in gen._subcommands(parser):
        for action in sub._actions:
            for flag in action.option_strings:
                assert flag in pages["reference/cli.md"], (path, flag)

    def names(cls, prefix=""):
        for f in fields(cls):
            default = getattr(cls(), f.name)
            if is_dataclass(default):
                yield from names(type(default), f"{prefix}{f.name}.")
            else:
                yield f"{prefix}{f.name}"

    settings = pages["reference/settings.md"]
    for name in names(RunConfig):
        assert f"| `{name}` |" in settings, name
    undescribed = [line.split("|")[1].strip() for line in settings.splitlines() if gen.UNDESCRIBED in line]
    assert not undescribed, f"settings without a description: {undescribed}; add a `#:` comment above each in config.py"
    header = next(line for line in settings.splitlines() if line.startswith("| setting |"))
    for preset in PRESETS:
        assert f"| `{preset}` |" in header, preset


def test_a_changed_flag_makes_the_check_fail(monkeypatch):
    """The freshness check can fail: a new flag in the parser changes the generated page."""
    import ipo_vlm.cli.main as cli_main

    gen = _generator()
    before = gen.cli_page()
    original = cli_main.build_parser

    def with_extra_flag():
        parser = original()
        sub = next(a for a in parser._actions if a.dest == "command")
        sub.choices["history"].add_argument("--brand-new-flag", help="a flag the committed page does not know")
        return parser

    monkeypatch.setattr(cli_main, "build_parser", with_extra_flag)
    after = gen.cli_page()
    assert after != before and "--brand-new-flag" in after
    assert gen.main(["--check"]) == 1


def test_preset_values_are_shown_per_preset():
    from ipo_vlm.config import PRESETS

    page = _generator().settings_page()
    row = next(line for line in page.splitlines() if line.startswith("| `vlm` |"))
    for config in PRESETS.values():
        assert f"`{config.vlm}`" in row


def test_every_file_a_run_writes_is_on_the_run_directory_page(tmp_path):
    """A real run (``optimize`` on the torch-free fakes) writes only files the page describes."""
    from helpers.report import fake_run

    run = fake_run(tmp_path / "run", steps=2).path
    page = (REPO / "docs" / "reference" / "run-directory.md").read_text(encoding="utf-8")
    written = sorted({p.relative_to(run).parts[0] + ("/" if p.parent != run else "") for p in run.rglob("*") if p.is_file()})
    assert {"config.json", "split.json", "history.jsonl", "result.json"} <= set(written), written
    missing = [name for name in written if f"`{name}`" not in page]
    assert not missing, f"docs/reference/run-directory.md does not describe {missing}"
