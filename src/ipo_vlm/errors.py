"""The error tree. Anything a user can cause is an ``IpoError``; the CLI prints it as one line
and exits with status 2. Anything else is a bug and keeps its traceback."""


class IpoError(Exception):
    """Base class of every error a user can cause or fix."""


class ConfigError(IpoError):
    """An invalid setting, flag, preset or spec string."""


class DataError(IpoError):
    """A dataset, split file or image that cannot be used."""


class BackendError(IpoError):
    """A model backend that cannot be loaded or reached (VLM, LLM, captioner)."""


class LLMError(BackendError):
    """An LLM call failed after its retries."""


class BudgetExceeded(IpoError):
    """A configured budget (LLM tokens, ...) is spent; the run stops cleanly and can resume."""


def squeeze(text: object, limit: int | None = None) -> str:
    """``text`` on one line: whitespace runs (newlines included) become one space; cut to
    ``limit`` characters with an ellipsis when a limit is given."""
    flat = " ".join(str(text).split())
    if limit is None or len(flat) <= limit:
        return flat
    return flat[: max(0, limit - 1)].rstrip() + "…"


def one_line(error: BaseException, limit: int | None = None) -> str:
    """An error as one line for a table, a log or a status file: its message's first line,
    after the error's class name unless it is one of ours (their messages are written for
    users); the class name alone when there is no message."""
    lines = str(error).strip().splitlines()
    text = squeeze(lines[0], limit) if lines else ""
    if isinstance(error, IpoError):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
