"""The internal API contract shared by both tiers and by other callers."""
