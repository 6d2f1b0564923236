"""Run directories: who may write one, and (later) their files, results and selection."""
