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
