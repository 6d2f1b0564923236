"""Entry point of the ``ipo`` console script."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib import import_module
from typing import NoReturn

from ipo_vlm import __version__
from ipo_vlm.errors import IpoError

# Each module defines ``register(subparsers)`` and sets ``func`` on its parser.
SUBCOMMANDS = (
    "optimize", "evaluate", "demo", "history", "export", "classify", "explain", "report", "benchmark", "data", "features", "backends",
)


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's error form: one line and exit 2, the usage left to ``--help``
    (subcommand parsers are of the same class)."""

    def error(self, message: str) -> NoReturn:
        print(f"ipo: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ipo",
        description="Find human-readable prompt templates for CLIP-style models with an LLM as the optimizer.",
    )
    parser.add_argument("--version", action="version", version=f"ipo-vlm {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        import_module(f"ipo_vlm.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    if sys.stdout is None:
        # started with stdout closed (``ipo ... >&-``): what would be printed is dropped
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.verbose == 0:
        # Model loading draws its own progress bars on stderr; ours are enough.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        for handler in logging.getLogger().handlers:
            handler.addFilter(_short_records)
    try:
        code = int(args.func(args) or 0)
        _flush_stdout()
        return code
    except IpoError as e:
        return _fail(str(e).strip() or type(e).__name__)
    except BrokenPipeError:
        return _quiet_exit()
    except OSError as e:
        _settle_stdout()
        return _fail(os_error_line(e))
    except KeyboardInterrupt:
        resume = ""
        if args.command in ("optimize", "demo"):
            resume = f"; continue it with: ipo {args.command} --out {getattr(args, 'out', None) or 'RUNDIR'} --resume"
        print(f"ipo: interrupted{resume}", file=sys.stderr)
        return 130


#: the longest error line printed; a message that quotes a user's input is cut in the middle
MAX_LINE = 300


def shorten(text: str, limit: int = MAX_LINE) -> str:
    """The first line of ``text``, at most ``limit`` characters (the middle elided)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    if len(line) <= limit:
        return line
    keep = (limit - 5) // 2
    return f"{line[:keep]} ... {line[-keep:]}"


def _short_records(record: logging.LogRecord) -> bool:
    """A log line that would quote kilobytes of input (a long list of classes, a whole
    answer) is cut to one line of :data:`MAX_LINE` characters; ``-v`` shows it whole."""
    message = record.getMessage()
    if len(message) > MAX_LINE or "\n" in message.strip():
        record.msg, record.args = shorten(message), ()
    return True


def _fail(message: str) -> int:
    message = message.removeprefix("ipo: ").removeprefix("error: ")
    try:
        print(f"ipo: error: {shorten(message)}", file=sys.stderr)
    except (OSError, ValueError):
        pass  # stderr itself is gone: the exit status is all that is left to say it
    return 2


def os_error_line(e: OSError) -> str:
    """One line for an OS error the user can fix: which file, why, and what to do."""
    import errno

    reason = e.strerror or str(e) or type(e).__name__
    where = f"cannot use {e.filename}: " if getattr(e, "filename", None) else "cannot read or write: "
    hint = {errno.ENOSPC: "free some space (or point IPO_CACHE_DIR / --out elsewhere)",
            errno.EDQUOT: "free some space (or point IPO_CACHE_DIR / --out elsewhere)",
            errno.EACCES: "check the permissions, or choose another --out / IPO_CACHE_DIR",
            errno.EPERM: "check the permissions, or choose another --out / IPO_CACHE_DIR",
            errno.EROFS: "the file system is read-only; choose another --out / IPO_CACHE_DIR",
            errno.ENAMETOOLONG: "is an argument mistyped?"}.get(e.errno or 0)
    return f"{where}{reason}" + (f"; {hint}" if hint else "")


def _flush_stdout() -> None:
    """Output still buffered is written here, inside the error boundary, not at interpreter exit
    (where a full disk or a closed pipe would print a traceback-like message)."""
    if sys.stdout is not None:
        sys.stdout.flush()


def _settle_stdout() -> None:
    """After an OS error stdout may hold bytes it can never write (a full disk): drop them, so
    that the interpreter's exit does not fail a second time."""
    try:
        _flush_stdout()
    except (OSError, ValueError):
        _quiet_exit()


def _quiet_exit() -> int:
    """The reader of stdout went away (``ipo ... | head -1``): stop without a word, as Unix
    tools do, and keep Python from complaining about the unflushable stream at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, AttributeError, ValueError):
        pass
    return 141  # 128 + SIGPIPE, the status of a producer whose reader closed the pipe

if __name__ == "__main__":
    sys.exit(main())
