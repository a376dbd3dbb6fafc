"""NUL anywhere in a request gets a clean 4xx naming where it was, in the caller's dialect, and
the keep-alive connection survives (issue 15, item 7). Runs on SQLite and PostgreSQL, which
refuses NUL in text: before the fix, on PostgreSQL, 38 of these requests were 500s that dropped
the connection, and on SQLite most were stored."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from tests.security.edge_corpus import CHAT, GETS, ROUTES, is_data_plane
from tests.security.edge_env import EdgeEnv, RawConnection, edge  # noqa: F401

SEGMENTS = {b"/sim": b"/s%00im", b"/bot": b"/b%00ot", b"/abc": b"/a%00bc", b"/normal": b"/nor%00mal"}


def nul_bodies(value: Any, path: str = "") -> Iterator[tuple[Any, str]]:
    """``value`` with NUL put in each string and each key in turn, with the field's name."""
    if isinstance(value, str):
        yield value + "\x00", path
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            for changed, field in nul_bodies(item, where):
                yield {**value, key: changed}, field
            yield {**{k: v for k, v in value.items() if k != key}, key + "\x00": item}, where + "\\u0000"
    elif isinstance(value, list):
        for i, item in enumerate(value):
            for changed, field in nul_bodies(item, f"{path}[{i}]"):
                yield [*value[:i], changed, *value[i + 1 :]], field


def _error_of(path: str, payload: Any) -> dict[str, Any]:
    if path == "/v1/messages":  # Anthropic's shape
        assert payload["type"] == "error" and set(payload["error"]) == {"type", "message"}, payload
        return {"param": None, **payload["error"]}
    assert set(payload["error"]) == {"message", "type", "param", "code"}, payload
    return dict(payload["error"])


async def test_nul_anywhere_gets_a_clean_4xx_naming_it(edge: EdgeEnv) -> None:  # noqa: F811
    auth = {"admin": edge.admin, "tenant": edge.tenant_admin, "agent": edge.agent}
    credentials = {who: [(b"authorization", h["Authorization"].encode())] for who, h in auth.items()}
    json_type = [(b"content-type", b"application/json")]
    cases: list[tuple[str, bytes, str, bytes | None, str | None]] = []  # method, target, who, body, param
    for method, path, who, body in ROUTES:
        for changed, field in nul_bodies(body):
            cases.append((method, path.encode(), who, orjson.dumps(changed), field))
        target = path.encode()
        for plain, with_nul in SEGMENTS.items():
            target = target.replace(plain, with_nul)
        if target != path.encode():
            cases.append((method, target, who, orjson.dumps(body), "path"))
        if not is_data_plane(path):  # the data plane reads no query
            cases.append((method, path.encode() + b"?x=%00", who, orjson.dumps(body), "x"))
    for path, who in GETS:
        raw, _, query = path.encode().partition(b"?")
        target = raw
        for plain, with_nul in SEGMENTS.items():
            target = target.replace(plain, with_nul)
        if target != raw:
            cases.append(("GET", target + (b"?" + query if query else b""), who, None, "path"))
        for part in query.split(b"&") if query else []:
            name = part.split(b"=")[0]
            cases.append(("GET", path.encode().replace(part, part + b"%00"), who, None, name.decode()))

    failures = []
    conn = await RawConnection.open(edge.url)
    try:
        for method, target, who, body, param in cases:
            where = f"{method} {target.decode()} {(body or b'')[:100].decode()}"
            headers = credentials[who] + (json_type if body is not None else [])
            answer = await conn.request(method, target, headers, body)
            if answer is None:
                failures.append(f"{where}: connection dropped with no answer")
                conn = await RawConnection.open(edge.url)
                continue
            if not 400 <= answer.status < 500:
                failures.append(f"{where}: {answer.status} {answer.body[:200]!r}")
            else:
                error = _error_of(target.decode().split("?")[0], answer.json())
                if "/v1/messages" not in where and error["param"] != param:
                    failures.append(f"{where}: param {error['param']!r}, expected {param!r}")
            alive = await conn.request("GET", b"/healthz")
            if alive is None or alive.status != 200:
                failures.append(f"{where}: the keep-alive connection did not survive")
                conn = await RawConnection.open(edge.url)
    finally:
        await conn.close()
    assert not failures, f"{len(failures)} of {len(cases)}:\n" + "\n".join(failures)
    assert edge.sim.stats.total == 0, "nothing with NUL was sent upstream"


async def test_nul_in_headers_is_refused_by_the_http_parser(edge: EdgeEnv) -> None:  # noqa: F811
    for headers in ([(b"authorization", b"Bearer " + edge.key.encode() + b"\x00")], [(b"x-foo", b"a\x00b")]):
        conn = await RawConnection.open(edge.url)
        try:
            answer = await conn.request("POST", b"/v1/chat/completions", headers, orjson.dumps(CHAT))
        finally:
            await conn.close()
        assert answer is not None and answer.status == 400
    assert edge.sim.stats.total == 0
