"""The ceiling for a Python proxy: a bare aiohttp pass-through for ``POST /v1/chat/completions``.

It forwards the request bytes (and ``Authorization``) to the upstream through one pooled
``aiohttp.ClientSession`` and hands back the answer's bytes, streaming SSE chunk by chunk. No
parsing, no auth, no records: what is left is the HTTP work every gateway must do.

    python bench/passthrough.py --port 8091 --upstream http://127.0.0.1:8090
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

import aiohttp
import uvloop
from aiohttp import web

SESSION = web.AppKey("session", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)
FORWARDED = ("Authorization", "Content-Type")
RETURNED = ("Content-Type", "Cache-Control")


async def chat(request: web.Request) -> web.StreamResponse:
    """Forward the body; return the upstream's bytes (as they come, for an event stream)."""
    session = request.app[SESSION]
    headers = {name: request.headers[name] for name in FORWARDED if name in request.headers}
    body = await request.read()
    url = request.app[UPSTREAM] + "/v1/chat/completions"
    async with session.post(url, data=body, headers=headers) as upstream:
        out_headers = {name: upstream.headers[name] for name in RETURNED if name in upstream.headers}
        if not upstream.headers.get("Content-Type", "").startswith("text/event-stream"):
            return web.Response(body=await upstream.read(), status=upstream.status, headers=out_headers)
        response = web.StreamResponse(status=upstream.status, headers=out_headers)
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def serve(host: str, port: int, upstream: str) -> None:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=600, sock_connect=5)
    app[SESSION] = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)
    app[UPSTREAM] = upstream.rstrip("/")
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=1024, reuse_address=True).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await app[SESSION].close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL of the upstream, without /v1")
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, args.upstream))


if __name__ == "__main__":
    main()
