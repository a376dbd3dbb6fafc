"""0 5xx across a malformed-input corpus (issue 15, done-when): for every route of the data plane
(OpenAI, Anthropic and native dialects) and the control plane, each field of a valid body set in
turn to NUL, huge and odd numbers, wrong types, bad UTF-8, a lone surrogate, a long string and
deep nesting; the whole body broken; paths and queries with bad escapes; odd headers. Every
answer must be a 2xx or a 4xx (the HTTP parser's own 400 included), never a 5xx nor a dropped
connection, and every JSON error must have its dialect's shape. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from tests.security.edge_corpus import GETS, ROUTES, is_data_plane
from tests.security.edge_env import EdgeEnv, RawAnswer, RawConnection, edge  # noqa: F401

_SLOT = "\x01slot\x01"
_SLOT_JSON = orjson.dumps(_SLOT)
FIELD_VALUES: list[tuple[str, bytes]] = [
    ("NUL", b'"a\\u0000b"'),
    ("object", b'{"a": 1}'),
    ("array", b"[1, 2]"),
    ("true", b"true"),
    ("null", b"null"),
    ("string", b'"x"'),
    ("empty string", b'""'),
    ("integer", b"123"),
    ("huge integer", b"1" + b"0" * 400),
    ("64-bit overflow", b"9223372036854775808"),
    ("huge float", b"1e400"),
    ("negative", b"-1"),
    ("fraction", b"1.5"),
    ("NaN", b"NaN"),
    ("bad UTF-8", b'"\xff\xfe\xc0\xaf"'),
    ("lone surrogate", b'"\\ud800"'),
    ("long string", b'"' + b"x" * 70_000 + b'"'),
    ("deep nesting", b"[" * 900 + b"]" * 900),
]
WHOLE_BODIES: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("open brace", b"{"),
    ("array", b"[]"),
    ("null", b"null"),
    ("string", b'"x"'),
    ("number", b"123"),
    ("garbage", b"\xff\xfe\x00garbage"),
    ("too deep", b'{"a":' * 3000 + b"1" + b"}" * 3000),
    ("duplicate keys", b'{"a": 1, "a": 2}'),
]


def leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every field's path in a JSON document (objects' keys, arrays' indexes), containers included."""
    if path:
        yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from leaves(item, (*path, i))


