"""The docs name every gateway setting, and the WebSocket close codes the code uses."""

from __future__ import annotations

from pathlib import Path

from gateway.settings import GatewaySettings
from gateway.ws.session import CLOSE_FORBIDDEN, CLOSE_POLICY, CLOSE_UNAUTHENTICATED

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_gateway_setting_is_documented() -> None:
    """Each setting has a row in docs/configuration.md's Gateway section, the one settings page."""
    page = (DOCS / "configuration.md").read_text()
    doc = page.split("\n## Gateway\n", 1)[1].split("\n## ", 1)[0]
    missing = [
        f"GATEWAY_{name.upper()}"
        for name in GatewaySettings.model_fields
        if f"| `GATEWAY_{name.upper()}` |" not in doc
    ]
    assert not missing, f"docs/configuration.md's Gateway section lacks {missing}"


def test_close_codes_are_documented() -> None:
    doc = (DOCS / "public-api.md").read_text()
    for code in (1000, 1001, 1009, 1011, CLOSE_POLICY, CLOSE_UNAUTHENTICATED, CLOSE_FORBIDDEN):
        assert f"| {code} |" in doc
