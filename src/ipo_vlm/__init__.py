"""ipo-vlm: interpretable prompt optimization for CLIP-style vision-language models.

An LLM proposes human-readable prompt templates, a frozen VLM scores them on cached features
of few-shot base-class images, and an episodic memory of the best templates steers the next
proposals. Importing this package is cheap: torch, transformers, openai and llama_cpp are only
imported by the backends that need them.
"""

__version__ = "0.1.0"

from ipo_vlm.errors import BackendError, BudgetExceeded, ConfigError, DataError, IpoError

__all__ = ["BackendError", "BudgetExceeded", "ConfigError", "DataError", "IpoError", "__version__"]
