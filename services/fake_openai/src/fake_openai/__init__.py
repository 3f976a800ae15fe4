"""A scriptable fake OpenAI-compatible server."""
