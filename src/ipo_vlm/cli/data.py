"""`ipo data`."""

from __future__ import annotations

import argparse

from ipo_vlm.errors import IpoError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="(not built yet)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise IpoError("'ipo data' is not built yet")
