"""Browser tests of the chat page: both tiers on 127.0.0.1, Debian's Chromium driven by Playwright.

One stack serves the whole session (the agent service on seeded demo data with a paced offline
provider, a gateway, and a second gateway with a one-request-per-user limit); each test gets a fresh
browser context (empty storage) through `open_chat`. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    ViewportSize,
    async_playwright,
)
from support.servers import serve_asgi

from agent_service.app import create_app as create_agent_app
from agent_service.deps import seed_demo
from agent_service.settings import AgentSettings
from agent_service.storage.sqlite.documents import SqliteDocumentStore
from gateway.app import create_app as create_gateway_app
from gateway.auth import mint_dev_token
from gateway.settings import GatewaySettings

CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMIUM_ARGS: Final = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO: Final = Path(__file__).resolve().parents[2]
SCREENSHOTS: Final = REPO / "artifacts" / "screenshots"
PACE_MS: Final = 20
"""Offline provider delay between answer tokens: slow enough to watch an answer grow."""
XSS: Final = '<img src=x onerror="window.__xss=1">'
XSS_DOC_TITLE: Final = f"Uniform policy {XSS}"
XSS_DOC_TEXT: Final = (
    f"# Uniform policy {XSS}\n\n"
    f"Uniforms are provided by the company. <script>window.__xss=2</script> {XSS} "
    "Technicians wear the company uniform shirt on every job "
    "and replace a worn uniform once a year."
)
DEMO_COMPANIES: Final = {
    "u-alice": "Acme Heating & Cooling",
    "u-dave": "Acme Heating & Cooling",
    "u-bob": "Bluepeak Plumbing",
    "u-carol": "Citywide Electric",
}


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed with apt when missing (as root); fails, never skips."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0:
        pytest.fail(f"{CHROMIUM} is missing; run `apt-get install -y chromium` as root")
    try:
        subprocess.run(["apt-get", "update"], check=True, capture_output=True, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "chromium"],
            check=True,
            capture_output=True,
            timeout=900,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.fail(f"could not install chromium with apt-get ({exc}); the browser tests need it")
    if not CHROMIUM.exists():
        pytest.fail(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return CHROMIUM


@dataclass
class Stack:
    """The running tiers: the agent service and two gateways (normal, and rate-limited)."""

    agent_url: str
    gateway_url: str
    limited_url: str
    settings: GatewaySettings = field(repr=False)

    def token(self, user_id: str, company_id: str) -> str:
        """A development token, as `/auth/dev-token` mints it."""
        return mint_dev_token(self.settings.jwt_config(), user_id=user_id, company_id=company_id)


async def start_gateway(settings: GatewaySettings, port: int = 0) -> tuple[web.AppRunner, str]:
    """The gateway served as the CLI serves it (handler cancellation on), on 127.0.0.1."""
    runner = web.AppRunner(
        create_gateway_app(settings), handler_cancellation=True, shutdown_timeout=2.0
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def gateway_settings(agent_url: str, **overrides: Any) -> GatewaySettings:
    """Development settings toward `agent_url` with short write deadlines for tests."""
    values: dict[str, Any] = {"env": "development", "write_timeout_s": 2.0, **overrides}
    return GatewaySettings(agent_url=agent_url, **values)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Seeded demo data (plus a document carrying an XSS payload for acme-hvac) and both tiers."""
    data_dir = tmp_path_factory.mktemp("browser-agent")
    settings = AgentSettings(
        data_dir=data_dir, env="test", seed_on_start=False, offline_pace_ms=PACE_MS
    )
    seed_demo(settings, force=True)
    SqliteDocumentStore(settings.documents_dir).ingest(
        "acme-hvac", "uniforms", XSS_DOC_TITLE, XSS_DOC_TEXT
    )
    async with serve_asgi(create_agent_app(settings)) as agent_url:
        gw_settings = gateway_settings(agent_url)
        main_runner, main_url = await start_gateway(gw_settings)
        limited = gateway_settings(agent_url, limit_user_requests=1, limit_user_window_s=60)
        limited_runner, limited_url = await start_gateway(limited)
        try:
            yield Stack(agent_url, main_url, limited_url, gw_settings)
        finally:
            await limited_runner.cleanup()
            await main_runner.cleanup()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    """One headless Chromium for the session."""
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


