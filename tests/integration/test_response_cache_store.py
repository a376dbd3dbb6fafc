"""The response cache's stores on real services: the ``response_cache`` table on SQLite and
PostgreSQL, Redis, and a Redis that is down (a miss, never an error)."""

from __future__ import annotations

import time

import orjson
from sqlalchemy import func, select

from tests.services import drop_redis_keys, redis_prefix, redis_url
from turnout.cluster.redis import connect
from turnout.gateway.cache import CachedAnswer, DatabaseAnswers, RedisAnswers, ResponseCache, Storing
from turnout.store.db import make_engine, make_sessionmaker
from turnout.store.response_cache import ResponseCacheEntry

COMPLETION = {"id": "chatcmpl-1", "choices": [{"index": 0, "message": {"content": "hi"}}], "usage": {}}


def _answer(text: str, ttl_s: float = 60.0) -> CachedAnswer:
    body = {**COMPLETION, "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
    return CachedAnswer("oai/gpt-4o-mini", orjson.dumps(body), time.time() + ttl_s)


async def test_the_table_keeps_answers_per_tenant_until_they_expire(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        store = DatabaseAnswers(make_sessionmaker(engine), purge_every_s=0)  # every write purges
        await store.put("k1", "acme", _answer("first"), 60)
        found = await store.get("k1", "acme")
        assert found is not None and found.model_id == "oai/gpt-4o-mini"
        assert found.completion()["choices"][0]["message"]["content"] == "first"
        assert await store.get("k1", "globex") is None  # another tenant never reads it
        await store.put("k1", "acme", _answer("second"), 60)  # written again: replaced
        again = await store.get("k1", "acme")
        assert again is not None and again.completion()["choices"][0]["message"]["content"] == "second"
        await store.put("old", "acme", _answer("stale", ttl_s=-1), 60)
        assert await store.get("old", "acme") is None  # expired: ignored on read
        await store.put("k2", "acme", _answer("third"), 60)
        async with make_sessionmaker(engine)() as session:
            keys = set((await session.scalars(select(ResponseCacheEntry.key))).all())
            assert keys == {"k1", "k2"}, "the expired row was purged"
            assert await session.scalar(select(func.count()).select_from(ResponseCacheEntry)) == 2
    finally:
        await engine.dispose()


async def test_redis_keeps_answers_with_their_ttl() -> None:
    url, prefix = await redis_url(), redis_prefix()
    client = connect(url)
    try:
        store = RedisAnswers(client, prefix)
        await store.put("k1", "acme", _answer("cached"), 30)
        found = await store.get("k1", "acme")
        assert found is not None and found.model_id == "oai/gpt-4o-mini"
        assert found.completion()["choices"][0]["message"]["content"] == "cached"
        assert abs(found.expires_at - _answer("x", 60).expires_at) < 40
        assert await store.get("k1", "globex") is None
        assert 0 < await client.ttl(f"{prefix}cache:acme:k1") <= 30
    finally:
        await client.aclose()
        await drop_redis_keys(prefix)


async def test_a_store_that_is_down_reads_as_a_miss() -> None:
    client = connect("redis://127.0.0.1:1/0", timeout_s=0.2)  # nothing listens there
    try:
        cache = ResponseCache(RedisAnswers(client, "t:"), memory_bytes=0)
        storing = Storing("k1", "acme", 60)
        assert await cache.get(storing) is None
        cache.put(storing, "oai/gpt-4o-mini", COMPLETION)  # logged, never raised
        await cache.flush()
        assert await cache.get(storing) is None
    finally:
        await client.aclose()
