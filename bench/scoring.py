"""Template scoring speed: this engine against the naive per-candidate way, side by side.

A CLIP with ViT-B/16 shapes (vision 768 wide x 12 layers, patch 16, 224 px; text 512 wide x 12
layers; projection 512) and random weights; 51 classes (the base half of Flowers-102), 51
training images (1-shot) and 816 (16-shot). Printed:

  (a) candidates scored per second by the engine (image features cached, every candidate new
      text, so the text-embedding cache never hits);
  (b) the naive way: every candidate re-encodes all training images and its 51 prompts padded
      to 77 tokens (what a per-candidate CLIP evaluation does);
  (c) time ratio b / a;
  (d) speed-up of padding each text batch to its longest prompt over padding to 77;
  (e) share of the engine's scoring time spent outside the text encoder's forward pass.

The tokenizer has CLIP's special tokens and byte symbols plus merges that make each word of the
benchmark's prompts a single token, so prompt lengths resemble CLIP BPE's. Naive image cost is
measured on a few images and scaled to 51 / 816 (linear in the number of images); the naive
scores are checked against the engine's on those images.

    python bench/scoring.py --quick     # under a minute
    python bench/scoring.py             # more candidates and images measured
"""

from __future__ import annotations

import argparse
import time

import numpy as np

FLOWERS_BASE = (
    "pink primrose|hard-leaved pocket orchid|canterbury bells|sweet pea|english marigold|tiger lily|"
    "moon orchid|bird of paradise|monkshood|globe thistle|snapdragon|colt's foot|king protea|"
    "spear thistle|yellow iris|globe-flower|purple coneflower|peruvian lily|balloon flower|"
    "giant white arum lily|fire lily|pincushion flower|fritillary|red ginger|grape hyacinth|"
    "corn poppy|prince of wales feathers|stemless gentian|artichoke|sweet william|carnation|"
    "garden phlox|love in the mist|mexican aster|alpine sea holly|ruby-lipped cattleya|cape flower|"
    "great masterwort|siam tulip|lenten rose|barbeton daisy|daffodil|sword lily|poinsettia|"
    "bolero deep blue|wallflower|marigold|buttercup|oxeye daisy|common dandelion|petunia"
).split("|")
STYLES = ["photo", "close-up photo", "bright photo", "blurry photo", "cropped photo", "macro shot", "picture", "snapshot"]
SUBJECTS = ["a {}", "the {}", "a single {}", "a blooming {}", "a wild {}", "my favourite {}"]
ENDINGS = [
    ", a type of flower.", " in a garden.", ", with petals in soft light.", " growing in a field.",
    ", a flowering plant.", " against a green background.", " seen from above.", " with leaves and stem.",
]


