"""A run's found template as a Hugging Face Hub dataset repository (``ipo export --format hub``).

The folder holds ``README.md`` (a dataset card: YAML metadata, base / novel / H against the
baselines and the control, how to use the template with transformers and open_clip),
``templates.json`` (class names, the template, the top-K ensemble with its scores) and the
run's ``result.json``; ``huggingface-cli upload USER/NAME DIR --repo-type dataset`` publishes it.

Every string that comes from the run (an LLM's template, class names, paths) is escaped where
it lands: the metadata is dumped by a YAML emitter and checked to load back unchanged (and no
line of it may end the front matter early), markdown text is backslash-escaped with HTML
characters as entities, and code blocks hold Python literals inside a fence longer than any run
of backticks in them. The folder is never the run directory: a run's files are its own."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ipo_vlm.errors import ConfigError
from ipo_vlm.io.jsonio import atomic_write_bytes, atomic_write_json
from ipo_vlm.runs.export import export_payload, render_hf, render_open_clip
from ipo_vlm.runs.run import Run

HUB_FORMAT = "ipo-hub-1"
FILES = ("README.md", "templates.json", "result.json")
DEFAULT_LICENSE = "mit"
TAGS = ["ipo-vlm", "prompt-optimization", "prompt-templates", "clip", "zero-shot-image-classification", "vision-language"]
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


def md(text: Any) -> str:
    """``text`` as inert markdown on one line: HTML characters as entities, markdown
    punctuation backslash-escaped, line breaks as spaces."""
    s = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = " ".join(s.splitlines()) if s.splitlines() else s
    return _MD_SPECIAL.sub(r"\\\1", s)


def code_block(code: str, lang: str = "python") -> str:
    """A fenced block that no backtick run inside ``code`` can close."""
    longest = max((len(m) for m in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{code.rstrip()}\n{fence}"


def front_matter(meta: dict[str, Any]) -> str:
    """The card's metadata as YAML that loads back to ``meta`` and cannot end the block early;
    JSON (which YAML reads too, every character escaped) when the plain dump would not."""
    import yaml

    text = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=2**31)
    lines = text.splitlines()
    if yaml.safe_load(text) != meta or any(line.startswith(("---", "...")) for line in lines):
        text = json.dumps(meta, indent=2, ensure_ascii=True) + "\n"
    return f"---\n{text}---\n"


def _scores(row: dict[str, Any] | None) -> dict[str, float | None] | None:
    if not row:
        return None
    return {k: row.get(k) for k in ("base_acc", "novel_acc", "hm")}


def ensemble_k(run: Run, k: int | None) -> int:
    """K of the exported ensemble: as asked, else the run's own, else up to 5 of its templates."""
    if k is not None:
        return k
    rows = (run.result_dict or {}).get("ensembles") or []
    return int(rows[-1]["k"]) if rows else min(5, len(run.ranked()))


def templates_doc(run: Run, k: int) -> dict[str, Any]:
    """``templates.json``: class names, the template, and the top-``k`` ensemble with the scores
    each template had on the few-shot images (and the ensemble's test scores when the run has them)."""
    payload = export_payload(run, k)
    ranked = [s.to_record() for s in run.ranked()[: len(payload["ensemble"]["templates"])]]
    result = run.result_dict or {}
    tested = next((e for e in result.get("ensembles") or [] if e.get("k") == k), None)
    return {
        "format": HUB_FORMAT,
        "placeholder": "{}",
        "fill": "template.replace('{}', class_name)",
        "vlm": payload["vlm"],
        "dataset": payload["dataset"],
        "classnames": payload["classnames"],
        "base_classnames": payload["base_classnames"],
        "novel_classnames": payload["novel_classnames"],
        "template": payload["best_template"],
        "scores": payload["scores"],
        "ensemble": {
            "k": k, "ranked_by": run.select_on,
            "templates": [{"template": r["template"], "train_acc": r.get("train_acc"), "train_loss": r.get("train_loss"),
                           "val_acc": r.get("val_acc"), "step": r.get("step"), "source": r.get("source")} for r in ranked],
            "test": _scores(tested),
        },
    }


def card_metadata(run: Run, license: str) -> dict[str, Any]:
    r = run.result_dict or {}
    control = r.get("control")
    return {
        "license": license,
        "pretty_name": f"ipo-vlm prompt template: {r.get('dataset')}"[:120],
        "tags": TAGS,
        "task_categories": ["zero-shot-image-classification"],
        "size_categories": ["n<1K"],
        "ipo_vlm": {
            "vlm": run.vlm,
            "dataset": r.get("dataset"),
            "protocol": "base-to-novel",
            "shots": r.get("shots"),
            "seed": r.get("seed"),
            "method": r.get("method", "ipo"),
            "llm": r.get("llm"),
            "select_on": run.select_on,
            "template": r.get("best_template"),
            "results": {
                "selected": _scores(r),
                "baseline": _scores(r.get("baseline")),
                "handcrafted": _scores(r.get("handcrafted")),
                "ensembles": [{"k": e.get("k"), **(_scores(e) or {})} for e in r.get("ensembles") or []],
                "control": None if not control else {"method": control.get("method", "random"), **(_scores(control) or {})},
            },
        },
    }


