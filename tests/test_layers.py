"""The package's structure: no import cycles (imports inside functions count), dependencies
running one way down the layers, and no module too long to read."""

from __future__ import annotations

from pathlib import Path

from helpers.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
import_cycles = load_script("scripts/import_cycles.py")

# lower layers first; a module may import its own layer and the ones before it
LAYERS = [
    {"errors", "registry", "io", "scored", "config", "overrides"},
    {"data", "vlm", "llm", "captioner", "prompting", "testing"},
    {"engine"},
    {"methods"},
    {"runs"},
    {"benchmark", "report", "explain", "tracking"},
    {"cli"},
]


def layer_of(module: str) -> int:
    top = module.split(".")[1] if module.count(".") else ""
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    return -1  # the package itself (lazy exports only)


def test_no_import_cycles():
    assert import_cycles.cycles(import_cycles.import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert import_cycles.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_dependencies_run_one_way_down_the_layers():
    upward = []
    for module, targets in import_graph_items():
        for target in targets:
            if layer_of(target) > layer_of(module) >= 0 and not allowed(module, target):
                upward.append(f"{module} -> {target}")
    assert upward == []


def import_graph_items():
    return sorted(import_cycles.import_graph().items())


def allowed(module: str, target: str) -> bool:
    # the shipped test doubles may drive the real pipeline (they are for users' tests)
    return module.startswith("ipo_vlm.testing.")


def test_no_module_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "src" / "ipo_vlm").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}
