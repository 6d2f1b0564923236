"""Paper scale, rehearsed: `optimize` end to end with CLIP ViT-B/16 shapes and CLIP's real
tokenizer, on a synthetic ImageNet of N classes, for S steps x 5 candidates.

Per class count (each in its own process, so peak memory is that run's) it prints:
  - seconds per step, split into LLM (a scripted LLM that writes realistic templates, so ~0),
    text encoding (the text tower's forward, tokenising included), scoring outside the text
    encoder (cache look-ups, validity checks, logits) and the rest (memory, files, progress);
  - prompts/s of the text encoder, and the scoring overhead as a share of scoring time;
  - resident memory after the first and the last step, and the peak; files opened per step;
  - the sizes of the feature store, the text-embedding cache, the LLM cache and the run dir;
and then how each grows from the smallest to the largest class count.

The dataset is CoOp's ImageNet layout (``imagenet/classnames.txt`` with real ImageNet class
names from the open_clip wheel, ``images/train|val/<wnid>/``), ``--shots`` training and one
test image per class. Images are noise; their features are put in the feature store up front
(ViT-B/16 takes ~0.4 s per image on 2 CPU cores, which is not what the loop costs), after the
image encoder's speed is measured on ``--image-sample`` images and printed beside the rest.
The weights are random: the numbers are costs, not accuracies.

    python bench/scale.py --classes 100 --steps 100          # ~10 min on 2 shared cores
    python bench/scale.py --classes 100,500,1000 --steps 5   # growth with classes
    python bench/scale.py --classes 100 --steps 3 --check-estimate   # the dry run's estimate against the run
    python bench/scale.py --arch tiny-512 --classes 1000 --steps 10   # overhead and memory, cheap text tower
    python bench/scale.py --classes 1000 --steps 10 --device cuda --dtype float16   # see bench/gpu.sh
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def rss_mb() -> tuple[float, float]:
    """(resident, of which anonymous: heap and tensors, not mapped cache files) in MB."""
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "RssAnon:")):
                name, value = line.split(":")
                fields[name] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", 0.0), fields.get("RssAnon", 0.0)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def du_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20 if path.exists() else 0.0


# -- the world -------------------------------------------------------------------------------------


def unique_names(names: list[str]) -> list[str]:
    """CLIP's ImageNet names hold "missile" and "sunglasses" twice; the dataset loader refuses
    two classes of one name, so the second gets a number."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n.lower()] = seen.get(n.lower(), 0) + 1
        out.append(n if seen[n.lower()] == 1 else f"{n} {seen[n.lower()]}")
    return out


