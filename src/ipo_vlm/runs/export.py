"""What a run found, in forms other tools use: JSON, a transformers snippet, an open_clip snippet.

Snippets embed class names and templates that an LLM wrote, so every string goes in as a
Python literal (``repr``) and templates are filled by ``str.replace`` inside the snippet: a
template such as ``"); import os; os.system("x`` stays inert text. transformers' pipeline
fills ``hypothesis_template`` with ``str.format``, so there every other brace is doubled."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ipo_vlm.errors import ConfigError
from ipo_vlm.prompting.placeholders import PLACEHOLDER
from ipo_vlm.runs.run import Run

EXPORT_FORMAT = "ipo-export-1"
DEFAULT_HF_MODEL = "openai/clip-vit-base-patch16"
DEFAULT_OPEN_CLIP = ("ViT-B-16", "openai")
#: OpenAI's CLIP checkpoints under their names on the Hugging Face hub and in open_clip
_OPENAI_CLIP = {
    "openai/clip-vit-base-patch32": ("ViT-B-32", "openai"),
    "openai/clip-vit-base-patch16": ("ViT-B-16", "openai"),
    "openai/clip-vit-large-patch14": ("ViT-L-14", "openai"),
    "openai/clip-vit-large-patch14-336": ("ViT-L-14-336", "openai"),
}


def export_payload(run: Run, ensemble: int | None = None) -> dict[str, Any]:
    """The JSON export: class names, the best template, the VLM, scores and (with
    ``ensemble=K``) the top-K templates by the run's selection key (:meth:`Run.top`)."""
    result = run.require_result()
    classnames, base, novel = run.classnames()
    payload: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "run": str(run.path),
        "dataset": run.dataset_name,
        "vlm": run.vlm,
        "classnames": classnames,
        "base_classnames": base,
        "novel_classnames": novel,
        "best_template": result.best_template,
        "select_on": run.select_on,
        "scores": {"base_acc": result.base_acc, "novel_acc": result.novel_acc, "hm": result.hm},
    }
    if ensemble is not None:
        payload["ensemble"] = {"k": ensemble, "ranked_by": run.select_on, "templates": run.top(ensemble)}
    return payload


def templates_of(payload: dict[str, Any]) -> list[str]:
    """The ensemble's templates if exported, else the best template alone."""
    ens = payload.get("ensemble")
    return list(ens["templates"]) if ens else [payload["best_template"]]


def render_json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def format_safe(template: str) -> str:
    """``template`` for a ``str.format`` consumer: braces other than the placeholder doubled,
    so ``format`` puts the class name at ``{}`` and prints every other brace literally."""
    return PLACEHOLDER.join(part.replace("{", "{{").replace("}", "}}") for part in template.split(PLACEHOLDER))


def hf_model_for(vlm: str) -> tuple[str, str | None]:
    """The transformers model id for a run's VLM spec, and a note when it is a stand-in."""
    scheme, _, name = vlm.partition(":")
    if scheme == "hf" and name:
        return name, None
    if scheme == "open_clip":
        for hf, oc in _OPENAI_CLIP.items():
            if "@".join(oc) == name:
                return hf, None
    return DEFAULT_HF_MODEL, f"the run used {vlm!r}, which transformers cannot load; {DEFAULT_HF_MODEL} stands in"


def open_clip_model_for(vlm: str) -> tuple[str, str, str | None]:
    """(architecture, pretrained tag or path) for open_clip, and a note when it is a stand-in."""
    scheme, _, name = vlm.partition(":")
    if scheme == "open_clip" and "@" in name:
        arch, _, pretrained = name.partition("@")
        return arch, pretrained, None
    if scheme == "hf" and name in _OPENAI_CLIP:
        return (*_OPENAI_CLIP[name], None)
    arch, pretrained = DEFAULT_OPEN_CLIP
    return arch, pretrained, f"the run used {vlm!r}, which has no open_clip equivalent here; {arch} ({pretrained}) stands in"


def _header(payload: dict[str, Any], note: str | None) -> list[str]:
    lines = [
        f"# Zero-shot classifier exported by ipo-vlm from run {payload['run']!r}.",
        f"# VLM of the run: {payload['vlm']!r}; dataset: {payload['dataset']!r}.",
    ]
    if note:
        lines.append(f"# NOTE: {note}.")
    return [line.replace("\n", " ").replace("\r", " ") for line in lines]


def _literal_list(name: str, items: list[str]) -> list[str]:
    return [f"{name} = ["] + [f"    {item!r}," for item in items] + ["]"]


