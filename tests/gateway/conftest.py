"""Gateway test fixtures; makes `gw_helpers` (this directory's helper module) importable."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

# tests/ is on the path, but tests/gateway would shadow the `gateway` package as a namespace;
# the helpers are imported by their own name instead.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gw_helpers import FakeUpstream, fake_upstream


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    """A running scripted agent service."""
    async with fake_upstream() as fake:
        yield fake