def make_imagenet(root: Path, n_classes: int, shots: int) -> Path:
    """CoOp's ImageNet layout with ``shots`` training and one test image (16x16 noise) per class."""
    from PIL import Image

    from ipo_vlm.testing.real_clip import imagenet_classnames

    folder = root / "imagenet"
    if (folder / "classnames.txt").exists():
        return root
    names = unique_names(list(imagenet_classnames()))[:n_classes]
    rng = np.random.default_rng(0)
    lines = []
    for i, name in enumerate(names):
        wnid = f"n{i:08d}"
        lines.append(f"{wnid} {name}")
        for part, count in (("train", shots), ("val", 1)):
            d = folder / "images" / part / wnid
            d.mkdir(parents=True, exist_ok=True)
            for k in range(count):
                Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(d / f"{wnid}_{k}.png")
    (folder / "classnames.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def realistic_llm(domain: str = "object"):
    """A scripted LLM answering each request with 5 templates drawn from the template bank
    (styles, viewpoints, settings), seeded by the request: as long and varied as an LLM's."""
    from ipo_vlm.prompting.bank import TemplateBank
    from ipo_vlm.testing.scripted import ScriptedLLM

    bank = TemplateBank.load()

    def answer(request) -> str:
        rng = random.Random(f"{request.seed}-{request.sample_index}")
        templates = [t.replace("{}", "<CLASS>") for t in bank.sample(5, rng, domain)]
        return json.dumps({"templates": templates})

    return ScriptedLLM(answer=answer, model_id="scripted-bank")


def prefill_features(dataset, vlm) -> None:
    """Put unit-norm random features for every image in the feature store, under the VLM's ids."""
    from ipo_vlm.engine.features import FeatureStore

    class Filler:
        model_id, preprocess_id = vlm.model_id, vlm.preprocess_id
        rng = np.random.default_rng(1)

        def encode_images(self, images):
            x = self.rng.standard_normal((len(images), vlm.dim)).astype(np.float32)
            return x / np.linalg.norm(x, axis=1, keepdims=True)

    store = FeatureStore(Filler())
    for part in ("train", "test"):
        store.features(dataset, dataset.split(part), batch_size=256)


def image_speed(vlm, n: int) -> float:
    """Seconds per 224 px image through the image tower (one warm-up batch first)."""
    from PIL import Image

    rng = np.random.default_rng(2)
    images = [Image.fromarray(rng.integers(0, 256, (256, 320, 3), dtype=np.uint8)) for _ in range(n)]
    vlm.encode_images(images[:2])
    t = time.perf_counter()
    vlm.encode_images(images)
    return (time.perf_counter() - t) / n


# -- one run, instrumented ---------------------------------------------------------------------------


class Clock:
    """Adds the wall time of wrapped calls to named totals."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {"llm": 0.0, "text": 0.0, "score": 0.0}
        self.prompts = 0
        self.opens = 0

    def wrap(self, fn, name: str, count_prompts: bool = False):
        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.totals[name] += time.perf_counter() - t
                if count_prompts:
                    self.prompts += len(args[0])

        return timed


def run_config(args: argparse.Namespace, root: Path):
    from ipo_vlm.config import preset

    return preset("paper").updated(
        data={"dataset": "imagenet", "data_root": str(root), "shots": args.shots, "seed": 1},
        vlm=f"hf:{args.clip}", vlm_options={"device": args.device, "dtype": args.dtype},
        llm={"spec": "scripted:bank"}, captioner={"spec": "none"},
        optimize={"steps": args.steps, "candidates": 5, "control": "none", "ensemble": 0, "select_on": "train"},
    )


def child(args: argparse.Namespace) -> dict:
    from ipo_vlm.data import load_dataset
    from ipo_vlm.engine import scoring
    from ipo_vlm.runs.optimize import Backends, optimize
    from ipo_vlm.captioner.base import NoCaptioner
    from ipo_vlm.vlm import create_vlm

    work = Path(args.work)
    cache, out = work / f"cache-{args.child}", work / f"run-{args.child}"
    stale_dirs = (cache, out) if args.check_estimate else (cache / "text", cache / "llm", out)
    for stale in stale_dirs:  # a rerun starts cold; stored image features stay unless the estimate is checked
        shutil.rmtree(stale, ignore_errors=True)
    os.environ["IPO_CACHE_DIR"] = str(cache)
    root = make_imagenet(work / f"data-{args.child}", args.child, args.shots)
    vlm = create_vlm(f"hf:{args.clip}", device=args.device, dtype=args.dtype)
    dataset = load_dataset("imagenet", str(root))
    if not (args.encode_images or args.check_estimate):
        prefill_features(dataset, vlm)
    sec_per_image = image_speed(vlm, args.image_sample) if args.image_sample else None
    config = run_config(args, root)
    estimate = None
    if args.check_estimate:  # the dry run's estimate, then the run it estimates
        from ipo_vlm.engine.preflight import estimate_compute

        t = time.perf_counter()
        estimate = estimate_compute(config, dataset, vlm)
        estimate = {"seconds_taken": time.perf_counter() - t, "image_seconds": estimate.image_seconds,
                    "images": estimate.images_to_encode, "step_seconds": estimate.step_seconds, "lines": estimate.lines()}
    clock = Clock()
    clock.totals["images"] = 0.0
    vlm.encode_images = clock.wrap(vlm.encode_images, "images")
    vlm.encode_texts = clock.wrap(vlm.encode_texts, "text", count_prompts=True)
    llm = realistic_llm()
    llm.complete = clock.wrap(llm.complete, "llm")
    scoring.Scorer.score = clock.wrap(scoring.Scorer.score, "score")
    sys.addaudithook(lambda event, _: setattr(clock, "opens", clock.opens + 1) if event == "open" else None)
    marks: list[dict] = []

    def progress(p) -> None:
        if not p.doing:
            rss, anon = rss_mb()
            marks.append({"t": time.perf_counter(), "rss": rss, "anon": anon, "opens": clock.opens, "prompts": clock.prompts, **clock.totals})

    started = time.perf_counter()
    result = optimize(config, out, backends=Backends(dataset, vlm, llm, NoCaptioner()), progress=progress)
    ended = time.perf_counter()
    steps = [{k: b[k] - a[k] if k not in ("rss", "anon") else b[k] for k in b} for a, b in zip(marks, marks[1:])]
    return {
        "classes": args.child, "base": len(result.to_dict().get("base_classnames", [])) or args.child // 2,
        "steps": steps, "seed_step_s": marks[0]["t"] - started, "eval_s": ended - marks[-1]["t"],
        "peak_mb": peak_mb(), "sec_per_image": sec_per_image, "estimate": estimate, "image_s": clock.totals["images"],
        "features_mb": du_mb(cache / "features"), "text_mb": du_mb(cache / "text"),
        "llm_cache_mb": du_mb(cache / "llm"), "run_mb": du_mb(out), "steps_done": result.steps_done,
    }


# -- the parent: one process per class count, then the tables -----------------------------------------


def summarise(r: dict) -> dict:
    steps = r["steps"][1:] if len(r["steps"]) > 2 else r["steps"]  # step 1 warms caches up
    mean = {k: float(np.mean([s[k] for s in steps])) for k in ("t", "llm", "text", "score", "prompts", "opens")}
    overhead = mean["score"] - mean["text"]
    return {
        "classes": r["classes"], "prompts_step": mean["prompts"], "prompts_s": mean["prompts"] / max(mean["text"], 1e-9),
        "s_step": mean["t"], "llm": mean["llm"], "text": mean["text"], "overhead": overhead,
        "overhead_pct": 100 * overhead / max(mean["score"], 1e-9), "files": mean["t"] - mean["llm"] - mean["score"],
        "opens": mean["opens"], "rss_first": r["steps"][0]["rss"], "rss_last": r["steps"][-1]["rss"], "peak": r["peak_mb"],
        "anon_first": r["steps"][0]["anon"], "anon_last": r["steps"][-1]["anon"],
        "features_mb": r["features_mb"], "text_mb": r["text_mb"], "llm_cache_mb": r["llm_cache_mb"], "run_mb": r["run_mb"],
        "eval_s": r["eval_s"], "sec_per_image": r["sec_per_image"], "steps_done": r["steps_done"],
        "estimate": r.get("estimate"), "image_s": r.get("image_s", 0.0),
    }


def print_tables(rows: list[dict], args: argparse.Namespace) -> None:
    print(f"\n{args.steps} steps x 5 candidates, {args.shots}-shot, {args.dtype} on {args.device} "
          f"(means over steps 2..{args.steps} when there are 3 or more)")
    print(f"{'classes':>8}{'prompts/step':>13}{'prompts/s':>10}{'s/step':>8}{'LLM':>7}{'text':>7}{'score-text':>11}"
          f"{'(% score)':>10}{'files+rest':>11}{'opens/step':>11}{'RSS 1st->last MB':>18}{'anon 1st->last':>16}{'peak MB':>9}")
    for s in rows:
        print(f"{s['classes']:>8}{s['prompts_step']:>13.0f}{s['prompts_s']:>10.1f}{s['s_step']:>8.2f}{s['llm']:>7.3f}{s['text']:>7.2f}"
              f"{s['overhead']:>11.3f}{s['overhead_pct']:>9.1f}%{s['files']:>11.3f}{s['opens']:>11.1f}"
              f"{s['rss_first']:>9.0f} ->{s['rss_last']:>6.0f}{s['anon_first']:>8.0f} ->{s['anon_last']:>6.0f}{s['peak']:>9.0f}")
    print(f"\n{'classes':>8}{'features MB':>12}{'text cache MB':>14}{'LLM cache MB':>13}{'run dir MB':>11}{'eval s':>8}{'s/image':>9}")
    for s in rows:
        img = f"{s['sec_per_image']:.3f}" if s["sec_per_image"] else "-"
        print(f"{s['classes']:>8}{s['features_mb']:>12.2f}{s['text_mb']:>14.1f}{s['llm_cache_mb']:>13.2f}{s['run_mb']:>11.2f}"
              f"{s['eval_s']:>8.1f}{img:>9}")
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        k = b["classes"] / a["classes"]
        print(f"\nfrom {a['classes']} to {b['classes']} classes (x{k:.0f}): s/step x{b['s_step'] / a['s_step']:.1f}, "
              f"scoring overhead x{b['overhead'] / max(a['overhead'], 1e-9):.1f}, peak memory x{b['peak'] / a['peak']:.2f}, "
              f"text cache x{b['text_mb'] / max(a['text_mb'], 1e-9):.1f}")
    for s in rows:
        e = s.get("estimate")
        if e:
            print(f"{s['classes']} classes, dry-run estimate (took {e['seconds_taken']:.0f} s) against the run: "
                  f"images {e['image_seconds']:.1f} s estimated, {s['image_s']:.1f} s measured ({e['images']} images, "
                  f"x{s['image_s'] / max(e['image_seconds'], 1e-9):.2f}); text {e['step_seconds']:.2f} s/step estimated, "
                  f"{s['text']:.2f} s/step measured (x{s['text'] / max(e['step_seconds'], 1e-9):.2f})")
    for s in rows:
        print(f"{s['classes']} classes: memory {s['rss_last'] - s['rss_first']:+.0f} MB resident, {s['anon_last'] - s['anon_first']:+.0f} MB "
              f"anonymous from step 1 to step {s['steps_done']}; "
              f"scoring overhead outside the text forward {s['overhead_pct']:.1f}% of scoring (goal <= 10%)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--classes", default="100,500,1000", help="comma-separated class counts (ImageNet has 1000)")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--shots", type=int, default=1)
    p.add_argument("--arch", default="vit-b-16", help="CLIP shapes: vit-b-16, tiny-512 (ViT-B/16 embedding width, tiny towers) or tiny")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    p.add_argument("--image-sample", type=int, default=8, help="images to time the image tower on (0: skip)")
    p.add_argument("--encode-images", action="store_true", help="encode every image with the VLM (on a GPU) instead of storing random features")
    p.add_argument("--check-estimate", action="store_true",
                   help="start cold (no stored features), take the dry run's estimate, run, and print both side by side")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--work", default=None, help="where the model, data and caches go (default: a temp dir)")
    p.add_argument("--json", default=None, help="also write the per-class summaries here")
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--clip", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.child is not None:
        print("RESULT " + json.dumps(child(args)))
        return 0
    work = Path(args.work or tempfile.mkdtemp(prefix="ipo-scale-"))
    clip = work / f"clip-{args.arch}"
    if not (clip / "config.json").exists():
        from ipo_vlm.testing.real_clip import build_real_clip

        build_real_clip(clip, args.arch)
    rows = []
    for n in (int(c) for c in args.classes.split(",")):
        cmd = [sys.executable, str(HERE / "scale.py"), "--child", str(n), "--clip", str(clip), "--work", str(work),
               "--steps", str(args.steps), "--shots", str(args.shots), "--device", args.device, "--dtype", args.dtype,
               "--image-sample", str(args.image_sample if not rows else 0)] + (["--encode-images"] if args.encode_images else []) + (["--check-estimate"] if args.check_estimate else []) + (["--threads", str(args.threads)] if args.threads else [])
        print(f"running {n} classes ...", file=sys.stderr, flush=True)
        done = subprocess.run(cmd, capture_output=True, text=True)
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if done.returncode or line is None:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        raw = json.loads(line[7:])
        (work / f"result-{n}.json").write_text(json.dumps(raw))
        rows.append(summarise(raw))
        print(f"{n} classes: {rows[-1]['s_step']:.2f} s/step, {rows[-1]['prompts_s']:.1f} prompts/s", file=sys.stderr, flush=True)
        if rows[0]["sec_per_image"] and len(rows) > 1:
            rows[-1]["sec_per_image"] = None
    print_tables(rows, args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
