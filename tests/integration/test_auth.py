"""Bearer JWT authentication and role checks on the admin API."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import httpx
import jwt
import orjson
import pytest

from turnout.container import Container

URL = "/api/v2/admin/providers"


def _assert_error(resp: httpx.Response, status: int) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


async def test_valid_admin_token_is_accepted(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    resp = await client.get(URL, headers=admin)
    assert resp.status_code == 200
    assert resp.json() == {"items": [], "total": 0}


@pytest.mark.parametrize("header", [None, "Basic abc", "Bearer ", "Bearer not-a-jwt"])
async def test_missing_or_malformed_token_is_401(client: httpx.AsyncClient, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    err = _assert_error(await client.get(URL, headers=headers), 401)
    assert err["type"] == "authentication_error"


async def test_expired_token_is_401(client: httpx.AsyncClient, make_token: Callable[..., str]) -> None:
    token = make_token(ttl_s=-10)
    err = _assert_error(await client.get(URL, headers={"Authorization": f"Bearer {token}"}), 401)
    assert "expired" in str(err["message"])


async def test_token_signed_with_another_secret_is_401(client: httpx.AsyncClient) -> None:
    claims = {"sub": "mallory", "tenant_id": "t1", "roles": ["platform_admin"], "exp": int(time.time()) + 60}
    forged = jwt.encode(claims, "not-the-secret-" * 4, algorithm="HS256")
    _assert_error(await client.get(URL, headers={"Authorization": f"Bearer {forged}"}), 401)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()


async def test_alg_none_is_401(client: httpx.AsyncClient) -> None:
    claims = {"sub": "mallory", "tenant_id": "t1", "roles": ["platform_admin"], "exp": int(time.time()) + 60}
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    _assert_error(await client.get(URL, headers={"Authorization": f"Bearer {unsigned}"}), 401)


async def test_other_algorithm_with_same_secret_is_401(
    client: httpx.AsyncClient, container: Container
) -> None:
    claims = {"sub": "mallory", "tenant_id": "t1", "roles": ["platform_admin"], "exp": int(time.time()) + 60}
    secret = container.settings.jwt_secret_value
    other = jwt.encode(claims, secret, algorithm="HS512")
    err = _assert_error(await client.get(URL, headers={"Authorization": f"Bearer {other}"}), 401)
    assert "algorithm" in str(err["message"])


@pytest.mark.parametrize("roles", [("tenant_admin",), ("user",), ("agent",), ()])
async def test_non_platform_roles_are_403(
    client: httpx.AsyncClient, make_token: Callable[..., str], roles: tuple[str, ...]
) -> None:
    headers = {"Authorization": f"Bearer {make_token(roles=roles)}"}
    for method, path in [
        ("GET", URL),
        ("POST", URL),
        ("GET", "/api/v2/admin/models"),
        ("POST", f"{URL}/x/sync"),
    ]:
        resp = await client.request(method, path, headers=headers, json={})
        err = _assert_error(resp, 403)
        assert err["type"] == "permission_error"
