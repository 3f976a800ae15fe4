"""The correctness evaluation: `make eval` (or `uv run python -m evals.run`). See docs/evals.md."""