def _pct(v: Any) -> str:
    return f"{100 * v:.2f}" if isinstance(v, (int, float)) else "n/a"


def _row(name: str, scores: dict[str, Any], template: str) -> str:
    return f"| {md(name)} | {_pct(scores.get('base_acc'))} | {_pct(scores.get('novel_acc'))} | {_pct(scores.get('hm'))} | {md(template)} |"


def results_table(r: dict[str, Any]) -> list[str]:
    rows = ["| | base % | novel % | H % | template |", "|---|---:|---:|---:|---|",
            _row(f"found ({r.get('method', 'ipo')})", r, r.get("best_template", ""))]
    rows += [_row(f"top-{e.get('k')} ensemble", e, f"{e.get('k')} templates (templates.json)") for e in r.get("ensembles") or []]
    for name in ("baseline", "handcrafted"):
        if r.get(name):
            rows.append(_row(name, r[name], r[name].get("template", "")))
    if r.get("control"):
        c = r["control"]
        rows.append(_row(f"control ({c.get('method', 'random')} search, same budget)", c, c.get("best_template", "")))
    return rows


def card_text(run: Run, meta: dict[str, Any], payload: dict[str, Any]) -> str:
    r = run.result_dict or {}
    info = meta["ipo_vlm"]
    lines = [
        front_matter(meta),
        f"# Prompt template for {md(r.get('dataset'))} ({md(run.vlm)})",
        "",
        "A readable prompt template for zero-shot classification with a CLIP-style model, found by "
        "ipo-vlm with an LLM as the optimizer (IPO, NeurIPS 2024).",
        "",
        f"**Template:** {md(r.get('best_template'))}",
        "",
        "`{}` stands for the class name; fill it with `template.replace('{}', class_name)`, never with `str.format`.",
        "",
        "## Results",
        "",
        f"Protocol: base-to-novel. The template was chosen on {info['shots']}-shot training images of the base classes "
        f"(seed {info['seed']}, selected by {md(run.select_on)}); accuracies are on the test images of the base "
        f"classes and of the novel classes it never saw; H is their harmonic mean.",
        "",
        *results_table(r),
        "",
        f"Method: {md(info['method'])}; optimizer LLM: {md(info['llm'])}; VLM: {md(run.vlm)}. One split: compare over "
        "seeds before concluding.",
        "",
        "## Files",
        "",
        "- `templates.json`: the class names, the template and the top-K ensemble with scores",
        "- `result.json`: everything the run measured",
        "",
        "## Use with transformers",
        "",
        code_block(render_hf({**payload, "ensemble": None})),
        "",
        "## Use with open_clip",
        "",
        code_block(render_open_clip(payload)),
        "",
    ]
    return "\n".join(lines)


def _check_out(out: Path, run_path: Path) -> None:
    run, target = run_path.resolve(), out.resolve()
    if target == run or run in target.parents:
        raise ConfigError(f"--out {out} is inside the run directory {run_path}; choose a folder outside it")
    if target.exists() and not target.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()):
        previous = target / "templates.json"
        try:
            ours = json.loads(previous.read_text(encoding="utf-8")).get("format") == HUB_FORMAT
        except (OSError, ValueError, AttributeError):
            ours = False
        if not ours:
            raise ConfigError(f"--out {out} is not empty and holds no earlier hub export; choose an empty folder")


def export_hub(rundir: str | Path, out: str | Path, ensemble: int | None = None, license: str = DEFAULT_LICENSE) -> list[Path]:
    """Write the dataset repository folder ``out`` for the finished run ``rundir``; returns its files."""
    run = Run.open(rundir, need_result=True)
    target = Path(out)
    _check_out(target, run.path)
    k = ensemble_k(run, ensemble)
    payload = export_payload(run, k)
    meta = card_metadata(run, license)
    try:
        target.mkdir(parents=True, exist_ok=True)
        atomic_write_json(target / "templates.json", templates_doc(run, k))
        atomic_write_bytes(target / "result.json", run.path.joinpath("result.json").read_bytes())
        atomic_write_bytes(target / "README.md", card_text(run, meta, payload).encode("utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot write the hub export to {target}: {e.strerror or e}") from None
    return [target / name for name in FILES]
