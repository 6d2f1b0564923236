"""The docs' library example (docs/guides/python.md) runs as written (it is the notebook path users copy)."""

from __future__ import annotations

import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "guides" / "python.md"


def test_the_library_example_in_the_docs_runs(tmp_path, monkeypatch, capsys):
    text = PAGE.read_text(encoding="utf-8")
    block = re.search(r"<!-- library-example -->\s*```python\n(.*?)```", text, flags=re.S)
    assert block, "docs/guides/python.md lost its library example"
    monkeypatch.chdir(tmp_path)
    exec(compile(block.group(1), "docs/guides/python.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert (tmp_path / "runs" / "notebook-random" / "result.json").is_file()
    assert "H " in printed[0] and printed[1].startswith("a blurry photo of a {}.") and printed[2].startswith("a photo of a {}.")
