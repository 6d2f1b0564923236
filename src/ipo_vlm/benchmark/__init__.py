"""``ipo benchmark``: a grid of datasets x shots x seeds x methods, run resumably (in this
process, in local processes or on Ray) into one directory with tables beside published rows.

>>> grid = load_grid("grid.yaml")
>>> summary = run_benchmark(grid, "bench", make_executor("local"))
"""

from ipo_vlm.benchmark.executors import make_executor
from ipo_vlm.benchmark.grid import Cell, Grid, load_grid, parse_grid
from ipo_vlm.benchmark.runner import Summary, dry_run, run_benchmark

__all__ = ["Cell", "Grid", "Summary", "dry_run", "load_grid", "make_executor", "parse_grid", "run_benchmark"]
