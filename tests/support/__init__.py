"""Shared test support: running real servers on loopback and checking the machine's services."""
