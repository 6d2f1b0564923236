"""The scoring engine every method calls: image features cached once per VLM (``features``),
exact template scores on them (``scoring``), base/novel/H on the test split (``evaluate``), and
``Task``, which ties a dataset's few-shot split to a VLM."""

from ipo_vlm.engine.task import Task

__all__ = ["Task"]
