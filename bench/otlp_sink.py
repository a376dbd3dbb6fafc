"""A local OTLP/HTTP trace receiver for the benchmark: it takes ``POST /v1/traces`` (Turnout sends
OTLP JSON), counts the requests and bytes, and answers 200, so that Turnout's tracing runs its whole
export path (spans, queue, JSON encoding, HTTP) without anything else on the machine.

    python bench/otlp_sink.py --port 4318
"""

from __future__ import annotations

import argparse

import uvloop
from aiohttp import web

RECEIVED = web.AppKey("received", list)


async def traces(request: web.Request) -> web.Response:
    body = await request.read()
    request.app[RECEIVED][0] += 1
    request.app[RECEIVED][1] += len(body)
    return web.Response(body=b"{}", content_type="application/json")


async def health(request: web.Request) -> web.Response:
    exports, size = request.app[RECEIVED]
    return web.json_response({"exports": exports, "bytes": size})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app[RECEIVED] = [0, 0]
    app.router.add_post("/v1/traces", traces)
    app.router.add_get("/healthz", health)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
