"""Runs: the run directory (the durable record), the typed result, selection, and
``optimize()`` — settings in, ``result.json`` out."""
