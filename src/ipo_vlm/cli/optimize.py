"""`ipo optimize`: run (or resume) the IPO loop into a run directory.

Exit codes: 0 done; 2 a mistake in the settings, data or backends (one line on stderr);
3 stopped by the LLM token budget (--max-llm-tokens; --resume with a larger one continues)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from ipo_vlm.cli.common import add_data_args, add_vlm_arg, vlm_options
from ipo_vlm.config import CONTROLS, PRESETS
from ipo_vlm.errors import ConfigError
from ipo_vlm.scored import SELECTION_KEYS

# flag name -> (config section, field)
_FLAG_FIELDS = {
    "dataset": ("data", "dataset"),
    "data_root": ("data", "data_root"),
    "shots": ("data", "shots"),
    "seed": ("data", "seed"),
    "llm": ("llm", "spec"),
    "captioner": ("captioner", "spec"),
    "steps": ("optimize", "steps"),
    "candidates": ("optimize", "candidates"),
    "memory_size": ("optimize", "memory_size"),
    "select_on": ("optimize", "select_on"),
    "max_llm_tokens": ("optimize", "max_llm_tokens"),
    "ensemble": ("optimize", "ensemble"),
    "control": ("optimize", "control"),
    "track": ("tracking", "spec"),
}


def add_set_arg(p: argparse.ArgumentParser) -> None:
    """``--set SECTION.KEY=VALUE``: any setting, in the vocabulary grid files and ``bench/`` share."""
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="settings",
                   help="any setting, e.g. --set optimize.meta_prompt=edit --set llm.temperature=0.7 (value read as "
                        "YAML; repeatable; the flags above are shorthands for the common ones and win over --set)")


def add_run_args(p: argparse.ArgumentParser) -> None:
    """Flags that ``optimize`` and ``demo`` share."""
    add_set_arg(p)
    p.add_argument("--steps", type=int, default=None, help="optimization steps (LLM calls, plus retries)")
    p.add_argument("--seed", type=int, default=None, help="seed of the few-shot split and the LLM requests")
    p.add_argument("--shots", type=int, default=None, help="training images per base class")
    p.add_argument("--select-on", choices=SELECTION_KEYS, default=None,
                   help="pick the template by training accuracy, few-shot validation accuracy, both pooled (trainval), or training loss")
    p.add_argument("--ensemble", type=int, default=None, metavar="K", help="also evaluate the ensemble of the top-K templates (0: none)")
    p.add_argument("--control", choices=CONTROLS, default=None,
                   help="random: also score a random-search pool of the same budget on the same split (no LLM tokens)")
    p.add_argument("--max-llm-tokens", type=int, default=None, help="stop cleanly (resumable) once this many LLM tokens are spent")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the LLM response cache")
    p.add_argument("--resume", action="store_true", help="continue the run in --out (after a kill, a budget stop, or with more --steps)")
    p.add_argument("--track", default=None, metavar="TRACKER",
                   help="also report the run to a tracker: mlflow ($MLFLOW_TRACKING_URI, $MLFLOW_EXPERIMENT_NAME; default ./mlruns) or none")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("optimize", help="find a prompt template with an LLM as the optimizer", description=__doc__)
    add_data_args(p)
    add_vlm_arg(p)
    p.add_argument("--method", default=None, help="how templates are found: ipo (the LLM, default), random, handcrafted, ensemble80")
    p.add_argument("--llm", default=None, help=f"LLM spec: local, llamacpp:/path.gguf, openai:gpt-4o-mini, scripted:file.json (default: {_preset_defaults('llm')})")
    p.add_argument("--captioner", default=None, help=f"captioner spec: interrogate, openai:<model>, hf:<path>, none (default: {_preset_defaults('captioner')})")
    p.add_argument("--candidates", type=int, default=None, help="templates asked for per step")
    p.add_argument("--memory-size", type=int, default=None, help="templates kept in the episodic memory")
    p.add_argument("--out", default=None, help="run directory (default: runs/<dataset>-<time>)")
    p.add_argument("--preset", default=None,
                   help=f"starting settings: paper (default), {', '.join(n for n in PRESETS if n != 'paper')}")
    p.add_argument("--config", default=None, metavar="FILE", help="settings file (YAML or JSON, RunConfig layout)")
    p.add_argument("--dry-run", action="store_true",
                   help="check the dataset and every backend (exit 2 on a problem), then print the LLM calls and tokens a run would need, and the images and prompts it would encode with their time measured here")
    add_run_args(p)
    p.set_defaults(func=run)


def _preset_defaults(section: str) -> str:
    """"the preset's: X (paper), Y (demo)" for --help, read from the presets themselves."""
    return "the preset's: " + ", ".join(f"{getattr(c, section).spec} ({name})" for name, c in PRESETS.items())


def resolve_config(args: argparse.Namespace, default_preset: str = "paper") -> Any:
    """The run's settings from the command line: preset (or, on ``--resume``, the run's own
    config) <- ``--config`` file <- ``--set`` <- flags (see :func:`ipo_vlm.runs.optimize.resolve_run_config`)."""
    from ipo_vlm.overrides import settings_from
    from ipo_vlm.runs.optimize import resolve_run_config

    overrides: dict[str, Any] = settings_from(getattr(args, "settings", None))
    for flag, (section, name) in _FLAG_FIELDS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides.setdefault(section, {})[name] = value
    if getattr(args, "vlm", None):
        overrides["vlm"] = args.vlm
    if getattr(args, "method", None):
        overrides["method"] = args.method
    if vlm_options(args):
        overrides["vlm_options"] = {**overrides.get("vlm_options", {}), **vlm_options(args)}
    if getattr(args, "no_cache", False):
        overrides.setdefault("llm", {})["use_cache"] = False
    resume, config_file = getattr(args, "resume", False), getattr(args, "config", None)
    preset_name = getattr(args, "preset", None)
    continues_run = resume and args.out and not preset_name and not config_file
    if not continues_run and not preset_name:
        preset_name = default_preset
    return resolve_run_config(args.out, resume, preset_name, config_file, overrides)


def default_out(prefix: str) -> Path:
    return Path("runs") / f"{prefix}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def print_dry_run(config: Any) -> None:
    from ipo_vlm.methods.base import create_method, describe, dry_run

    method = create_method(config.method)
    plan = dry_run(method, config)
    if plan is None:
        print(f"{describe(method, config)}; no LLM")
        print("calls: 0")
        print("tokens: 0")
        return
    print(f"LLM: {config.llm.spec}; {config.optimize.steps} steps x {config.optimize.candidates} candidates")
    print(f"calls: {plan.calls_min} (up to {plan.calls_max} with retries)")
    print(f"first prompt: ~{plan.first_prompt_tokens} tokens")
    print(f"tokens: ~{plan.tokens_in} in + ~{plan.tokens_out_typical} out = ~{plan.tokens_typical} (at most {plan.tokens_out_max} out)")


def run_with_progress(config: Any, out: Path, resume: bool) -> Any:
    """``optimize()`` with progress on stderr: stage lines, and per step a bar (on a terminal)
    or plain lines (in a log file); inside a step, the call in flight."""
    from ipo_vlm.runs.optimize import optimize

    shown = StepProgress(sys.stderr)
    try:
        return optimize(config, out, resume=resume, progress=shown, stage=lambda msg: print(f"ipo: {msg}", file=sys.stderr))
    finally:
        shown.close()


class StepProgress:
    """Receives ``LoopProgress``: a tqdm bar over steps whose text says what the current step
    is doing, or, when ``stream`` is not a terminal, one plain line per event (no ``\\r``)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.bar: Any = None

    def __call__(self, p: Any) -> None:
        cached = getattr(p, "cached", 0)
        status = f"best train {100 * p.best_acc:.1f}% | tokens {p.tokens_in + p.tokens_out}"
        if cached:
            status += f" ({cached} answer{'s' if cached > 1 else ''} from the cache)"
        if not self.tty:
            what = p.doing or ("scored the seed templates" if p.step == 0 else "done")
            print(f"ipo: step {p.step}/{p.steps}: {what} | {status}", file=self.stream, flush=True)
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=p.steps, initial=max(p.step - 1, 0), desc="steps", unit="step", file=self.stream, dynamic_ncols=True)
        if p.doing:
            self.bar.set_postfix_str(f"step {p.step}: {p.doing} | {status}")
            return
        self.bar.set_postfix_str(status, refresh=p.step == 0)
        if p.step > 0:
            self.bar.update(1)
        if p.step >= p.steps:
            self.close()  # before the evaluation's stage line

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _row(name: str, r: dict[str, Any], template: str) -> str:
    return f"{name:18}{100 * r['base_acc']:>7.1f}%{100 * r['novel_acc']:>7.1f}%{100 * r['hm']:>7.1f}%  {template}"


