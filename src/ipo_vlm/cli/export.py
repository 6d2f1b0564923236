"""`ipo export`: a run's class names and template(s) as JSON, as a transformers or open_clip snippet,
or as a folder ready to publish as a Hugging Face Hub dataset repository (``--format hub``)."""

from __future__ import annotations

import argparse
import sys

from ipo_vlm.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a run's class names and best template (or top-K ensemble) as json, hf or open_clip code, or a hub folder",
        description="json: class names, best template, VLM and scores. hf: a transformers zero-shot pipeline "
        "snippet. open_clip: a build_zero_shot_classifier snippet. Written to stdout unless --out is given. "
        "hub: a folder (--out DIR) with a dataset card README.md, templates.json and result.json, ready for "
        "`huggingface-cli upload USER/NAME DIR --repo-type dataset`.",
    )
    p.add_argument("rundir", help="a finished run directory (with result.json)")
    # choices are checked by the library so that an unknown format lists the known ones in one line
    p.add_argument("--format", dest="fmt", default="json", help="json (default), hf, open_clip or hub")
    p.add_argument("--out", default=None, help="write to this file instead of stdout (hub: the folder to create)")
    p.add_argument("--license", default=None, help="hub: the dataset card's license (default: mit)")
    p.add_argument("--ensemble", type=int, default=None, metavar="K", help="export the top-K templates by the run's selection key")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ipo_vlm.io.jsonio import atomic_write_bytes
    from ipo_vlm.runs.export import export_run

    from ipo_vlm.io.paths import check_output_path

    if args.out is not None:
        check_output_path(args.out, "--out")
    if args.fmt == "hub":
        return _hub(args)
    text = export_run(args.rundir, args.fmt, args.ensemble)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    out = Path(args.out)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; give a file name")
    try:
        atomic_write_bytes(out, text.encode("utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot write {out}: {e.strerror or e}") from None
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _hub(args: argparse.Namespace) -> int:
    from ipo_vlm.runs.hub import DEFAULT_LICENSE, export_hub

    if args.out is None:
        raise ConfigError("--format hub needs --out DIR (the folder to upload)")
    files = export_hub(args.rundir, args.out, args.ensemble, args.license or DEFAULT_LICENSE)
    print(f"wrote {', '.join(str(f) for f in files)}", file=sys.stderr)
    print(f"publish with: huggingface-cli upload USER/NAME {args.out} --repo-type dataset", file=sys.stderr)
    return 0
