"""errors.squeeze and errors.one_line: the one way an error or a message becomes one line."""

from __future__ import annotations

from ipo_vlm.errors import ConfigError, one_line, squeeze


def test_squeeze_joins_lines_and_cuts_with_an_ellipsis():
    assert squeeze("a\n  b\tc ") == "a b c"
    assert squeeze("x" * 10, 5) == "xxxx…" and len(squeeze("x" * 10, 5)) == 5
    assert squeeze("short", 5) == "short"


def test_our_errors_read_as_written_others_carry_their_class():
    assert one_line(ConfigError("bad setting\nmore detail")) == "bad setting"
    assert one_line(ValueError("boom\ntrace")) == "ValueError: boom"
    assert one_line(ValueError()) == "ValueError"
    assert one_line(ConfigError("  ")) == "ConfigError"
    assert one_line(OSError("x" * 300), 200) == "OSError: " + "x" * 199 + "…"
