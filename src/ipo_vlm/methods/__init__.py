"""Methods that fill a run with scored templates: ``ipo`` (the LLM optimizer) and its siblings,
behind one small protocol (:mod:`ipo_vlm.methods.base`)."""

from ipo_vlm.methods.base import METHODS, Method, MethodContext, MethodOutcome, StepRecord, create_method

__all__ = ["METHODS", "Method", "MethodContext", "MethodOutcome", "StepRecord", "create_method"]
