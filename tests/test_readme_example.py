"""The README's library example runs as written (it is the notebook path users copy)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_library_example_in_the_readme_runs(tmp_path, monkeypatch, capsys):
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- library-example -->\s*```python\n(.*?)```", text, flags=re.S)
    assert block, "the README lost its library example"
    monkeypatch.chdir(tmp_path)
    exec(compile(block.group(1), "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert (tmp_path / "runs" / "notebook-random" / "result.json").is_file()
    assert "H " in printed[0] and printed[1].startswith("a blurry photo of a {}.") and printed[2].startswith("a photo of a {}.")
