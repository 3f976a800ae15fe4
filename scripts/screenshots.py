"""Regenerate the README's screenshots of the chat page: light and dark, desktop and phone.

`make screenshots` runs this. It starts both tiers on free ports over a fresh copy of the demo
data (a temporary directory; your `var/` is untouched), signs in as a demo user in Debian's
Chromium (Playwright), asks a data question and a policy question, and writes
docs/img/chat-{light,dark}-{desktop,phone}.png. Needs /usr/bin/chromium (apt-get install chromium).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Literal

from playwright.async_api import Page, ViewportSize, async_playwright

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUT = ROOT / "docs" / "img"
CHROMIUM = Path("/usr/bin/chromium")
USER = "u-bob"
QUESTIONS = ["Top 5 technicians by revenue this year", "What is the overtime policy?"]
VIEWPORTS: dict[str, ViewportSize] = {
    "desktop": {"width": 1280, "height": 1000},
    "phone": {"width": 390, "height": 844},
}
Scheme = Literal["light", "dark"]
FORGET_CONVERSATIONS = """async () => {
  const headers = {Authorization: 'Bearer ' + sessionStorage.getItem('fsa.token')};
  const list = await (await fetch('/api/conversations', {headers})).json();
  for (const c of list.conversations) {
    await fetch('/api/conversations/' + c.id, {method: 'DELETE', headers});
  }
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{url}: the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"{url} was not ready within {timeout_s:.0f} s")


async def shoot(page: Page, path: Path, phone: bool) -> None:
    await page.goto(page.url.split("#")[0])
    await page.click(f"button.demo-user[data-user='{USER}']")
    await page.wait_for_selector("#app[data-connection='open']", state="attached")
    # each picture starts from an empty conversation list (the shots share one stack)
    await page.evaluate(FORGET_CONVERSATIONS)
    await page.reload()
    await page.wait_for_selector("#app[data-connection='open']", state="attached")
    for n, question in enumerate(QUESTIONS, start=1):
        await page.fill("#composer-input", question)
        await page.press("#composer-input", "Enter")
        await page.wait_for_function(
            "n => document.querySelectorAll('#messages li.assistant:not(.live)').length >= n", arg=n
        )
    await page.locator("#composer-input").blur()
    if not phone:
        # the data answer's chart and table, then the policy answer under it
        await page.locator("#messages .message.assistant").first.evaluate(
            "el => el.closest('.transcript').scrollTop = el.offsetTop - 140"
        )
    await page.screenshot(path=str(path), animations="disabled")


async def main_async(base_url: str, only: set[str], out: Path) -> list[Path]:
    written: list[Path] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless=new", "--no-sandbox", "--disable-gpu"]
        )
        try:
            for scheme in ("light", "dark"):
                for device, viewport in VIEWPORTS.items():
                    name = f"chat-{scheme}-{device}"
                    if only and name not in only:
                        continue
                    context = await browser.new_context(
                        viewport=viewport,
                        color_scheme=scheme,
                        device_scale_factor=2 if device == "phone" else 1,
                        is_mobile=device == "phone",
                        has_touch=device == "phone",
                    )
                    page = await context.new_page()
                    await page.goto(base_url + "/")
                    path = out / f"{name}.png"
                    await shoot(page, path, device == "phone")
                    await context.close()
                    written.append(path)
                    print(f"wrote {path}", flush=True)  # noqa: T201
        finally:
            await browser.close()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=[], help="e.g. chat-dark-phone")
    parser.add_argument("--out", type=Path, default=OUT, help=f"directory (default {OUT})")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp:
        agent_port, gateway_port = free_port(), free_port()
        env = {
            **os.environ,
            "AGENT_DATA_DIR": str(Path(tmp) / "agent"),
            "AGENT_PORT": str(agent_port),
            "AGENT_OFFLINE_PACE_MS": "0",
            "GATEWAY_ENV": "development",  # the page's demo sign-in, on loopback
            "GATEWAY_PORT": str(gateway_port),
            "GATEWAY_AGENT_URL": f"http://127.0.0.1:{agent_port}",
        }
        procs: list[subprocess.Popen[bytes]] = []
        try:
            quiet = subprocess.DEVNULL
            agent = subprocess.Popen(
                [str(BIN / "agent-service"), "serve"], env=env, stdout=quiet, stderr=quiet
            )
            procs.append(agent)
            wait_ready(f"http://127.0.0.1:{agent_port}/ready", agent)
            gateway = subprocess.Popen(
                [str(BIN / "gateway"), "serve"], env=env, stdout=quiet, stderr=quiet
            )
            procs.append(gateway)
            wait_ready(f"http://127.0.0.1:{gateway_port}/ready", gateway)
            asyncio.run(main_async(f"http://127.0.0.1:{gateway_port}", set(args.only), args.out))
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
