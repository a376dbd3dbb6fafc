"""`/docs` and `/redoc` work offline (their assets come from the gateway, not a CDN) and document the
data plane and every request body, with security schemes for "Try it out"."""

from __future__ import annotations

import re

import httpx
import pytest


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_api_docs_load_only_local_assets(client: httpx.AsyncClient, page: str) -> None:
    html = (await client.get(page)).text
    sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert sources and not [s for s in sources if "://" in s], f"{page} fetches from elsewhere: {sources}"
    for source in sources:
        asset = await client.get(source)
        assert asset.status_code == 200 and len(asset.content) > 1000, source
    assert "openapi.json" in html


async def test_the_document_covers_the_data_plane_and_request_bodies(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path in ("/v1/chat/completions", "/v1/messages", "/v1/embeddings", "/api/models/chat"):
        assert "requestBody" in spec["paths"][path]["post"], path
    assert "requestBody" in spec["paths"]["/api/v2/routing/explain"]["post"]
    rating = spec["paths"]["/api/v2/chat/messages/{message_id}/feedback"]["post"]
    body = rating["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/FeedbackIn"}
    assert {"bearerAuth", "apiKeyAuth"} <= set(spec["components"]["securitySchemes"])
