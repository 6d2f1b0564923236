"""What keeping one llama.cpp instance across optimizer steps saves (prompt-prefix KV reuse).

Runs a few optimizer-like steps on the local model; every step is called twice, side by side:
  reuse     one Llama instance, never reset: the KV cache of the longest common prompt prefix
            (system line, instructions, the unchanged part of the memory) is kept between calls
  no reuse  the same instance, reset before every call: the whole prompt is evaluated each time
Both modes see identical prompts (the memory evolves from seeded fake scores, not from the
model's answers) and identical sampling seeds, so the difference is the prefix reuse alone.
The meta-prompt is the project's own (``ipo_vlm.prompting``). Step 0 starts from an empty KV
cache in both modes.

    .venv/bin/python bench/llm.py                 # local model, 3 steps per mode
    .venv/bin/python bench/llm.py --steps 4 --descriptions 10 --llm llamacpp:/path/model.gguf
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

from ipo_vlm.llm import LLMRequest, OutputConstraint, create_llm

DESCRIPTIONS = [
    "a grey knitted pullover with long sleeves, seen from the front",
    "a white sneaker with a thick sole on a black background",
    "a short-sleeved cotton t-shirt with a round neck",
    "a leather ankle boot with a low heel, side view",
    "a knee-length dress with thin straps and a flared skirt",
    "a pair of straight-leg trousers, folded at the waist",
    "a handbag with a short handle and a metal clasp",
    "an open sandal with crossed straps",
    "a buttoned wool coat with a wide collar",
    "a loose shirt with a pointed collar and a breast pocket",
    "a low-resolution grayscale photo of a single garment, centred",
    "a small dark image of footwear against a plain background",
]
WORDS = ["photo", "picture", "close-up shot", "studio image", "product photo", "catalog image", "snapshot",
         "low-resolution photo", "grayscale photo", "cropped photo", "centered photo", "bright photo"]
EXTRAS = ["", " of clothing", " on a plain background", " for an online shop", " worn by a model",
          " folded on a table", " in a fashion catalog", " taken in a studio"]


@dataclass
class StepResult:
    wall_s: float
    tokens_in: int
    tokens_out: int
    reused: int
    prefill_tokens: int | None
    prefill_ms: float | None


def initial_memory(size: int, rng: random.Random) -> list[tuple[str, float, float]]:
    entries = set()
    while len(entries) < size:
        entries.add(f"a {rng.choice(WORDS)} of a {{}}{rng.choice(EXTRAS)}.")
    scored = [(t, round(rng.uniform(0.55, 0.8), 4), round(rng.uniform(0.6, 1.3), 4)) for t in sorted(entries)]
    return sorted(scored, key=lambda e: e[1])


def step_memory(memory: list[tuple[str, float, float]], candidates: int, capacity: int, rng: random.Random) -> list[tuple[str, float, float]]:
    """Insert ``candidates`` new scored templates and keep the best ``capacity``, worst first,
    as the optimizer's episodic memory does."""
    known = {t for t, _, _ in memory}
    new = list(memory)
    while len(new) < len(memory) + candidates:
        t = f"a {rng.choice(WORDS)} of the {rng.choice(['', 'small ', 'worn '])}{{}}{rng.choice(EXTRAS)}, step {len(new)}."
        if t not in known:
            known.add(t)
            new.append((t, round(rng.uniform(0.6, 0.85), 4), round(rng.uniform(0.5, 1.1), 4)))
    return sorted(new, key=lambda e: e[1])[-capacity:]


def meta_prompt(memory: list[tuple[str, float, float]], n: int, descriptions: int) -> tuple[tuple[str, str], ...]:
    """The project's own meta-prompt (system line, task, descriptions, memory, closing line)."""
    from ipo_vlm.prompting import MetaPromptInputs, render_meta_prompt

    chosen = [DESCRIPTIONS[i % len(DESCRIPTIONS)] for i in range(descriptions)]
    return render_meta_prompt(MetaPromptInputs(domain="clothing items", n_candidates=n, memory=memory, descriptions=chosen))


def _perf(llama: Any) -> tuple[Any, Any]:
    """llama.cpp's own prompt-eval counters when the binding exposes them."""
    try:
        import llama_cpp

        return llama_cpp.llama_perf_context, llama_cpp.llama_perf_context_reset
    except (ImportError, AttributeError):
        return None, None