def result_rows(result: dict[str, Any]) -> list[str]:
    """The table of a finished run: baselines, the seeds alone, the control from the same seeds,
    then the method (and their ensembles)."""
    from ipo_vlm.config import DEFAULT_METHOD
    from ipo_vlm.methods.base import traits

    method = traits(result.get("method") or DEFAULT_METHOD)
    lines = [f"{'':18}{'base':>8}{'novel':>8}{'H':>8}  template"]
    if result["handcrafted"]["template"] == result["baseline"]["template"]:  # one template, one row
        lines.append(_row("baseline", result["baseline"], result["baseline"]["template"] + "  (also the hand-crafted one)"))
    else:
        lines += [_row("baseline", result["baseline"], result["baseline"]["template"]),
                  _row("hand-crafted", result["handcrafted"], result["handcrafted"]["template"])]
    seeds = result.get("seeds_alone")
    if seeds:
        lines.append(_row("seeds alone", seeds, seeds["template"]))
    control = result.get("control")
    if control:
        lines.append(_row(f"{control.get('method')} control", control, control["best_template"]))
        lines += [_row(f"  top-{e['k']} ensemble", e, "") for e in control.get("ensembles") or []]
    headline = method.row_label
    ensembles = result.get("ensembles") or []
    if result.get("headline") == "ensemble" and ensembles:
        lines.append(_row(headline, result, f"(ensemble of {ensembles[0]['k']} templates)"))
        ensembles = ensembles[1:]
    else:
        lines.append(_row(headline, result, result["best_template"]))
    lines += [_row(f"  top-{e['k']} ensemble", e, "") for e in ensembles]
    return lines


