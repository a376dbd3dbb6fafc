"""Issue 15, item 7: the Message record keeps who authenticated (``subject``) apart from the
caller-supplied ``metadata.user_id``, which anyone can set to anything."""

from __future__ import annotations

from tests.security import agents_env
from tests.security.agents_env import CHAT, MINI, World, key_headers

world = agents_env.world  # the fixture: two replicas, the simulator, one database


async def test_record_keeps_the_authenticated_subject_apart_from_metadata_user_id(world: World) -> None:
    key = await world.agent("acme", "bot", [MINI])
    await world.settle()
    calls = [
        (key_headers(key), {"user_id": "end-user-7"}),  # an agent acting for its end user
        (key_headers(key), {}),
        (
            world.bearer("uma", "acme"),
            {"user_id": "mallory", "agent_id": "bot"},
        ),  # a user claiming to be another
    ]
    ids = []
    for headers, metadata in calls:
        resp = await world.http[0].post(
            "/v1/chat/completions",
            json={"model": MINI, "messages": CHAT, "metadata": metadata},
            headers=headers,
        )
        assert resp.status_code == 200, resp.text
        ids.append(resp.headers["x-turnout-message-id"])
    rows = {r.id: r for r in await world.records(3)}
    got = [(rows[i].subject, rows[i].user_id) for i in ids]
    assert got == [("agent:bot", "end-user-7"), ("agent:bot", None), ("uma", "mallory")]


async def test_tokens_whose_claims_do_not_fit_the_record_are_refused(world: World) -> None:
    await world.agent("acme", "bot", [MINI])
    body = {"model": MINI, "messages": CHAT, "metadata": {"agent_id": "bot"}}
    for claims in ({"sub": "u" * 256, "tenant": "acme"}, {"sub": "uma", "tenant": "t" * 65}):
        headers = world.bearer(claims["sub"], claims["tenant"])
        resp = await world.http[0].post("/v1/chat/completions", json=body, headers=headers)
        assert resp.status_code == 401, resp.text
    fits = world.bearer("u" * 255, "acme")
    assert (await world.http[0].post("/v1/chat/completions", json=body, headers=fits)).status_code == 200
