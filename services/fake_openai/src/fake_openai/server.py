"""Running the fake server inside the caller's event loop, on a free loopback port (for tests)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette

from fake_openai.app import create_app, fake_state
from fake_openai.record import FakeState
from fake_openai.script import Script
from fake_openai.settings import FakeSettings


@dataclass(frozen=True, slots=True)
class FakeServer:
    """A running fake server: `base_url` ends in `/v1`, ready for `ChatOpenAI(base_url=...)`."""

    app: Starlette
    state: FakeState
    host: str
    port: int

    @property
    def origin(self) -> str:
        """`http://host:port`, for the `/_fake/*` endpoints."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL, `http://host:port/v1`."""
        return f"{self.origin}/v1"


@contextlib.asynccontextmanager
async def running_fake_openai(
    script: Script | None = None,
    *,
    settings: FakeSettings | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    shutdown_timeout: int = 5,
) -> AsyncIterator[FakeServer]:
    """Serve `create_app(script, settings=settings)` with uvicorn in this loop until the block ends.

    Hung responses are released at exit, so shutdown never waits on them.
    """
    app = create_app(script, settings=settings)
    state = fake_state(app)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=shutdown_timeout,
    )
    server = uvicorn.Server(config)
    # Bind here so a taken port is a plain OSError, not uvicorn's sys.exit inside a task.
    sock = socket.create_server((host, port), backlog=config.backlog)
    bound = int(sock.getsockname()[1])
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError(f"the fake OpenAI server did not start on {host}:{bound}")
            await asyncio.sleep(0.005)
        yield FakeServer(app=app, state=state, host=host, port=bound)
    finally:
        state.closing.set()
        server.should_exit = True
        await task
