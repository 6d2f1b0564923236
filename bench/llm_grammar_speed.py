"""What the output grammar costs per generated token on the local model.

Side by side in one process, with the same meta-prompt (the project's own, one shifted-demo step)
and the same sampling seeds, alternating the order over --rounds:

- ``check-first``: the word-bounded template grammar, sampled the way the backend does by
  default (the grammar judges the drawn token; only a refused draw runs it over the vocabulary);
- ``grammar-first``: the same grammar before every draw (llama-cpp-python's own order,
  ``grammar_first=true`` on the spec);
- ``none``: no grammar.

Prompt-prefix reuse is off, so every call evaluates its whole prompt the same way. Prints seconds
per call, completion tokens per second for each and their ratios, how many draws the grammar
refused, and how much of each call is prompt evaluation (timed by a call that generates one token).

    .venv/bin/python bench/llm_grammar_speed.py               # the offline model, 3 rounds
    .venv/bin/python bench/llm_grammar_speed.py --llm llamacpp:/path/model.gguf --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from ipo_vlm.llm import LLMRequest, OutputConstraint, create_llm


def step_messages() -> tuple[tuple[str, str], ...]:
    from ipo_vlm.prompting import MetaPromptInputs, render_meta_prompt
    from ipo_vlm.scored import ScoredTemplate

    memory = [ScoredTemplate(t, a, l) for t, a, l in (
        ("a photo of a {}.", 0.52, 1.21), ("a close-up photo of a {} on a plain background.", 0.61, 1.05),
        ("a blurry photo of a {}.", 0.73, 0.88))]
    inputs = MetaPromptInputs(domain="clothing item", n_candidates=5, memory=memory,
                              descriptions=["a blurry photo of a clothing item. (80 of 80 images)"], placeholder="<CLASS>",
                              dataset_name="demo-blurry", style="edit", max_words=16)
    return tuple((role, content) for role, content in render_meta_prompt(inputs))


def call(llm, messages, constraint, seed: int, max_tokens: int) -> tuple[float, int, int]:
    request = LLMRequest(messages=messages, temperature=1.0, top_p=0.95, max_tokens=max_tokens, seed=seed,
                         constraint=constraint)
    start = time.perf_counter()
    response = llm.complete(request)
    return time.perf_counter() - start, response.tokens_out, response.extra.get("grammar_redraws", 0)


VARIANTS = ("check-first", "grammar-first", "none")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--llm", default="local")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=160)
    args = ap.parse_args(argv)

    llms = {"check-first": create_llm(args.llm, reuse_prefix=False),
            "grammar-first": create_llm(args.llm, reuse_prefix=False, grammar_first=True)}
    llms["none"] = llms["check-first"]
    messages = step_messages()
    grammar = OutputConstraint(5, max_words=16)
    for llm in llms.values():
        call(llm, messages, None, 0, 1)  # warm-up: loads the model and its first buffers
    prompt_s = statistics.median(call(llms["none"], messages, None, r, 1)[0] for r in range(3))
    runs: dict[str, list[tuple[float, int, int]]] = {name: [] for name in VARIANTS}
    for r in range(args.rounds):
        order = VARIANTS if r % 2 == 0 else tuple(reversed(VARIANTS))
        for name in order:
            result = call(llms[name], messages, None if name == "none" else grammar, 1000 + r, args.max_tokens)
            runs[name].append(result)
            print(f"round {r} {name:>13}: {result[0]:.1f} s, {result[1]} tokens", file=sys.stderr, flush=True)

    def rate(name: str) -> float:
        gen_s = sum(max(s - prompt_s, 1e-9) for s, _, _ in runs[name])
        return sum(t for _, t, _ in runs[name]) / gen_s

    print(f"prompt evaluation (one generated token): {prompt_s:.1f} s per call")
    print("| output | s per call | completion tokens per call | completion tokens/s (after the prompt) | draws refused |")
    print("|---|---|---|---|---|")
    for name in VARIANTS:
        secs = statistics.mean(s for s, _, _ in runs[name])
        toks = statistics.mean(t for _, t, _ in runs[name])
        refused = f"{sum(x for _, _, x in runs[name])} of {sum(t for _, t, _ in runs[name])}" if name != "none" else "-"
        print(f"| {name} | {secs:.1f} | {toks:.0f} | {rate(name):.2f} | {refused} |")
    print(f"generation speed, check-first / grammar-first: x{rate('check-first') / rate('grammar-first'):.2f}")
    print(f"generation speed, check-first / none: x{rate('check-first') / rate('none'):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
