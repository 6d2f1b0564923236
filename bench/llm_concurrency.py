"""Do parallel requests cut a step's wall time? A step that asks again needs a second batch of
candidates; with ``concurrency=N`` on an ``openai:`` spec those calls could go out together.

Side by side, against the server at ``OPENAI_BASE_URL``: ``--calls`` constrained requests for
one step's meta-prompt (the project's own, 5 templates each), sent one after another
(concurrency 1) and all at once (concurrency = --calls), alternating the order over --rounds.
Prints the wall time per batch and the ratio. Only a server with several slots (vLLM, llama.cpp's
``llama-server --parallel N``) can gain; llama-cpp-python's server answers one request at a time.

    OPENAI_BASE_URL=http://127.0.0.1:8765/v1 .venv/bin/python bench/llm_concurrency.py --model qwen
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from ipo_vlm.llm import LLMRequest, OutputConstraint
from ipo_vlm.llm.openai_backend import load_openai
from ipo_vlm.llm.session import LLMSession


def step_messages() -> tuple[tuple[str, str], ...]:
    from ipo_vlm.prompting import MetaPromptInputs, render_meta_prompt
    from ipo_vlm.scored import ScoredTemplate

    memory = [ScoredTemplate(t, a, l) for t, a, l in (
        ("a photo of a {}.", 0.61, 1.05), ("a blurry photo of a {}.", 0.66, 0.98), ("a low-resolution photo of the {}.", 0.70, 0.91))]
    inputs = MetaPromptInputs(domain="clothing item", n_candidates=5, memory=memory, descriptions=[], placeholder="<CLASS>",
                              dataset_name="demo", style="edit", max_words=16)
    return tuple((role, content) for role, content in render_meta_prompt(inputs))


def batch(model: str, concurrency: int, calls: int, round_: int) -> float:
    llm = load_openai(f"{model}?concurrency={concurrency}")
    session = LLMSession(llm)
    messages = step_messages()
    requests = [LLMRequest(messages=messages, temperature=1.1, top_p=0.95, max_tokens=400, seed=1000 * round_ + i,
                           sample_index=i, constraint=OutputConstraint(5, max_words=16)) for i in range(calls)]
    start = time.perf_counter()
    results = session.complete_many(requests, use_cache=False)
    wall = time.perf_counter() - start
    failed = [r for r in results if isinstance(r, Exception)]
    if failed:
        raise SystemExit(f"{len(failed)} call(s) failed: {failed[0]}")
    print(f"round {round_} concurrency {concurrency}: {wall:.1f} s for {calls} calls, "
          f"{session.tokens_out} completion tokens", file=sys.stderr, flush=True)
    return wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen")
    ap.add_argument("--calls", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    walls: dict[int, list[float]] = {1: [], args.calls: []}
    for r in range(args.rounds):
        order = (1, args.calls) if r % 2 == 0 else (args.calls, 1)
        for c in order:
            walls[c].append(batch(args.model, c, args.calls, r))
    seq, par = statistics.mean(walls[1]), statistics.mean(walls[args.calls])
    print(f"{args.calls} calls per step, {args.rounds} rounds: one at a time {seq:.1f} s, "
          f"all at once {par:.1f} s, ratio parallel/sequential {par / seq:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