def with_slot(value: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return _SLOT
    head, *rest = path
    if isinstance(value, dict):
        return {**value, head: with_slot(value[head], tuple(rest))}
    return [*value[:head], with_slot(value[head], tuple(rest)), *value[head + 1 :]]


def field_corpus(body: Any) -> Iterator[tuple[str, bytes]]:
    for path in leaves(body):
        template = orjson.dumps(with_slot(body, path))
        where = ".".join(str(p) for p in path)
        for label, raw in FIELD_VALUES:
            yield f"{where}={label}", template.replace(_SLOT_JSON, raw)


def odd_headers(auth: bytes) -> list[tuple[str, list[tuple[bytes, bytes]], bool]]:
    """(label, headers, chunked) around a valid body."""
    json_type = (b"content-type", b"application/json")
    bearer = (b"authorization", auth)
    return [
        ("no content-type", [bearer], False),
        ("text/plain", [bearer, (b"content-type", b"text/plain")], False),
        ("utf-16 charset", [bearer, (b"content-type", b"application/json; charset=utf-16")], False),
        ("chunked body", [bearer, json_type], True),
        ("expect 100-continue", [bearer, json_type, (b"expect", b"100-continue")], False),
        ("obs-text header", [bearer, json_type, (b"x-note", b"caf\xe9 \xff")], False),
        ("200 headers", [bearer, json_type, *[(f"x-h{i}".encode(), b"v") for i in range(200)]], False),
        ("no credentials", [json_type], False),
        ("bare Bearer", [(b"authorization", b"Bearer"), json_type], False),
        ("Basic", [(b"authorization", b"Basic Zm9vOmJhcg=="), json_type], False),
        ("long token", [(b"authorization", b"Bearer " + b"a" * 9000), json_type], False),
        ("key without secret", [(b"authorization", b"Bearer tk-abc"), json_type], False),
        ("key with empty parts", [(b"authorization", b"Bearer tk-."), json_type], False),
        ("non-ASCII token", [(b"authorization", b"Bearer tk-\xe9\xff.x"), json_type], False),
        (
            "alg none JWT",
            [(b"authorization", b"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."), json_type],
            False,
        ),
        ("x-api-key only", [(b"x-api-key", auth.removeprefix(b"Bearer ")), json_type], False),
        ("x-api-key garbage", [(b"x-api-key", b"\xff\xfe"), json_type], False),
        ("two authorizations", [bearer, (b"authorization", b"Bearer other"), json_type], False),
    ]


def bad_targets(path: str) -> list[tuple[str, bytes]]:
    raw = path.encode()
    return [
        ("bad escape", raw + b"%ff%fe"),
        ("overlong escape", raw.replace(b"/api", b"/%c0%afapi", 1).replace(b"/v1", b"/%c0%afv1", 1)),
        ("bad query", raw + b"?q=%ff%fe&page=%00x&per_page=-1&capability=nope&available=maybe"),
        ("huge query value", raw + b"?page=" + b"9" * 400 + b"&q=" + b"x" * 5000),
        ("long path", raw + b"/" + b"a" * 6000),
        ("dot segments", raw + b"/../../../etc/passwd"),
    ]


def _shape_problem(method: str, path: str, target: bytes, answer: RawAnswer) -> str | None:
    if answer.status < 400 or not answer.headers.get("content-type", "").startswith("application/json"):
        return None  # successes, and the HTTP parser's own plain-text 400
    try:
        payload = answer.json()
    except orjson.JSONDecodeError:
        return "an error body that is not JSON"
    if path == "/v1/messages" and method == "POST" and target == path.encode():  # the Anthropic route
        ok = payload.get("type") == "error" and set(payload.get("error", {})) == {"type", "message"}
        return None if ok else f"not Anthropic's error shape: {payload}"
    ok = isinstance(payload.get("error"), dict) and set(payload["error"]) == {
        "message",
        "type",
        "param",
        "code",
    }
    return None if ok else f"not the OpenAI error shape: {payload}"


Case = tuple[str, str, bytes, list[tuple[bytes, bytes]], bytes | None, bool, str]
# (method, route path, target, headers, body, chunked, label)


def corpus(env: EdgeEnv) -> list[Case]:
    auth = {
        who: h["Authorization"].encode()
        for who, h in (("admin", env.admin), ("tenant", env.tenant_admin), ("agent", env.agent))
    }
    json_type = (b"content-type", b"application/json")
    cases: list[Case] = []
    for method, path, who, body in sorted(ROUTES, key=lambda r: not is_data_plane(r[1])):  # data plane first
        headers = [(b"authorization", auth[who]), json_type]
        for label, raw in [*field_corpus(body), *WHOLE_BODIES]:
            cases.append((method, path, path.encode(), headers, raw, False, label))
        valid = orjson.dumps(body)
        for label, odd, chunked in odd_headers(auth[who]):
            cases.append((method, path, path.encode(), odd, valid, chunked, label))
        for label, target in bad_targets(path):
            cases.append((method, path, target, headers, valid, False, label))
    for path, who in GETS:
        for label, target in bad_targets(path.split("?")[0]):
            cases.append(("GET", path, target, [(b"authorization", auth[who])], None, False, label))
    return cases


def _deep_into_the_data_plane(case: Case) -> bool:
    return is_data_plane(case[1]) and case[6].endswith("=deep nesting")


async def answer_all(env: EdgeEnv, cases: list[Case]) -> tuple[list[str], dict[int, int]]:
    """Send every case on keep-alive connections; the problems found, and the statuses seen."""
    failures: list[str] = []
    statuses: dict[int, int] = {}
    conn = await RawConnection.open(env.url)
    try:
        for method, path, target, headers, body, chunked, label in cases:
            answer = await conn.request(method, target, headers, body, chunked=chunked)
            where = f"{method} {target[:80].decode('latin-1')} [{label}]"
            if answer is None:
                failures.append(f"{where}: connection dropped with no answer")
            else:
                statuses[answer.status] = statuses.get(answer.status, 0) + 1
                if answer.status >= 500:
                    failures.append(f"{where}: {answer.status} {answer.body[:200]!r}")
                elif (problem := _shape_problem(method, path, target, answer)) is not None:
                    failures.append(f"{where}: {problem}")
            if answer is None or answer.headers.get("connection") == "close":
                await conn.close()
                conn = await RawConnection.open(env.url)
    finally:
        await conn.close()
    return failures, statuses


async def test_malformed_input_never_gets_a_5xx(edge: EdgeEnv) -> None:  # noqa: F811
    cases = [case for case in corpus(edge) if not _deep_into_the_data_plane(case)]
    failures, statuses = await answer_all(edge, cases)
    assert not failures, f"{len(failures)} of {len(cases)} (statuses {statuses}):\n" + "\n".join(
        failures[:80]
    )
    assert sum(n for s, n in statuses.items() if s >= 500) == 0


async def test_deeply_nested_data_plane_fields_get_a_4xx(edge: EdgeEnv) -> None:  # noqa: F811
    cases = [case for case in corpus(edge) if _deep_into_the_data_plane(case)]
    failures, _ = await answer_all(edge, cases)
    assert not failures, "\n".join(failures)
