"""Spend reports (`/api/v2/spend`): tokens and cost per one or two dimensions, as JSON or CSV."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from turnout.api.auth import require_roles
from turnout.api.deps import container_of as _container
from turnout.auth.principal import Principal
from turnout.records.spend import DIMENSIONS, SpendQuery, SpendReport, csv_text

router = APIRouter(prefix="/api/v2/spend", tags=["spend"])
Admin = Annotated[Principal, Depends(require_roles("tenant_admin", "platform_admin"))]
GROUP_DOC = f"one or two of {', '.join(DIMENSIONS)}; comma-separated or repeated"
DATE_DOC = "ISO date or datetime, UTC unless a zone is given"
PAGE_ROWS = 1000  # rows of a JSON page unless ``limit`` says otherwise
MAX_PAGE_ROWS = 10_000


@router.get("", response_model=SpendReport, response_model_by_alias=True)
async def spend(
    request: Request,
    principal: Admin,
    group_by: Annotated[list[str] | None, Query(max_length=4, description=GROUP_DOC)] = None,
    start: Annotated[str | None, Query(alias="from", max_length=40, description=DATE_DOC)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=40, description=f"exclusive; {DATE_DOC}")] = None,
    tenant: Annotated[str | None, Query(max_length=64, description="platform admins: any tenant")] = None,
    agent: Annotated[str | None, Query(max_length=64)] = None,
    api_key: Annotated[str | None, Query(max_length=32, description="an API key's id")] = None,
    model: Annotated[str | None, Query(max_length=512)] = None,
    provider: Annotated[str | None, Query(max_length=50)] = None,
    task_type: Annotated[str | None, Query(max_length=50)] = None,
    policy: Annotated[str | None, Query(max_length=50)] = None,
    format: Annotated[str, Query(pattern="^(json|csv)$", description="json or csv")] = "json",
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_PAGE_ROWS,
            description=f"rows a page holds (JSON: {PAGE_ROWS} unless given; CSV: all)",
        ),
    ] = None,
    offset: Annotated[int, Query(ge=0, description="rows skipped, in the report's order")] = 0,
) -> SpendReport | Response:
    """Calls, tokens (prompt, completion, cached, cache-write, reasoning) and exact cost per group,
    with the estimated share and a total. Tenant admins see their own tenant only (naming another
    is 403); platform admins see every tenant. JSON comes in pages (``limit``, ``offset``; every
    page has the total of all rows, ``row_count`` and ``has_more``); CSV, an export, has every row
    unless ``limit`` or ``offset`` is given."""
    filters = {
        "tenant": tenant, "agent": agent, "api_key": api_key, "model": model, "provider": provider,
        "task_type": task_type, "policy": policy,
    }  # fmt: skip
    query = SpendQuery.parse(group_by, start, end, filters)
    report = await _container(request).spend_reports.report(query, principal)
    if format == "csv":
        if limit is not None or offset:
            report = report.page(offset, limit)
        return Response(
            csv_text(report),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="spend.csv"'},
        )
    return report.page(offset, PAGE_ROWS if limit is None else limit)
