"""``/readyz``: 200 while the services the gateway was set up with answer, 503 naming the one that
does not (``/healthz`` said ok with Redis unreachable); no credential needed, as for ``/healthz``."""

from __future__ import annotations

from pathlib import Path

from tests.gateway_env import gateway


async def test_ready_while_its_database_answers(tmp_path: Path) -> None:
    async with gateway(tmp_path) as gw:
        ready = await gw.http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ok", "checks": {"database": "ok", "secret_store": "ok"}}


async def test_not_ready_while_redis_does_not_answer(tmp_path: Path) -> None:
    async with gateway(tmp_path, redis_url="redis://127.0.0.1:1/0", redis_timeout_s=0.2) as gw:
        assert (await gw.http.get("/healthz")).status_code == 200, "alive all the same"
        ready = await gw.http.get("/readyz")
        assert ready.status_code == 503, ready.text
        checks = ready.json()["checks"]
        assert checks["database"] == "ok" and checks["redis"] != "ok", checks
