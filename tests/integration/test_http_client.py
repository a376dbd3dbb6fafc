"""The shared upstream session keeps no cookies: one caller's provider cookies never reach another."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestServer

from turnout.config import Settings
from turnout.net.http import make_client_session


async def test_upstream_cookies_are_not_kept_between_requests() -> None:
    async def handler(request: web.Request) -> web.Response:
        response = web.json_response({"cookie": request.headers.get("Cookie")})
        response.set_cookie("session", "tenant-a-secret")
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    async with TestServer(app, host="127.0.0.1") as server:
        session = make_client_session(Settings(allow_private_api_base=True, _env_file=None))  # type: ignore[call-arg]
        try:
            url = f"http://localhost:{server.port}/v1/chat/completions"  # a host name: jars skip bare IPs
            for _ in range(2):
                async with session.post(url, data=b"{}") as resp:
                    assert resp.status == 200
                    assert (await resp.json())["cookie"] is None
        finally:
            await session.close()