def candidates(n: int, offset: int = 0) -> list[str]:
    """n distinct templates shaped like LLM proposals; indices 0..383 are all different."""
    out = []
    for i in range(offset, offset + n):
        style = STYLES[i % len(STYLES)]
        subject = SUBJECTS[(i // len(STYLES)) % len(SUBJECTS)]
        ending = ENDINGS[(i // (len(STYLES) * len(SUBJECTS))) % len(ENDINGS)]
        out.append(f"a {style} of {subject}{ending}")
    return out


def build_tokenizer(corpus: list[str]):
    """CLIP tokenizer: byte vocabulary, special tokens, and BPE merges learned on ``corpus``."""
    import json

    from tokenizers import Tokenizer, models, trainers
    from transformers import CLIPTokenizer

    from ipo_vlm.testing.tiny_clip import byte_level_vocab

    vocab = byte_level_vocab()
    plain = CLIPTokenizer(vocab=vocab, merges=[]).backend_tokenizer
    bpe = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    bpe.normalizer, bpe.pre_tokenizer = plain.normalizer, plain.pre_tokenizer
    trainer = trainers.BpeTrainer(vocab_size=20_000, end_of_word_suffix="</w>", show_progress=False)
    bpe.train_from_iterator(corpus, trainer)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in json.loads(bpe.to_str())["model"]["merges"]]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def build_vlm(tokenizer):
    """ViT-B/16-shaped CLIP with random weights behind the hf backend's class."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    from ipo_vlm.vlm.hf import HFVisionLanguageModel
    from ipo_vlm.vlm.preprocess import ClipTransform

    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = CLIPConfig(
        text_config=dict(vocab_size=max(len(tokenizer), 49408), hidden_size=512, intermediate_size=2048,
                         num_hidden_layers=12, num_attention_heads=8, max_position_embeddings=77,
                         bos_token_id=tokenizer.convert_tokens_to_ids("<|startoftext|>"),
                         eos_token_id=eos, pad_token_id=eos),
        vision_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                           num_attention_heads=12, image_size=224, patch_size=16),
        projection_dim=512,
    )
    torch.manual_seed(0)
    model = CLIPModel(config).eval()
    t = ClipTransform()
    return HFVisionLanguageModel(model, tokenizer, t.batch, model_id="bench-vit-b16-random",
                                 preprocess_id=t.preprocess_id, batch_size=16)


class ForwardTimer:
    """Adds up the time spent in the text transformer's forward calls (plain and shared-prefix)."""

    def __init__(self, vlm) -> None:
        import ipo_vlm.vlm.hf as hf

        self.seconds = 0.0
        self._restore = [(vlm.model, "get_text_features"), (hf, "encode_shared_prefixes")]
        self._saved = [getattr(obj, name) for obj, name in self._restore]
        for (obj, name), inner in zip(self._restore, self._saved):
            setattr(obj, name, self._timed(inner))

    def _timed(self, inner):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed

    def close(self) -> None:
        for (obj, name), inner in zip(self._restore, self._saved):
            setattr(obj, name, inner)


def random_images(n: int, rng: np.random.Generator):
    from PIL import Image

    return [Image.fromarray(rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)) for _ in range(n)]


def unit_rows(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def engine_rate(vlm, n_images: int, n_cands: int, offset: int, rng) -> tuple[float, float]:
    """(seconds per candidate, share outside the text forward), 5 candidates per call as in a step."""
    from ipo_vlm.engine.scoring import Scorer

    feats = unit_rows(n_images, 512, rng)
    labels = np.arange(n_images) % len(FLOWERS_BASE)
    scorer = Scorer(vlm, cache_root=False)
    timer = ForwardTimer(vlm)
    todo = candidates(n_cands, offset)
    start = time.perf_counter()
    for i in range(0, n_cands, 5):
        scorer.score(todo[i : i + 5], FLOWERS_BASE, feats, labels)
    total = time.perf_counter() - start
    timer.close()
    assert scorer.stats["text_hits"] == 0, "candidates were meant to be new text"
    return total / n_cands, 1.0 - timer.seconds / total


def naive_candidate(vlm, images, labels, template: str) -> tuple[float, float, np.ndarray, tuple[float, float]]:
    """Re-encode the images and the 51 prompts padded to 77, then score.

    Returns (image seconds, text+score seconds, the image features, (accuracy, loss))."""
    from ipo_vlm.engine.scoring import accuracy_and_loss
    from ipo_vlm.prompting.placeholders import fill

    start = time.perf_counter()
    feats = vlm.encode_images(images)
    mid = time.perf_counter()
    text = vlm.encode_texts([fill(template, c) for c in FLOWERS_BASE], pad_to="max_length")
    scores = accuracy_and_loss(vlm.logit_scale * feats.astype(np.float64) @ text.T.astype(np.float64), labels)
    return mid - start, time.perf_counter() - mid, feats, scores


def naive_cost(vlm, n_images: int, rng) -> tuple[float, float]:
    """(seconds per image, seconds for 51 prompts at 77 tokens) of the naive way, after checking
    that the engine, given the same images' features once, returns the same numbers."""
    from ipo_vlm.engine.scoring import Scorer

    images = random_images(n_images, rng)
    labels = np.arange(n_images) % len(FLOWERS_BASE)
    vlm.encode_images(images[:1])  # warm-up: first calls allocate
    template = candidates(1, 300)[0]
    img_s, text_s, feats, (acc, loss) = naive_candidate(vlm, images, labels, template)
    engine = Scorer(vlm, cache_root=False).score([template], FLOWERS_BASE, feats, labels)[0]
    assert abs(engine.accuracy - acc) < 1e-9 and abs(engine.loss - loss) < 1e-4, (engine, acc, loss)
    return img_s / n_images, text_s


def padding_speedup(vlm, n_cands: int, reps: int) -> tuple[float, float, float]:
    """(77 / longest, longest / shared-prefix) time ratios, max abs difference to padding to 77.

    Modes are interleaved and the fastest of ``reps`` rounds kept: the CPU may be shared."""
    from ipo_vlm.prompting.placeholders import fill

    texts = [fill(t, c) for t in candidates(n_cands, 200) for c in FLOWERS_BASE]
    seconds: dict = {}
    feats: dict = {}
    for _ in range(reps):
        for mode in ("max_length", "longest", None):
            start = time.perf_counter()
            feats[mode] = vlm.encode_texts(texts, pad_to=mode)
            seconds[mode] = min(seconds.get(mode, 1e9), time.perf_counter() - start)
    diff = max(float(np.abs(feats[m] - feats["max_length"]).max()) for m in ("longest", None))
    return seconds["max_length"] / seconds["longest"], seconds["longest"] / seconds[None], diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer candidates and images (under a minute)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice); on a CPU shared with other jobs, "
                             "1 keeps the measured ratios stable")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    n_cands, n_naive_imgs, n_pad, reps = (5, 4, 1, 1) if args.quick else (30, 51, 2, 3)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    corpus = [*STYLES, *SUBJECTS, *ENDINGS, *FLOWERS_BASE, "a of"]
    vlm = build_vlm(build_tokenizer(corpus))
    lengths = vlm.count_tokens([t.replace("{}", c) for t in candidates(20) for c in FLOWERS_BASE])
    import torch

    print(f"model ready in {time.perf_counter() - t0:.1f} s, {torch.get_num_threads()} torch threads; prompt length {np.mean(lengths):.1f} tokens on average "
          f"(max {max(lengths)}); {n_cands} engine candidates, naive image cost from {n_naive_imgs} images")

    per_image, text_s = naive_cost(vlm, n_naive_imgs, rng)
    speedup, prefix_gain, pad_diff = padding_speedup(vlm, n_pad, reps)
    print(f"(d) padding to the longest prompt vs to 77: {speedup:.2f}x faster; shared-prefix encoding a further "
          f"{prefix_gain:.2f}x ({n_pad * len(FLOWERS_BASE)} prompts; max abs difference to padding to 77: {pad_diff:.1e})")
    print(f"    naive per candidate: {per_image:.3f} s per image (measured on {n_naive_imgs}, scaled to the image count) "
          f"+ {text_s:.2f} s for 51 prompts at 77 tokens; engine scores checked equal to the naive ones")
    for shots, n_images in ((1, 51), (16, 816)):
        per_cand, outside = engine_rate(vlm, n_images, n_cands, 0 if shots == 1 else 100, rng)
        naive = per_image * n_images + text_s
        print(f"{shots:>2}-shot ({n_images} images): (a) engine {1 / per_cand:.2f} candidates/s "
              f"({per_cand:.2f} s each) | (b) naive {naive:.1f} s per candidate | "
              f"(c) b/a = {naive / per_cand:.0f}x | (e) outside text forward {100 * outside:.1f}%")
    print(f"total bench time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
