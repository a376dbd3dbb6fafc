"""An upstream that answers 2xx with something that is not the API (an HTML page) or redirects
has failed: the request fails over to its fallback instead of ending in an error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.gateway_env import OPENAI_MODEL, GatewayEnv, gw  # noqa: F401
from tests.security.hostile import HostileUpstream

HELLO: Any = [{"role": "user", "content": "hello"}]


@pytest.fixture
async def garbage(gw: GatewayEnv) -> AsyncIterator[GatewayEnv]:  # noqa: F811
    """``gw`` plus a provider ``junk`` at the hostile upstream, its models enabled for the agent."""
    upstream = HostileUpstream()
    base = await upstream.start()
    spec = {"id": "junk", "display_name": "Junk", "provider_type": "custom", "api_base": f"{base}/v1"}
    assert (await gw.http.post("/api/v2/admin/providers", json=spec, headers=gw.admin)).status_code == 201
    for mode in ("html", "redirect"):
        model = {"provider_id": "junk", "external_id": f"{mode}-x"}
        assert (await gw.http.post("/api/v2/admin/models", json=model, headers=gw.admin)).status_code == 201
    owner = {"Authorization": f"Bearer {gw.container.jwt.mint('ann', 'acme', ['tenant_admin'])}"}
    enabled = await gw.http.post(
        "/api/v2/agents/bot/models", json={"bulk_filter": {"provider": "junk"}}, headers=owner
    )
    assert enabled.status_code == 200, enabled.text
    try:
        yield gw
    finally:
        await upstream.stop()


@pytest.mark.parametrize("mode", ["html", "redirect"])
@pytest.mark.parametrize("stream", [False, True])
async def test_a_non_api_answer_fails_over_to_the_fallback(
    garbage: GatewayEnv, mode: str, stream: bool
) -> None:
    client = garbage.openai()
    raw = await client.chat.completions.with_raw_response.create(
        model=f"junk/{mode}-x", messages=HELLO, stream=stream, extra_body={"fallbacks": [OPENAI_MODEL]}
    )
    assert raw.status_code == 200 and raw.headers["x-turnout-model"] == OPENAI_MODEL
    parsed = raw.parse()
    if stream:
        text = "".join([c.choices[0].delta.content or "" async for c in parsed if c.choices])
    else:
        text = parsed.choices[0].message.content or ""
    assert text, "the fallback answered"
    row = (await garbage.records(1))[-1]
    assert row.model == OPENAI_MODEL and row.fallback_used and row.status == "ok"
