"""The correctness evaluation: `make eval`; see docs/evals.md."""