def render_hf(payload: dict[str, Any]) -> str:
    """A runnable transformers snippet: the zero-shot image classification pipeline with the
    best template, or (for an ensemble) the model's own text/image features averaged the way
    ipo-vlm scores ensembles, since the pipeline takes a single template."""
    model, note = hf_model_for(payload["vlm"])
    templates = templates_of(payload)
    lines = _header(payload, note) + ["import sys", ""]
    lines += [f"MODEL = {model!r}"] + _literal_list("CLASSNAMES", payload["classnames"])
    if len(templates) == 1:
        lines += [
            "# The pipeline fills hypothesis_template with str.format: braces other than the",
            "# class placeholder are doubled so that they stay literal text.",
            f"HYPOTHESIS_TEMPLATE = {format_safe(templates[0])!r}",
            "",
            "from transformers import pipeline",
            "",
            'classifier = pipeline("zero-shot-image-classification", model=MODEL)',
            "for path in sys.argv[1:]:",
            "    scores = classifier(path, candidate_labels=CLASSNAMES, hypothesis_template=HYPOTHESIS_TEMPLATE)",
            "    print(path, [(s['label'], round(s['score'], 4)) for s in scores[:5]])",
        ]
    else:
        lines += _literal_list("TEMPLATES", templates) + [
            "",
            "import torch",
            "from PIL import Image",
            "from transformers import AutoModel, AutoProcessor",
            "",
            "model = AutoModel.from_pretrained(MODEL).eval()",
            "processor = AutoProcessor.from_pretrained(MODEL)",
            "",
            "",
            "def features(output):",
            "    # newer transformers return a model output here, older ones the tensor",
            "    return getattr(output, 'pooler_output', output)",
            "",
            "",
            "with torch.no_grad():",
            "    # ensemble: per class, the normalised mean of each template's normalised text embedding",
            "    weights = 0",
            "    for template in TEMPLATES:",
            "        texts = [template.replace('{}', name) for name in CLASSNAMES]",
            "        tokens = processor(text=texts, return_tensors='pt', padding=True)",
            "        emb = features(model.get_text_features(**tokens))",
            "        weights = weights + emb / emb.norm(dim=-1, keepdim=True)",
            "    weights = weights / weights.norm(dim=-1, keepdim=True)",
            "    for path in sys.argv[1:]:",
            "        pixels = processor(images=Image.open(path).convert('RGB'), return_tensors='pt')",
            "        img = features(model.get_image_features(**pixels))",
            "        img = img / img.norm(dim=-1, keepdim=True)",
            "        probs = (model.logit_scale.exp() * img @ weights.T).softmax(dim=-1)[0]",
            "        top = probs.topk(min(5, len(CLASSNAMES)))",
            "        print(path, [(CLASSNAMES[i], round(float(p), 4)) for p, i in zip(top.values, top.indices)])",
        ]
    return "\n".join(lines) + "\n"


def render_open_clip(payload: dict[str, Any]) -> str:
    """A runnable open_clip snippet using ``open_clip.build_zero_shot_classifier`` with the
    template(s) as callables (which fill the class name by ``str.replace``, not ``format``)."""
    arch, pretrained, note = open_clip_model_for(payload["vlm"])
    lines = _header(payload, note) + ["import sys", ""]
    lines += [f"ARCH = {arch!r}", f"PRETRAINED = {pretrained!r}"]
    lines += _literal_list("CLASSNAMES", payload["classnames"]) + _literal_list("TEMPLATES", templates_of(payload))
    lines += [
        "",
        "import open_clip",
        "import torch",
        "from PIL import Image",
        "",
        "model, _, preprocess = open_clip.create_model_and_transforms(ARCH, pretrained=PRETRAINED)",
        "model.eval()",
        "tokenizer = open_clip.get_tokenizer(ARCH)",
        "classifier = open_clip.build_zero_shot_classifier(",
        "    model,",
        "    tokenizer=tokenizer,",
        "    classnames=CLASSNAMES,",
        "    templates=[lambda c, t=t: t.replace('{}', c) for t in TEMPLATES],",
        "    num_classes_per_batch=10,",
        "    device='cpu',",
        ")",
        "with torch.no_grad():",
        "    for path in sys.argv[1:]:",
        "        image = preprocess(Image.open(path).convert('RGB')).unsqueeze(0)",
        "        feats = model.encode_image(image)",
        "        feats = feats / feats.norm(dim=-1, keepdim=True)",
        "        probs = (model.logit_scale.exp() * feats @ classifier).softmax(dim=-1)[0]",
        "        top = probs.topk(min(5, len(CLASSNAMES)))",
        "        print(path, [(CLASSNAMES[i], round(float(p), 4)) for p, i in zip(top.values, top.indices)])",
    ]
    return "\n".join(lines) + "\n"


FORMATS: dict[str, Callable[[dict[str, Any]], str]] = {"json": render_json, "hf": render_hf, "open_clip": render_open_clip}


def export_run(run: str | Path, fmt: str, ensemble: int | None = None) -> str:
    """The text of ``run``'s export in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    return FORMATS[fmt](export_payload(Run.open(run, need_result=True), ensemble))
