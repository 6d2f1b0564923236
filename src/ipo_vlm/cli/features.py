"""`ipo features`: encode a dataset's images once so that later runs only read the cache.

By default the images of one seeded few-shot task (train, val and both test halves) are
encoded; ``--all`` encodes every image of the train, val and test splits. Features are kept
under the cache dir by (model, preprocessing, image content), so any later run, seed or shot
count that needs the same images reuses them.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ipo_vlm.cli.common import add_class_split_arg, add_data_args, add_vlm_arg, vlm_options
from ipo_vlm.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "features", help="precompute and cache the image features of a dataset", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_args(p, dataset_default=None)
    add_vlm_arg(p)
    p.add_argument("--shots", type=int, nargs="+", default=[16], metavar="K", help="training images per base class (several allowed; default 16)")
    p.add_argument("--seed", type=int, nargs="+", default=[1], metavar="S", help="few-shot seed(s) (default 1)")
    add_class_split_arg(p)
    p.add_argument("--all", action="store_true", help="every image of the train, val and test splits instead of few-shot tasks")
    p.add_argument("--cache-dir", default=None, help="feature cache root (default: $IPO_CACHE_DIR/features)")
    p.set_defaults(func=run)


def _samples_to_encode(args: argparse.Namespace, dataset: Any) -> list[Any]:
    """The samples of the requested tasks, each image once (refs repeat across seeds/parts)."""
    from ipo_vlm.data import make_split
    from ipo_vlm.data.fewshot import PARTS

    if args.all:
        groups = [dataset.split(name) for name in ("train", "val", "test")]
    else:
        groups = []
        for shots in args.shots:
            for seed in args.seed:
                split = make_split(dataset, shots=shots, seed=seed, class_split=args.class_split)
                groups.extend(split.part(name) for name in PARTS)
    unique: dict[str, Any] = {}
    for group in groups:
        for sample in group:
            unique.setdefault(sample.ref, sample)
    return list(unique.values())


def run(args: argparse.Namespace) -> int:
    from ipo_vlm.config import DEFAULT_VLM
    from ipo_vlm.data import load_dataset
    from ipo_vlm.engine.features import FeatureStore
    from ipo_vlm.vlm import create_vlm

    if not args.dataset:
        raise ConfigError("--dataset is required (e.g. --dataset oxford_pets --data-root DATA)")
    if any(k < 1 for k in args.shots):
        raise ConfigError("--shots must be >= 1")
    if args.cache_dir:
        from ipo_vlm.io.paths import ensure_writable_dir

        ensure_writable_dir(args.cache_dir, "--cache-dir")
    dataset = load_dataset(args.dataset, args.data_root)
    samples = _samples_to_encode(args, dataset)
    spec = args.vlm or DEFAULT_VLM
    options = vlm_options(args)  # only the options the user gave
    vlm = create_vlm(spec, **options)
    store = FeatureStore(vlm, cache_root=args.cache_dir)
    start = time.perf_counter()
    with _Bar() as bar:
        store.features(dataset, samples, batch_size=options.get("batch_size", 32), progress=bar.update)
    seconds = time.perf_counter() - start
    stats = store.stats
    print(
        f"{dataset.info.name}: {len(samples)} images with {vlm.model_id}: "
        f"{stats['computed']} encoded, {stats['hits']} already cached ({seconds:.1f} s)"
    )
    print(f"cache: {store.shard_dir}")
    return 0


class _Bar:
    """A tqdm bar on stderr that appears only once images are actually being encoded."""

    def __init__(self) -> None:
        self._bar: Any = None

    def update(self, done: int, total: int) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="img", desc="encoding", file=sys.stderr, disable=None)
        self._bar.update(done - self._bar.n)

    def __enter__(self) -> "_Bar":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
