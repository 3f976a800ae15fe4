"""The handle e2e tests get for both real tiers running on loopback."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Stack:
    agent_url: str
    gateway: Any
    """`support.gateway_harness.Gateway`: url, ws_url, token(user, company), auth(user, company)."""
    data_dir: Path
