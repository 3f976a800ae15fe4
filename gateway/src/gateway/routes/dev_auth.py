"""Development-only demo users and the endpoint that mints their tokens (never routed elsewhere)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Final

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from gateway.app_state import SETTINGS
from gateway.auth import mint_dev_token
from gateway.errors import Forbidden
from gateway.request_body import read_json


@dataclass(frozen=True, slots=True)
class DemoUser:
    user_id: str
    company_id: str
    company_name: str
    display_name: str


DEMO_USERS: Final = (
    DemoUser("u-alice", "acme-hvac", "Acme Heating & Cooling", "Alice Moreno (dispatcher)"),
    DemoUser("u-dave", "acme-hvac", "Acme Heating & Cooling", "Dave Okafor (service manager)"),
    DemoUser("u-bob", "bluepeak-plumbing", "Bluepeak Plumbing", "Bob Lindqvist (owner)"),
    DemoUser("u-carol", "citywide-electric", "Citywide Electric", "Carol Nguyen (office lead)"),
)


class DevTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: str
    company_id: str


async def dev_users(request: web.Request) -> web.Response:
    """`GET /auth/dev-users`: the demo users a developer can sign in as."""
    del request
    return web.json_response({"users": [asdict(user) for user in DEMO_USERS]})


async def dev_token(request: web.Request) -> web.Response:
    """`POST /auth/dev-token`: a user token for one of the demo users."""
    body = await read_json(request, DevTokenRequest)
    user = next(
        (u for u in DEMO_USERS if u.user_id == body.user_id and u.company_id == body.company_id),
        None,
    )
    if user is None:
        raise Forbidden("Not a demo user; see GET /auth/dev-users.")
    settings = request.app[SETTINGS]
    token = mint_dev_token(
        settings.jwt_config(),
        user_id=user.user_id,
        company_id=user.company_id,
        ttl_s=settings.dev_token_ttl_s,
    )
    return web.json_response(
        {"token": token, "token_type": "Bearer", "expires_in": settings.dev_token_ttl_s}
    )


def add_dev_auth_routes(app: web.Application) -> None:
    """Route the dev endpoints (call only in development)."""
    app.router.add_get("/auth/dev-users", dev_users)
    app.router.add_post("/auth/dev-token", dev_token)
