"""The private agent service."""
