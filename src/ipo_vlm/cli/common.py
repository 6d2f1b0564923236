"""Flags shared by several subcommands."""

from __future__ import annotations

import argparse


def add_data_args(p: argparse.ArgumentParser, dataset_default: str | None = None) -> None:
    p.add_argument("--dataset", default=dataset_default, help="dataset name (demo, oxford_pets, eurosat, ..., or folder)")
    p.add_argument("--data-root", default=None, help="directory holding the dataset (CoOp layout or class folders)")


def add_vlm_arg(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--vlm", default=default, help="VLM spec, e.g. hf:openai/clip-vit-base-patch16, hf:/path/to/clip, demo:fashion")
