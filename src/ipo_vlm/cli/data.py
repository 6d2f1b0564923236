"""`ipo data`: load a dataset, draw its few-shot base-to-novel split, print a summary."""

from __future__ import annotations

import argparse

from ipo_vlm.cli.common import add_class_split_arg, add_data_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="show a dataset's few-shot base/novel split; optionally write split.json",
                       description="Load a dataset, draw the seeded K-shot base-to-novel split and summarise it.")
    add_data_args(p, dataset_default="demo")
    p.add_argument("--shots", type=int, default=16, help="training images per class (default 16)")
    p.add_argument("--seed", type=int, default=1, help="sampling seed (1, 2, 3 by convention; default 1)")
    add_class_split_arg(p)
    p.add_argument("--out", default=None, metavar="SPLIT_JSON", help="write the split to this file")
    p.add_argument("--check-images", action="store_true", help="decode every chosen few-shot image")
    p.add_argument("--strict-shots", action="store_true",
                   help="fail when a class has fewer training images than --shots (default: use all it has)")
    p.add_argument("--template", default=None, help="override the dataset's hand-crafted template ('{}' = class)")
    p.add_argument("--domain", default=None, help="override the dataset's domain word (e.g. 'bird')")
    p.add_argument("--classnames", default=None, metavar="FILE",
                   help="folder datasets: mapping file of '<folder> <class name>' lines or a JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ipo_vlm.data import load_dataset, make_split
    from ipo_vlm.io.paths import check_output_path, ensure_writable_file

    if args.out:
        check_output_path(args.out, "--out")
    ds = load_dataset(args.dataset, args.data_root, template=args.template, domain=args.domain,
                      classnames_file=args.classnames)
    if args.out:  # before any work, not after it; a split file inside a folder dataset would join its data
        check_output_path(args.out, "--out", data_root=getattr(ds, "image_dir", None))
        ensure_writable_file(args.out, "--out")
    split = make_split(ds, shots=args.shots, seed=args.seed, strict=args.strict_shots, class_split=args.class_split)
    if args.check_images:
        for name in ("train", "val", "train_novel"):
            for sample in split.part(name):
                ds.open_image(sample)
    counts = split.counts()
    info = ds.info
    print(f"dataset   {info.name}: {len(info.classnames)} classes "
          f"({len(split.base_classnames)} base / {len(split.novel_classnames)} novel)")
    image_dir = getattr(ds, "image_dir", None)
    if image_dir is not None:
        print(f"images    {image_dir}")
    print(f"template  {info.template}")
    print(f"domain    {info.domain}")
    print(f"few-shot  {split.shots} shots, seed {split.seed}")
    for name in ("train", "val", "train_novel", "test_base", "test_novel"):
        per = counts[name]
        spread = f"{min(per)}-{max(per)}" if per and min(per) != max(per) else str(per[0] if per else 0)
        print(f"  {name:<12} {len(split.part(name)):>7} images  ({spread} per class)")
    print(f"base      {_preview(split.base_classnames)}")
    print(f"novel     {_preview(split.novel_classnames)}")
    short = [s for s in split.short_classes if s["part"] == "train"]
    if short:
        print(f"note      {len(short)} class(es) have fewer than {split.shots} training images")
    untested = [s["classname"] for s in split.short_classes if s["part"] == "test"]
    if untested:
        print(f"warning   {len(untested)} class(es) have no test images: {_preview(tuple(untested))}")
    if args.check_images:
        print(f"checked   {sum(len(split.part(n)) for n in ('train', 'val', 'train_novel'))} images decode")
    if args.out:
        split.save(args.out)
        print(f"wrote     {args.out}")
    return 0


def _preview(names: tuple[str, ...], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... (+{len(names) - limit})" if len(names) > limit else "")