def timed_call(llm: Any, request: LLMRequest, reuse: bool) -> StepResult:
    """One call, with the KV cache kept (``reuse``) or reset first; llama.cpp's own prompt-eval
    counters say how many prompt tokens were really evaluated."""
    llm.reuse_prefix = reuse
    llama = llm.llama
    perf, perf_reset = _perf(llama)
    if perf_reset:
        perf_reset(llama.ctx)
    start = time.perf_counter()
    resp = llm.complete(request)
    wall = time.perf_counter() - start
    data = perf(llama.ctx) if perf else None
    return StepResult(
        wall, resp.tokens_in, resp.tokens_out, resp.extra.get("prefix_reused_tokens", 0),
        int(data.n_p_eval) if data is not None else None, float(data.t_p_eval_ms) if data is not None else None,
    )


def run_interleaved(llm: Any, args: argparse.Namespace) -> dict[str, list[StepResult]]:
    """Each step runs the reuse call, then the no-reuse call on the same prompt and seed.

    Interleaving keeps both modes under the same machine load (the CPU is shared). It is exact
    for the reuse mode too: the no-reuse call leaves the KV cache holding this step's prompt,
    which is what the reuse call of the next step would find after a run of reuse calls."""
    llm.llama.reset()
    rng = random.Random(args.seed)
    memory = initial_memory(args.memory, rng)
    rows: dict[str, list[StepResult]] = {"reuse": [], "no reuse": []}
    for step in range(args.steps):
        request = LLMRequest(
            messages=meta_prompt(memory, args.candidates, args.descriptions), temperature=1.1, top_p=0.95,
            repeat_penalty=1.2, max_tokens=args.max_tokens, seed=args.seed + step,
            constraint=OutputConstraint(args.candidates),
        )
        for mode in ("reuse", "no reuse"):
            r = timed_call(llm, request, mode == "reuse")
            rows[mode].append(r)
            prefill = "?" if r.prefill_ms is None else f"{r.prefill_ms / 1000:.1f}"
            print(f"  step {step} {mode:8s}: {r.wall_s:6.1f} s  prompt {r.tokens_in} tok (reused {r.reused}, "
                  f"evaluated {r.prefill_tokens}, {prefill} s)  out {r.tokens_out} tok", flush=True)
        memory = step_memory(memory, args.candidates, args.capacity, rng)
    return rows


def summary(name: str, rows: list[StepResult]) -> dict[str, float]:
    warm = rows[1:] or rows  # step 0 is cold in both modes
    out = {
        "wall_s": statistics.mean(r.wall_s for r in warm),
        "tokens_in": statistics.mean(r.tokens_in for r in warm),
        "tokens_out": statistics.mean(r.tokens_out for r in warm),
        "evaluated": statistics.mean(r.prefill_tokens or 0 for r in warm),
        "prefill_s": statistics.mean((r.prefill_ms or 0) / 1000 for r in warm),
    }
    print(f"{name:9s} {out['wall_s']:8.1f} s/step  prompt {out['tokens_in']:6.0f} tok  evaluated {out['evaluated']:6.0f} tok  "
          f"prefill {out['prefill_s']:6.1f} s  out {out['tokens_out']:5.0f} tok")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--llm", default="local", help="a llamacpp: or local spec")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--memory", type=int, default=15, help="memory entries in the first prompt")
    p.add_argument("--capacity", type=int, default=18, help="top-k memory size")
    p.add_argument("--candidates", type=int, default=5)
    p.add_argument("--descriptions", type=int, default=0, help="image-description lines before the memory")
    p.add_argument("--max-tokens", type=int, default=120)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    start = time.perf_counter()
    llm = create_llm(args.llm)
    llm.check()
    print(f"model {llm.model_id}, loaded in {time.perf_counter() - start:.1f} s, n_threads {llm.n_threads}")
    print(f"{args.steps} steps, {args.memory} memory entries (top-{args.capacity}), {args.descriptions} descriptions, "
          f"{args.candidates} candidates, max {args.max_tokens} tokens")
    rows = run_interleaved(llm, args)
    print("\nmean over steps 1.. (step 0 starts from an empty KV cache in both modes):")
    a, b = summary("reuse", rows["reuse"]), summary("no reuse", rows["no reuse"])
    print(f"\nno reuse / reuse: wall {b['wall_s'] / a['wall_s']:.2f}x, "
          f"prompt tokens evaluated {b['evaluated'] / max(a['evaluated'], 1):.1f}x, "
          f"prefill time {b['prefill_s'] / max(a['prefill_s'], 1e-9):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
