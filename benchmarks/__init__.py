"""The stack's benchmark harness: `make bench` (or `.venv/bin/python -m benchmarks.run`)."""
