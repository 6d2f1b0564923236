"""The skeleton every part builds on: spec registry, crash-safe files, config, CLI errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ipo_vlm.config import PRESETS, RunConfig, preset
from ipo_vlm.errors import ConfigError, IpoError
from ipo_vlm.io.jsonio import append_jsonl, atomic_write_json, read_jsonl, repair_jsonl
from ipo_vlm.io.hashing import sha256_json
from ipo_vlm.registry import Registry, split_spec


def test_split_spec_forms():
    assert split_spec("hf:openai/clip-vit-base-patch16") == ("hf", "openai/clip-vit-base-patch16")
    assert split_spec("llamacpp:/m/a:b.gguf") == ("llamacpp", "/m/a:b.gguf")
    assert split_spec(" LOCAL ") == ("local", "")
    with pytest.raises(ConfigError):
        split_spec("")


def test_registry_resolves_lazily_and_lists_known_on_error():
    reg: Registry[object] = Registry("widget")
    reg.register("json", "json:loads", "lazy factory by module path")
    reg.register("echo", lambda name, **kw: (name, kw))
    assert reg.create("echo:abc", x=1) == ("abc", {"x": 1})
    assert reg.create('json:{"a": 2}') == {"a": 2}
    with pytest.raises(ConfigError, match=r"unknown widget backend 'nope'; known: echo, json"):
        reg.create("nope:x")


def test_builtin_registries_know_their_schemes():
    from ipo_vlm.captioner import CAPTIONERS
    from ipo_vlm.llm import LLMS
    from ipo_vlm.vlm import VLMS

    assert {"hf", "open_clip", "demo"} <= set(VLMS.schemes())
    assert {"openai", "llamacpp", "local", "scripted"} <= set(LLMS.schemes())
    assert {"openai", "hf", "interrogate", "none"} <= set(CAPTIONERS.schemes())


def test_jsonl_survives_a_torn_tail(tmp_path):
    path = tmp_path / "h.jsonl"
    append_jsonl(path, {"a": 1})
    append_jsonl(path, {"a": 2})
    with open(path, "a") as f:
        f.write('{"a": 3, "tem')  # a crash in the middle of a write
    assert [r["a"] for r in read_jsonl(path)] == [1, 2]
    assert repair_jsonl(path) == 2
    append_jsonl(path, {"a": 4})
    assert [r["a"] for r in read_jsonl(path)] == [1, 2, 4]


def test_jsonl_lines_damaged_by_hand_are_skipped_with_a_warning_naming_file_and_line(tmp_path, caplog):
    path = tmp_path / "h.jsonl"
    path.write_text('{"a": 1}\nnot json\n[1, 2]\n{"a": 2}\n')
    with caplog.at_level("WARNING"):
        assert [r["a"] for r in read_jsonl(path)] == [1, 2]
        list(read_jsonl(path))  # read again: warned once per line, not per read
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert f"line 2 of {path}" in warnings[0] and f"line 3 of {path}" in warnings[1]


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "sub" / "r.json"
    atomic_write_json(path, {"x": [1, 2]})
    atomic_write_json(path, {"x": 3})
    assert json.loads(path.read_text()) == {"x": 3}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def test_cache_key_is_order_independent():
    assert sha256_json({"a": 1, "b": [1, 2]}) == sha256_json({"b": [1, 2], "a": 1})
    assert sha256_json({"a": 1}) != sha256_json({"a": 1.5})


def test_config_round_trip_and_validation(tmp_path):
    cfg = preset("demo").updated(optimize={"steps": 3}, vlm="hf:/x")
    assert cfg.optimize.steps == 3 and cfg.vlm == "hf:/x"
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    path = tmp_path / "c.yaml"
    path.write_text("optimize:\n  steps: 7\nllm:\n  spec: openai:gpt-4o-mini\n")
    loaded = RunConfig.from_file(path)
    assert loaded.optimize.steps == 7 and loaded.llm.spec == "openai:gpt-4o-mini"
    with pytest.raises(ConfigError, match="unknown setting"):
        RunConfig.from_dict({"optimize": {"stepz": 1}})
    with pytest.raises(ConfigError, match="candidates"):
        RunConfig.from_dict({"optimize": {"candidates": 0}})
    with pytest.raises(ConfigError, match="known: demo, demo-shifted, ipo-plus, paper"):
        preset("fast")
    assert PRESETS["paper"].optimize.steps == 100 and PRESETS["paper"].optimize.memory_size == 20


def test_ipo_plus_is_the_paper_with_the_two_levers_and_nothing_else():
    paper, plus = PRESETS["paper"].to_dict(), PRESETS["ipo-plus"].to_dict()
    changed = {(section, key) for section, values in plus.items() if isinstance(values, dict)
               for key, value in values.items() if paper[section][key] != value}
    changed |= {(key, None) for key, value in plus.items() if not isinstance(value, dict) and paper[key] != value}
    assert changed == {("optimize", "guidance"), ("optimize", "reflect")}
    assert plus["optimize"]["guidance"] == "both" and plus["optimize"]["reflect"] == 4


def test_import_is_light():
    code = (
        "import sys, ipo_vlm, ipo_vlm.cli.main as m; m.build_parser();"
        "print(sorted(x for x in ('torch','transformers','openai','llama_cpp') if x in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_help_lists_subcommands(capsys):
    from ipo_vlm.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in ("optimize", "evaluate", "demo", "history", "export", "classify", "data", "features", "backends"):
        assert name in out


def test_cli_turns_ipo_errors_into_one_line_and_exit_2(capsys, monkeypatch):
    from ipo_vlm.cli import main as cli_main

    def boom(args):
        raise IpoError("something the user can fix\nsecond line is dropped")

    parser = cli_main.build_parser()
    monkeypatch.setattr(cli_main, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["backends"].set_defaults(func=boom)
    assert cli_main.main(["backends"]) == 2
    err = capsys.readouterr().err
    assert err == "ipo: error: something the user can fix\n"
