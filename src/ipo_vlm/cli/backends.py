"""`ipo backends`: list the backend schemes of every kind; `--check-llm SPEC` makes one tiny call."""

from __future__ import annotations

import argparse

PING = "Reply with the single word: ok"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backends",
        help="list the available VLM, LLM and captioner backends; check an LLM",
        description="List backend schemes (spec strings are scheme:name). With --check-llm, run the "
        "backend's preflight and one tiny call, and print model, latency and tokens; for an "
        "OpenAI-compatible server also which response formats it accepts (one tiny call each).",
    )
    p.add_argument("--check-llm", metavar="SPEC", default=None, help="e.g. local, openai:gpt-4o-mini, llamacpp:/path/model.gguf")
    p.set_defaults(func=run)


def _list() -> None:
    from ipo_vlm.captioner import CAPTIONERS
    from ipo_vlm.llm import LLMS
    from ipo_vlm.vlm import VLMS

    for title, registry in (("vlm", VLMS), ("llm", LLMS), ("captioner", CAPTIONERS)):
        print(f"{title}:")
        schemes = registry.schemes()
        width = max((len(s) for s in schemes), default=0)
        for scheme, help_line in schemes.items():
            print(f"  {scheme:<{width}}  {help_line}")


def _check_llm(spec: str) -> None:
    from ipo_vlm.llm import LLMRequest, create_llm

    llm = create_llm(spec)
    check = getattr(llm, "check", None)
    if callable(check):
        check()
    resp = llm.complete(LLMRequest(messages=(("user", PING),), temperature=0.0, max_tokens=8, seed=0))
    print(f"model:   {resp.model}")
    print(f"latency: {resp.latency_s:.2f} s")
    print(f"tokens:  {resp.tokens_in} in, {resp.tokens_out} out")
    print(f"answer:  {resp.text.strip()[:80]!r}")
    probe = getattr(llm, "probe_formats", None)
    if callable(probe):
        _print_formats(probe())
    elif getattr(llm, "check_settings", None) is not None:
        print("output:  constrained in process by a GBNF grammar")


def _print_formats(results: list[tuple[str, str, str]]) -> None:
    """One line per response_format the backend tried, and the one a run will send first."""
    width = max(len(fmt) for fmt, _, _ in results) + 1
    for fmt, verdict, reason in results:
        print(f"response_format {fmt + ':':<{width}} {verdict}{f' ({reason})' if reason else ''}")
    usable = [fmt for fmt, verdict, _ in results if verdict == "accepted"]
    print(f"a run uses: {usable[0] if usable else 'none (no format was accepted)'}")


def run(args: argparse.Namespace) -> int:
    if args.check_llm:
        _check_llm(args.check_llm)
        return 0
    _list()
    return 0
