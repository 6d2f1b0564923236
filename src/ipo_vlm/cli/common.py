"""Flags shared by several subcommands."""

from __future__ import annotations

import argparse
from typing import Any

from ipo_vlm.errors import ConfigError


def add_data_args(p: argparse.ArgumentParser, dataset_default: str | None = None) -> None:
    p.add_argument("--dataset", default=dataset_default, help="dataset name (demo, oxford_pets, eurosat, ..., or folder)")
    p.add_argument("--data-root", default=None, help="directory holding the dataset (CoOp layout or class folders)")


def add_class_split_arg(p: argparse.ArgumentParser, default: str | None = "ordered") -> None:
    """``--class-split``: which classes of a split are base (the same choice as ``data.class_split``);
    ``default=None`` lets a command tell an explicit choice from none."""
    from ipo_vlm.config import CLASS_SPLITS

    p.add_argument("--class-split", choices=CLASS_SPLITS, default=default,
                   help="base = the first half of the labels (ordered, the protocol's; default) or a half drawn from the seed (random)")


def add_vlm_arg(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--vlm", default=default, help="VLM spec, e.g. hf:openai/clip-vit-base-patch16, hf:/path/to/clip, demo:fashion")
    add_vlm_options(p)


def add_vlm_options(p: argparse.ArgumentParser) -> None:
    """``--device`` and ``--batch-size``: where and in what batches the VLM runs."""
    p.add_argument("--device", default=None, help="where the VLM runs (cpu, cuda, cuda:1, mps); default: the backend's choice")
    p.add_argument("--batch-size", type=int, default=None, help="images per VLM forward pass")


def vlm_options(args: argparse.Namespace) -> dict[str, Any]:
    """The VLM options given as flags (``--device``, ``--batch-size``)."""
    options: dict[str, Any] = {}
    if getattr(args, "device", None):
        options["device"] = args.device
    if getattr(args, "batch_size", None) is not None:
        if args.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
        options["batch_size"] = args.batch_size
    return options
