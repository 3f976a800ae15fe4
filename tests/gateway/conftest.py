"""Gateway test fixtures (the helpers are `support.gateway_harness`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from support.gateway_harness import FakeUpstream, fake_upstream


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    """A running scripted agent service."""
    async with fake_upstream() as fake:
        yield fake
