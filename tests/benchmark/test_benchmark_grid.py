"""The grid file: resolution order, cell identity and names, and the errors a user can make."""

from __future__ import annotations

import pytest

from ipo_vlm.benchmark.grid import load_grid, parse_grid
from ipo_vlm.config import preset
from ipo_vlm.errors import ConfigError


def base(**over):
    grid = {"datasets": ["demo"], "shots": [1, 16], "seeds": [1, 2, 3], "methods": ["handcrafted", "random", "ipo"], "preset": "demo"}
    grid.update(over)
    return grid


def test_cells_are_the_product_with_readable_names_and_resolved_settings():
    grid = parse_grid(base(llm="openai:gpt-4o-mini", steps=7, ipo={"steps": 50, "captioner": "none"}))
    cells = grid.cells()
    assert len(cells) == 2 * 3 * 3
    names = [c.name for c in cells]
    assert names[0] == "demo-1shot-s1-handcrafted" and "demo-16shot-s3-ipo" in names
    ipo = next(c for c in cells if c.name == "demo-16shot-s2-ipo")
    hand = next(c for c in cells if c.name == "demo-16shot-s2-handcrafted")
    # preset -> grid -> method -> cell
    assert ipo.config["optimize"]["steps"] == 50 and hand.config["optimize"]["steps"] == 7
    assert ipo.config["captioner"]["spec"] == "none"
    assert hand.config["captioner"]["spec"] == preset("demo").captioner.spec
    assert ipo.config["llm"]["spec"] == "openai:gpt-4o-mini"
    assert ipo.config["llm"]["temperature"] == preset("demo").llm.temperature
    assert (ipo.config["data"]["shots"], ipo.config["data"]["seed"], ipo.config["method"]) == (16, 2, "ipo")
    assert len({c.cell_id for c in cells}) == len(cells)


def test_sections_and_shorthands_resolve_alike():
    a = parse_grid(base(optimize={"steps": 3, "candidates": 2}, llm={"spec": "local", "temperature": 0.7}))
    b = parse_grid(base(steps=3, candidates=2, llm="local", temperature=0.7))
    assert [c.cell_id for c in a.cells()] == [c.cell_id for c in b.cells()]


def test_cell_id_changes_with_any_setting_and_not_with_spelling():
    a = parse_grid(base(datasets=["oxford_pets"], data_root="/data")).cells()[0]
    b = parse_grid(base(datasets=["OxfordPets"], data_root="/data")).cells()[0]
    c = parse_grid(base(datasets=["oxford_pets"], data_root="/data", steps=9)).cells()[0]
    assert a.cell_id == b.cell_id and a.name == b.name == "oxford_pets-1shot-s1-handcrafted"
    assert c.cell_id != a.cell_id


def test_dataset_entries_labels_and_roots(tmp_path):
    grid = parse_grid(base(datasets=["eurosat", {"name": "folder", "data_root": str(tmp_path / "photos")},
                                     {"name": "folder", "data_root": "/x/y", "label": "mine"}, "demo"],
                           data_root="~/DATA"))
    e, photos, mine, demo = grid.datasets
    assert e.data_root.endswith("DATA") and not e.data_root.startswith("~")
    assert photos.label == "photos" and mine.label == "mine" and demo.data_root is None


@pytest.mark.parametrize("raw,match", [
    (base(datasets=[]), "datasets must be a non-empty list"),
    (base(methods=["ipo", "magic"]), "unknown method 'magic'"),
    (base(bogus=1), "unknown key 'bogus'"),
    (base(ipo={"steps": 3}, methods=["random"]), "not in methods"),
    (base(ipo={"shots": 3}), "'shots' is set by the grid"),
    (base(ipo={"colour": "red"}), "unknown key 'colour'"),
    (base(steps=-1), "steps must be >= 0"),
    (base(preset="fast"), "unknown preset 'fast'"),
    (base(shots="many"), "shots must be an integer"),
    (base(datasets=[{"name": "folder", "data_root": "/a"}, {"name": "folder", "data_root": "/b/a"}]), "two datasets are labelled 'a'"),
    (base(datasets=[{"name": "folder"}]), "needs its own data_root"),
    (base(transfer={"source": "eurosat", "targets": ["dtd"]}), "transfer source 'eurosat' is not one of"),
    (base(prices={"gpt-x": {"input": 1}}), "price of 'gpt-x'"),
])
def test_user_errors_are_one_clear_line(raw, match):
    with pytest.raises(ConfigError, match=match):
        parse_grid(raw)


def test_transfer_targets_and_yaml_file(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("datasets: [imagenet]\ndata_root: /data\nshots: 16\nseeds: [1]\nmethods: [ipo]\n"
                    "transfer: {source: ImageNet, targets: [caltech101, imagenet-sketch, {name: folder, data_root: /p, label: mine}]}\n")
    grid = load_grid(path)
    assert grid.transfer.source == "imagenet"
    assert [t.name for t in grid.transfer.targets] == ["caltech101", "imagenet_sketch", "folder"]
    assert grid.transfer.targets[0].data_root == "/data"
    assert grid.to_dict()["cells"][0]["name"] == "imagenet-16shot-s1-ipo"


def test_unreadable_grid_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read grid file"):
        load_grid(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("datasets: [a\n")
    with pytest.raises(ConfigError, match="cannot parse grid file"):
        load_grid(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- imagenet\n")
    with pytest.raises(ConfigError, match="list.yaml must hold a mapping"):
        load_grid(tmp_path / "list.yaml")
