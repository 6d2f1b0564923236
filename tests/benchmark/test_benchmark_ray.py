"""`--executor ray` on a real local Ray instance gives the cells, numbers and templates of the
in-process run of the same grid; the workers build their own backends from the cell."""

from __future__ import annotations

import json

import pytest
from helpers.bench import grid_dict, make_world, outcomes

from ipo_vlm.benchmark import make_executor, parse_grid, run_benchmark


@pytest.mark.slow
def test_ray_equals_local(tmp_path):
    world = make_world(tmp_path / "world")
    grid = parse_grid(grid_dict(world, seeds=[1], transfer={
        "source": "shapes", "targets": [{"name": "folder", "data_root": world["tools"], "label": "tools-target"}]}))
    local = run_benchmark(grid, tmp_path / "local", make_executor("local"))
    executor = make_executor("ray", jobs=2)  # a local instance with 2 CPUs, no dashboard
    ray = run_benchmark(grid, tmp_path / "ray", executor)
    assert (local.done, ray.done, ray.failed) == (4, 4, 0)
    assert outcomes(tmp_path / "ray") == outcomes(tmp_path / "local")
    # features went first, per dataset, as Ray tasks; the cells then found them in the shared store
    prefetch = [json.loads(l) for l in (tmp_path / "ray" / "features.jsonl").read_text().splitlines()]
    assert {p["dataset"] for p in prefetch} == {"shapes", "tools"} and not any(p["error"] for p in prefetch)
    transfer = {r["name"]: r["acc"] for r in map(json.loads, (tmp_path / "ray" / "transfer.jsonl").read_text().splitlines())}
    assert transfer == {r["name"]: r["acc"] for r in map(json.loads, (tmp_path / "local" / "transfer.jsonl").read_text().splitlines())}
    assert (tmp_path / "ray" / "table.md").read_text().split("## Cost")[0] == (tmp_path / "local" / "table.md").read_text().split("## Cost")[0]
    import ray as ray_module

    assert not ray_module.is_initialized()  # the executor shut down the instance it started
