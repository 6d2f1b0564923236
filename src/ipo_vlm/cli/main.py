"""Entry point of the ``ipo`` console script."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib import import_module
from typing import NoReturn

from ipo_vlm import __version__
from ipo_vlm.errors import IpoError

# Each module defines ``register(subparsers)`` and sets ``func`` on its parser.
SUBCOMMANDS = (
    "optimize", "evaluate", "demo", "history", "export", "classify", "explain", "report", "benchmark", "data", "features", "backends",
)


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's error form: one line and exit 2, the usage left to ``--help``
    (subcommand parsers are of the same class)."""

    def error(self, message: str) -> NoReturn:
        print(f"ipo: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
