"""The public gateway."""