class ChatPage:
    """A tab on the chat page, with the steps a user takes and what they see."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    async def open(self) -> None:
        """Load the page (the sign-in screen, or the app when the tab is signed in)."""
        await self.page.goto(self.base_url + "/")

    async def sign_in(self, user_id: str) -> None:
        """Pick a demo user on the sign-in screen and wait for the live connection."""
        await self.page.click(f"button.demo-user[data-user='{user_id}']")
        await self.wait_connected()

    async def wait_connected(self) -> None:
        await self.page.wait_for_selector("#app[data-connection='open']", state="attached")

    async def switch_user(self, user_id: str, company_id: str) -> None:
        """Switch user (and company) with the header's picker."""
        await self.page.select_option("#user-select", f"{user_id}|{company_id}")
        await self.page.wait_for_selector(
            f"#identity-company:text-is('{DEMO_COMPANIES[user_id]}')", state="attached"
        )
        await self.wait_connected()

    async def type_question(self, text: str) -> None:
        await self.page.fill("#composer-input", text)

    async def ask(self, text: str) -> None:
        """Type a question and press Enter (the turn starts at once)."""
        asked = self.page.locator("#messages .message.user")
        before = await asked.count()
        await self.type_question(text)
        await self.page.press("#composer-input", "Enter")
        # The turn exists (it may already be over: a refusal comes back at once).
        await asked.nth(before).wait_for(state="attached")

    async def wait_idle(self) -> None:
        """Until the running turn has ended (complete, stopped or failed)."""
        await self.page.wait_for_selector("#app[data-running='false']", state="attached")

    async def ask_and_wait(self, text: str) -> str:
        """Ask, wait for the end of the turn, and return the answer shown."""
        await self.ask(text)
        await self.wait_idle()
        return await self.answer_text()

    @property
    def last_turn(self) -> Locator:
        return self.page.locator("#messages > li.assistant").last

    async def answer_text(self) -> str:
        """The text of the last answer ('' while none)."""
        return str(
            await self.page.evaluate(
                "() => { const a = [...document.querySelectorAll('#messages .answer')].pop();"
                " return a ? a.textContent : ''; }"
            )
        )

    async def turn_status(self) -> str:
        """The status line of the running turn ('' when none is shown)."""
        return str(
            await self.page.evaluate(
                "() => { const s = document.querySelector('#messages .live .turn-status');"
                " return s && !s.hidden ? s.textContent : ''; }"
            )
        )

    async def running(self) -> bool:
        return await self.page.get_attribute("#app", "data-running") == "true"

    async def signed_in_user(self) -> str:
        """The user the header shows: the picker's choice, or the name in the pill."""
        if await self.page.is_visible("#switcher"):
            return str(
                await self.page.evaluate(
                    "() => { const s = document.querySelector('#user-select');"
                    " return s.options[s.selectedIndex].text; }"
                )
            )
        return await self.page.inner_text("#identity-user")

    async def conversation_titles(self) -> list[str]:
        return await self.page.locator("#conversation-list .conversation-title").all_inner_texts()

    async def screenshot(self, name: str) -> Path:
        """Save a screenshot as a test artefact (the README's come from `make screenshots`)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        await self.page.screenshot(path=str(path), animations="disabled")
        return path

    def assert_clean(self) -> None:
        """No uncaught script errors, CSP violations or Trusted Types refusals happened."""
        assert self.page_errors == []
        violations = [
            m for m in self.console_errors if "Content Security Policy" in m or "Trusted" in m
        ]
        assert violations == []


OpenChat = Callable[..., Awaitable[ChatPage]]


@pytest_asyncio.fixture(loop_scope="session")
async def open_chat(browser: Browser, stack: Stack) -> AsyncIterator[OpenChat]:
    """Open the chat page in a fresh browser context: `await open_chat(base_url=…, viewport=…,
    color_scheme=…)`."""
    contexts: list[BrowserContext] = []
    pages: list[ChatPage] = []

    async def open_page(
        base_url: str | None = None,
        viewport: ViewportSize | None = None,
        color_scheme: Literal["light", "dark"] = "light",
    ) -> ChatPage:
        context = await browser.new_context(
            viewport=viewport or {"width": 1280, "height": 800}, color_scheme=color_scheme
        )
        contexts.append(context)
        chat = ChatPage(await context.new_page(), base_url or stack.gateway_url)
        pages.append(chat)
        await chat.open()
        return chat

    try:
        yield open_page
    finally:
        for context in contexts:
            await context.close()
    for chat in pages:
        chat.assert_clean()


class OwnGateway:
    """A gateway a test may stop and start again on the same port (a lost connection)."""

    def __init__(self, agent_url: str, **overrides: Any) -> None:
        self.settings = gateway_settings(agent_url, **overrides)
        self.runner: web.AppRunner | None = None
        self.url = ""
        self.port = 0

    async def start(self) -> None:
        self.runner, self.url = await start_gateway(self.settings, self.port)
        self.port = int(self.url.rsplit(":", 1)[1])

    async def stop(self) -> None:
        """Shut down as on SIGTERM: running turns end with SHUTTING_DOWN, sockets close 1001."""
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest_asyncio.fixture(loop_scope="session")
async def own_gateway(stack: Stack) -> AsyncIterator[OwnGateway]:
    """A started gateway of the test's own, in front of the session's agent service."""
    gateway = OwnGateway(stack.agent_url)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def gateway_without_dev_auth(stack: Stack) -> AsyncIterator[OwnGateway]:
    """A gateway with the demo-user endpoints off, as in production (tokens come from elsewhere)."""
    gateway = OwnGateway(stack.agent_url, dev_auth=False)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()
