"""One override vocabulary: ``section.key=value`` means the same on the command line
(``--set``), in a grid file (dotted keys) and in ``bench/``; flags are shorthands that win."""

from __future__ import annotations

import argparse

import pytest

from ipo_vlm.benchmark.grid import load_grid, parse_grid
from ipo_vlm.cli.optimize import add_run_args, resolve_config
from ipo_vlm.overrides import parse_setting, settings_from
from ipo_vlm.errors import ConfigError


def test_a_setting_is_read_as_yaml_and_nested_like_the_config():
    assert parse_setting("optimize.steps=3") == {"optimize": {"steps": 3}}
    assert parse_setting("optimize.max_words=null") == {"optimize": {"max_words": None}}
    assert parse_setting("vlm=hf:openai/clip-vit-base-patch16") == {"vlm": "hf:openai/clip-vit-base-patch16"}
    assert parse_setting("vlm_options.device=cpu") == {"vlm_options": {"device": "cpu"}}
    assert settings_from(["optimize.steps=3", "llm.temperature=0.5", "optimize.steps=4"]) == {
        "optimize": {"steps": 4}, "llm": {"temperature": 0.5}}
    for bad, says in (("optimize.stepz=3", "optimize has: steps"), ("nope.x=1", "sections:"), ("steps", "SECTION.KEY=VALUE"),
                      ("optimize=3", "is a section")):
        with pytest.raises(ConfigError, match=says):
            parse_setting(bad)


def _args(*argv):
    p = argparse.ArgumentParser()
    add_run_args(p)
    p.add_argument("--out", default=None)
    for name in ("dataset", "data_root", "llm", "captioner", "candidates", "memory_size", "vlm", "method", "preset", "config"):
        p.add_argument(f"--{name.replace('_', '-')}", default=None)
    return p.parse_args(list(argv))


def test_cli_set_reaches_the_config_and_a_flag_wins_over_it():
    config = resolve_config(_args("--set", "optimize.meta_prompt=edit", "--set", "optimize.steps=7", "--steps", "9"), "demo")
    assert config.optimize.meta_prompt == "edit" and config.optimize.steps == 9
    with pytest.raises(ConfigError, match="unknown setting"):
        resolve_config(_args("--set", "optimize.metaprompt=edit"), "demo")


def test_a_grid_takes_the_same_dotted_settings_in_the_file_and_from_set(tmp_path):
    raw = {"datasets": ["demo"], "shots": [1], "seeds": [1], "methods": ["ipo"], "vlm": "demo:fashion", "llm": "scripted:x.json",
           "optimize.meta_prompt": "edit", "ipo": {"optimize.steps": 2}}
    (cell,) = parse_grid(raw).cells()
    assert cell.config["optimize"]["meta_prompt"] == "edit" and cell.config["optimize"]["steps"] == 2
    path = tmp_path / "grid.yaml"
    path.write_text("datasets: [demo]\nshots: [1]\nseeds: [1]\nmethods: [ipo]\nvlm: demo:fashion\nllm: scripted:x.json\n")
    (cell,) = load_grid(path, ["optimize.steps=3", "optimize.max_words=12"]).cells()
    assert cell.config["optimize"]["steps"] == 3 and cell.config["optimize"]["max_words"] == 12
    ordered = cell
    (cell,) = load_grid(path, ["data.class_split=random"]).cells()
    assert cell.config["data"]["class_split"] == "random" and cell.config["data"]["seed"] == 1
    assert cell.cell_id != ordered.cell_id  # other halves: another cell, never a resumed one
    with pytest.raises(ConfigError, match="unknown key 'data.shots'"):  # the grid's axes stay the grid's
        parse_grid({**raw, "data.shots": 4})
