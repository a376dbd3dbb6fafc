"""The playground's rating endpoint (``POST /ui/playground/feedback/{id}``, what its 👍/👎 and copy
buttons call) refuses a bad body with a 400 that names every bad field, worded as the API's
``POST /api/v2/chat/messages/{id}/feedback`` words it for the same body: the page shows that
message after "not saved:"."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from turnout.api.ui.session import login_link
from turnout.container import Container

MESSAGE_ID = "00000000-0000-0000-0000-000000000000"  # the body is checked before the message is looked up


async def _csrf(client: httpx.AsyncClient, container: Container) -> str:
    """Sign in as a user through a login link, as a browser does, and read the page's CSRF token."""
    page = await client.get(
        login_link(container.jwt, str(client.base_url), "una", "acme", ["user"]), follow_redirects=True
    )
    assert page.status_code == 200 and page.url.path == "/ui/playground", page.url
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert found is not None, page.text
    return found.group(1)


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        (
            {"rating": 2, "feedback_type": "bogus", "comment": "x" * 2001},
            "rating",
            "rating: Input should be less than or equal to 1; feedback_type: Input should be "
            "'explicit', 'implicit' or 'self_eval'; comment: String should have at most 2000 characters",
        ),
        (
            {"event": "paste", "rating": 1},
            "event",
            "event: Input should be 'regenerate', 'copy' or 'continue'; "
            "rating: Extra inputs are not permitted",
        ),
        ({"rating": 2}, "rating", "rating: Input should be less than or equal to 1"),
        ({"rating": True}, "rating", "rating: Input should be a valid number"),
    ],
)
async def test_a_bad_rating_names_every_bad_field(
    client: httpx.AsyncClient,
    container: Container,
    make_token: Callable[..., str],
    body: dict[str, Any],
    param: str,
    message: str,
) -> None:
    csrf = await _csrf(client, container)
    resp = await client.post(
        f"/ui/playground/feedback/{MESSAGE_ID}", json=body, headers={"x-csrf-token": csrf}
    )
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert (error["param"], error["message"]) == (param, message), error
    if "event" not in body:  # the API's rating endpoint takes ratings only
        api = await client.post(
            f"/api/v2/chat/messages/{MESSAGE_ID}/feedback",
            json=body,
            headers={"Authorization": f"Bearer {make_token('una', 'acme', ('user',))}"},
        )
        assert api.status_code == 400 and api.json()["error"]["message"] == message, api.text
