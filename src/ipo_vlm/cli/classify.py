"""`ipo classify`: label new images with a run's VLM and best template (or top-K ensemble)."""

from __future__ import annotations

import argparse
import csv
import sys

from ipo_vlm.cli.common import add_vlm_options, vlm_options
from ipo_vlm.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "classify",
        help="label images with a finished run's VLM and best template (or ensemble), with probabilities",
        description="Probabilities are the softmax over all of the run's classes (base and novel). Directories "
        "are searched for image files. Unreadable files are reported and skipped; the exit status is 2 if any were.",
    )
    p.add_argument("--run", required=True, help="a finished run directory (with result.json)")
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR", help="image files or directories")
    p.add_argument("--ensemble", type=int, default=None, metavar="K", help="use the top-K templates by the run's selection key")
    p.add_argument("--top", type=int, default=3, help="classes shown per image (default 3)")
    p.add_argument("--csv", default=None, help="also write image,rank,class,probability rows to this CSV file")
    add_vlm_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ipo_vlm.runs.classify import Failure, classify_images

    def report(item) -> None:
        if isinstance(item, Failure):
            print(f"ipo: cannot classify {item.path}: {item.reason}", file=sys.stderr)
        else:
            labels = ", ".join(f"{name} {100 * p:.1f}%" for name, p in item.top)
            print(f"{item.path}: {labels}", flush=True)

    if args.csv is not None:
        from ipo_vlm.io.paths import check_output_path

        check_output_path(args.csv, "--csv", inputs=tuple(args.images))
        _check_writable(args.csv)
    result = classify_images(args.run, args.images, ensemble=args.ensemble, top=args.top, report=report,
                             vlm_options=vlm_options(args))
    if len(result.templates) > 1:
        print(f"ensemble of {len(result.templates)} templates over {len(result.classnames)} classes", file=sys.stderr)
    if args.csv is not None:
        try:
            with open(args.csv, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["image", "rank", "class", "probability"])
                for pred in result.predictions:
                    for rank, (name, p) in enumerate(pred.top, start=1):
                        w.writerow([pred.path, rank, name, f"{p:.6f}"])
        except OSError as e:
            raise ConfigError(f"cannot write {args.csv}: {e.strerror or e}") from None
    if result.failures:
        print(f"ipo: {len(result.failures)} of {len(result.failures) + len(result.predictions)} files could not be classified", file=sys.stderr)
        return 2
    return 0


def _check_writable(path: str) -> None:
    """Fail before any image is encoded if the CSV cannot be written."""
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"--csv {p} is a directory; give a file name")
    if not p.parent.is_dir():
        raise ConfigError(f"--csv {p}: folder {p.parent} does not exist")
