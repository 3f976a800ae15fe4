"""The correctness evaluation: `make eval` (or `.venv/bin/python -m evals.run`). See docs/evals.md."""
