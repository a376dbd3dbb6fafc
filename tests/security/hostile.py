"""A hostile upstream for security tests: it speaks each provider's wire format just enough to
answer, and echoes the credential it was sent back at the gateway in error texts.

The behaviour is chosen by the model name the gateway sends (``{mode}-{form}``):
- modes: ``status`` (401 with an error body), ``busy`` (503, retried and failed over), ``text``
  (500 with a plain-text body), ``body200`` (200 whose body is an error object), ``stream`` (a good
  chunk, then an error event mid-stream); and two that echo nothing: ``html`` (200 with an HTML
  page) and ``redirect`` (302 to a metadata address);
- forms of the echoed credential: ``raw``, ``tail`` (a key without its vendor prefix), ``upper``,
  ``b64``, ``json`` (JSON-escaped inside the message).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Any

from aiohttp import web

MODES = ("status", "busy", "text", "body200", "stream")  # the modes that echo the credential
FORMS = ("raw", "tail", "upper", "b64", "json")


def echo_form(secret: str, form: str) -> str:
    """The spelling of ``secret`` that the upstream echoes."""
    if form == "tail":  # without a vendor prefix such as sk-, sk-proj-, sk-ant-api03-
        return re.sub(r"^(?:[a-z]+[0-9]*-)+", "", secret)
    if form == "upper":
        return secret.upper()
    if form == "b64":
        return base64.b64encode(secret.encode()).decode()
    return secret


def _credential(request: web.Request) -> str:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:]
    return request.headers.get("api-key") or request.headers.get("x-api-key") or ""


def _message(secret: str, form: str) -> str:
    return f"Incorrect API key provided: {echo_form(secret, form)}. You can find your key at the console."


def _error_json(wire: str, message: str) -> dict[str, Any]:
    if wire == "anthropic":
        return {"type": "error", "error": {"type": "authentication_error", "message": message}}
    if wire == "ollama":
        return {"error": message}
    return {"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}}


def _dumps(obj: Any, form: str) -> str:
    text = json.dumps(obj)
    return text.replace("/", "\\/") if form == "json" else text


class HostileUpstream:
    """Serves the OpenAI, Azure, Anthropic and Ollama chat routes on a loopback port."""

    def __init__(self) -> None:
        self.calls = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._azure)
        app.router.add_post("/v1/messages", self._anthropic)
        app.router.add_post("/api/chat", self._ollama)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        return await self._answer(request, "openai", str(body.get("model")), bool(body.get("stream")))

    async def _azure(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        deployment = request.match_info["deployment"]
        return await self._answer(request, "openai", deployment, bool(body.get("stream")))

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        return await self._answer(request, "anthropic", str(body.get("model")), bool(body.get("stream")))

    async def _ollama(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        return await self._answer(request, "ollama", str(body.get("model")), bool(body.get("stream", True)))

    async def _answer(self, request: web.Request, wire: str, model: str, stream: bool) -> web.StreamResponse:
        self.calls += 1
        mode, _, form = model.partition("-")
        secret = _credential(request)
        message = _message(secret, form)
        error = _error_json(wire, message)
        if mode == "status":
            return web.Response(status=401, text=_dumps(error, form), content_type="application/json")
        if mode == "busy":
            return web.Response(status=503, text=_dumps(error, form), content_type="application/json")
        if mode == "text":
            return web.Response(status=500, text=message, content_type="text/plain")
        if mode == "html":  # a captive portal or a misconfigured proxy answering 200
            page = "<html><body>Welcome</body></html>"
            return web.Response(status=200, text=page, content_type="text/html")
        if mode == "redirect":
            raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")
        if mode == "body200" or not stream:
            return web.Response(status=200, text=_dumps(error, form), content_type="application/json")
        return await self._broken_stream(request, wire, error, form)

    async def _broken_stream(
        self, request: web.Request, wire: str, error: dict[str, Any], form: str
    ) -> web.StreamResponse:
        ndjson = wire == "ollama"
        response = web.StreamResponse(
            headers={"Content-Type": "application/x-ndjson" if ndjson else "text/event-stream"}
        )
        await response.prepare(request)
        if wire == "ollama":
            good = {"model": "m", "message": {"role": "assistant", "content": "Hel"}, "done": False}
            await response.write(json.dumps(good).encode() + b"\n")
            await asyncio.sleep(0.05)
            await response.write(_dumps(error, form).encode() + b"\n")
        elif wire == "anthropic":
            start = {
                "type": "message_start",
                "message": {
                    "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [],
                    "stop_reason": None, "usage": {"input_tokens": 3, "output_tokens": 0},
                },
            }  # fmt: skip
            block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
            text = {"type": "text_delta", "text": "Hel"}
            delta = {"type": "content_block_delta", "index": 0, "delta": text}
            for data in (start, block, delta):
                await response.write(f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode())
            await asyncio.sleep(0.05)
            await response.write(f"event: error\ndata: {_dumps(error, form)}\n\n".encode())
        else:
            chunk = {
                "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": None}
                ],
            }  # fmt: skip
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            await asyncio.sleep(0.05)
            await response.write(f"data: {_dumps(error, form)}\n\n".encode())
        await response.write_eof()
        return response
