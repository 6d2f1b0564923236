"""Entry point of the ``ipo`` console script."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib import import_module

from ipo_vlm import __version__
from ipo_vlm.errors import IpoError

# Each module defines ``register(subparsers)`` and sets ``func`` on its parser.
SUBCOMMANDS = ("optimize", "evaluate", "demo", "data", "features", "backends", "benchmark")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ipo",
        description="Find human-readable prompt templates for CLIP-style models with an LLM as the optimizer.",
    )
    parser.add_argument("--version", action="version", version=f"ipo-vlm {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        import_module(f"ipo_vlm.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.verbose == 0:
        # Model loading draws its own progress bars on stderr; ours are enough.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        return int(args.func(args) or 0)
    except IpoError as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"ipo: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ipo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
