"""Running the ASGI app under uvicorn (uvloop, httptools: ``http_protocol.py``), lifespan included.

The app is built by its factory in each worker (``TURNOUT_*`` settings from the environment); the
lifespan shutdown flushes records and feedback. Access logs, proxy-header rewriting and the
``server`` header are off: they cost per request and a gateway's records already say who called.
(Granian 2.8 was measured as the alternative: at one worker it served fewer requests per second
than this once the hot path stopped releasing the GIL, and its thread handoffs added latency.)
"""

from __future__ import annotations

import uvicorn

from turnout.http_protocol import PROTOCOL

APP_FACTORY = "turnout.app:create_app"


def serve(host: str, port: int, *, workers: int = 1) -> None:
    """Serve Turnout until SIGINT/SIGTERM."""
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http=PROTOCOL,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )
