"""The stack's benchmark harness: `make bench` (or `uv run python -m benchmarks.run`)."""
