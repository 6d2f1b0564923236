"""A tiny benchmark world on disk: two folder datasets of a few pixels each, a tiny random
CLIP (the real ``hf:`` loading code) and a scripted LLM, so that a grid of cells runs in
seconds in this process, in spawned processes and in Ray workers alike."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from helpers.data_fixtures import make_class_folders

ADJ = ["bright", "dark", "small", "large", "close-up", "blurry", "clean", "cropped", "studio", "folded", "worn", "grayscale"]
NOUNS = ["photo", "picture", "image", "snapshot", "render"]
POOL = [f"a {a} {n} of a <CLASS>." for a in ADJ for n in NOUNS]


def make_world(root: Path, delay_s: float = 0.0) -> dict[str, str]:
    from ipo_vlm.testing.tiny_clip import build_tiny_clip

    root.mkdir(parents=True, exist_ok=True)
    clip = root / "clip"
    if not (clip / "config.json").exists():
        build_tiny_clip(clip)
    make_class_folders(root / "shapes", {"circle": 10, "square": 10, "triangle": 10, "star": 10})
    make_class_folders(root / "tools", {"hammer": 10, "wrench": 10, "saw": 10, "drill": 10, "pliers": 10})
    answers = ["\n".join(f"{k + 1}. {POOL[(i * 7 + k * 11) % len(POOL)]}" for k in range(4)) for i in range(40)]
    script = root / f"script-{delay_s}.json"
    script.write_text(json.dumps({"responses": answers, "delay_s": delay_s}))
    return {"root": str(root), "vlm": f"hf:{clip}", "llm": f"scripted:{script}",
            "shapes": str(root / "shapes"), "tools": str(root / "tools")}


def grid_dict(world: dict[str, str], **over) -> dict:
    grid = {
        "datasets": [{"name": "folder", "data_root": world["shapes"], "label": "shapes"},
                     {"name": "folder", "data_root": world["tools"], "label": "tools"}],
        "shots": [2],
        "seeds": [1, 2],
        "methods": ["handcrafted", "ipo"],
        "preset": "demo",
        "vlm": world["vlm"],
        "llm": world["llm"],
        "captioner": "none",
        "optimize": {"steps": 1, "candidates": 3, "select_on": "train"},
    }
    grid.update(over)
    return grid


def write_grid(path: Path, grid: dict) -> Path:
    path.write_text(yaml.safe_dump(grid), encoding="utf-8")
    return path


def outcomes(benchdir: Path) -> dict[str, tuple]:
    """What must not depend on the executor: per cell name, the numbers and the template."""
    out = {}
    for line in (Path(benchdir) / "cells.jsonl").read_text().splitlines():
        r = json.loads(line)
        out[r["name"]] = (r["status"], r["base_acc"], r["novel_acc"], r["hm"], r["best_template"], r["llm_calls"])
    return out