def _seed_words(template: str, result: dict[str, Any]) -> str:
    if template in (result["baseline"]["template"], result["handcrafted"]["template"]):
        return "a baseline seed"
    return "a seed made from the image descriptions"


def origin_sentences(result: dict[str, Any]) -> list[str]:
    """Where the selected template (and the control's) came from, in plain words."""
    from ipo_vlm.config import DEFAULT_METHOD
    from ipo_vlm.methods.base import traits

    method = traits(result.get("method") or DEFAULT_METHOD)
    if method.fixed:
        return []
    rule, who = result["select_on"], method.proposer
    if result.get("best_source") == "seed":
        out = [f"The selected template is {_seed_words(result['best_template'], result)}, scored before any proposal: "
               f"none of the templates {who} proposed beat it by the selection rule ({rule})."]
    else:
        out = [f"The selected template was proposed by {who} at step {result.get('best_step')}; "
               f"it beat every seed by the selection rule ({rule})."]
    control = result.get("control")
    if control:
        if control.get("best_source", "random") == "seed":
            same = " (the same one)" if control["best_template"] == result["best_template"] else ""
            out.append(f"The random control kept {_seed_words(control['best_template'], result)}{same}.")
        else:
            out.append(f"The random control selected a template it drew at random (step {control.get('best_step')}).")
    return out


def print_result(result: Any, out: Path) -> None:
    """The table of the run (percentages), where its template came from, and where it lives."""
    from ipo_vlm.config import DEFAULT_METHOD

    result = result.to_dict()
    method = result.get("method") or DEFAULT_METHOD
    print()
    print("\n".join(result_rows(result)))
    control, seeds = result.get("control"), result.get("seeds_alone")
    diffs = []
    if control:
        diffs.append(f"{method} - {control.get('method')} control: {100 * control['diff_hm']:+.2f}")
    if seeds:
        diffs.append(f"{method} - seeds alone: {100 * (result['hm'] - seeds['hm']):+.2f}")
    if diffs:
        print(f"\n{'; '.join(diffs)} H points on this split (one split: compare over seeds before concluding)")
    sentences = origin_sentences(result)
    if sentences:
        print(("" if diffs else "\n") + " ".join(sentences))
    rate = result.get("valid_rate")
    rate_text = f"{100 * rate:.0f}% of {result['candidates_returned']}" if rate is not None else "n/a"
    print(
        f"\nsteps {result['steps_done']}/{result['steps']} | valid new candidates {rate_text} | "
        f"LLM tokens {result['llm_tokens_in']} in, {result['llm_tokens_out']} out | {result['minutes']:.1f} min"
    )
    if result.get("empty_steps"):
        print(f"warning: in {result['empty_steps']} step(s) the LLM gave no usable template (rejections: "
              f"{', '.join(f'{r} {n}' for r, n in result.get('rejections', {}).items()) or 'none parsed'})")
    if not result.get("complete"):
        print(f"stopped early ({result.get('stopped')}); continue with: ipo optimize --out {out} --resume [--max-llm-tokens N]")
    print(f"run directory: {out}")


#: the exit code of a run stopped by its LLM token budget (resume it with a larger --max-llm-tokens)
EXIT_BUDGET = 3


def exit_code(result: Any) -> int:
    return EXIT_BUDGET if result.stopped == "budget" else 0


def preflight(config: Any) -> Any:
    """What ``--dry-run`` checks before it estimates: the output and cache paths, the method,
    the dataset and every backend the run would create (a missing API key, model or file is an
    error here, not after the features)."""
    from ipo_vlm.io.paths import cache_dir
    from ipo_vlm.methods import create_method
    from ipo_vlm.runs.optimize import create_backends

    cache_dir()
    return create_backends(config, uses_llm=create_method(config.method).uses_llm)


def print_compute(config: Any, backends: Any) -> None:
    """The VLM's part of the run (images and prompts to encode), timed on a sample here."""
    from ipo_vlm.engine.preflight import estimate_compute
    from ipo_vlm.methods.base import traits

    estimate = estimate_compute(config, backends.dataset, backends.vlm, searches=not traits(config.method).fixed)
    print(f"VLM: {config.vlm}")
    print("\n".join(estimate.lines()))


def run(args: argparse.Namespace) -> int:
    config = resolve_config(args)
    if args.dry_run:
        backends = preflight(config)
        print_dry_run(config)
        print_compute(config, backends)
        return 0
    if args.resume and not args.out:
        raise ConfigError("--resume needs --out RUNDIR (the run to continue)")
    out = Path(args.out) if args.out else default_out(Path(config.data.dataset).name or "run")
    result = run_with_progress(config, out, args.resume)
    print_result(result, out)
    return exit_code(result)
