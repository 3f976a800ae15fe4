"""`make screenshots` works: the script starts its own stack and writes the README's images."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshots.py"


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_the_screenshot_script_writes_a_phone_screenshot(chromium: Path, tmp_path: Path) -> None:
    del chromium  # installed when missing
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--only", "chat-dark-phone", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert png_size(tmp_path / "chat-dark-phone.png") == (780, 1688)  # 390×844 at 2×
    assert [p.name for p in tmp_path.iterdir()] == ["chat-dark-phone.png"]
