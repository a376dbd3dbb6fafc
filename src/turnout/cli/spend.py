"""``turnout spend``: what the calls cost, per one or two dimensions, as a table or CSV.

It reads the configured database directly, as a platform admin (like the catalog commands), so it
works with the gateway stopped.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from turnout.auth.principal import Principal
from turnout.cli.database import on_database, table_console
from turnout.cli.errors import fail
from turnout.domain.pricing import format_usd
from turnout.errors import TurnoutError
from turnout.records.spend import DIMENSIONS, SpendQueries, SpendQuery, SpendReport, SpendRow, csv_text

CLI_PRINCIPAL = Principal(subject="cli", tenant_id="platform", roles=frozenset({"platform_admin"}))


def spend(
    group_by: Annotated[
        list[str] | None, typer.Option("--group-by", "-g", help=f"one or two of {', '.join(DIMENSIONS)}")
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="ISO date or datetime (UTC)")] = None,
    end: Annotated[str | None, typer.Option("--to", help="exclusive; ISO date or datetime (UTC)")] = None,
    tenant: Annotated[str | None, typer.Option(help="only this tenant")] = None,
    agent: Annotated[str | None, typer.Option(help="only this agent")] = None,
    api_key: Annotated[str | None, typer.Option(help="only this API key id")] = None,
    model: Annotated[str | None, typer.Option(help="only this catalog model id")] = None,
    provider: Annotated[str | None, typer.Option(help="only this provider")] = None,
    task_type: Annotated[str | None, typer.Option(help="only this task type")] = None,
    policy: Annotated[str | None, typer.Option(help="only this routing policy")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="print CSV instead of a table")] = False,
) -> None:
    """Spend per tenant, agent, API key, model, provider, task type, policy, day, week or month."""
    filters = {
        "tenant": tenant, "agent": agent, "api_key": api_key, "model": model, "provider": provider,
        "task_type": task_type, "policy": policy,
    }  # fmt: skip
    try:
        query = SpendQuery.parse(group_by, start, end, filters)
    except TurnoutError as exc:
        fail(exc.message, code=2)
    try:
        report = on_database(lambda sessions: SpendQueries(sessions).report(query, CLI_PRINCIPAL))
    except TurnoutError as exc:
        fail(f"({exc.status_code}) {exc.message}")
    if as_csv:
        typer.echo(csv_text(report), nl=False)
    else:
        table_console().print(table(report))


def table(report: SpendReport) -> Table:
    """The report as a rich table (costs as ``format_usd`` writes them), the total as its last line."""
    window = f"{report.start or 'start'} to {report.end or 'now'}"
    out = Table(title=f"Spend, {window}", show_footer=True)
    headers = [*report.group_by, "calls", "prompt", "completion", "cached", "cache write", "reasoning"]
    footers = ["total", *[""] * (len(report.group_by) - 1)] if report.group_by else []
    footers += [*_numbers(report.total)]
    headers += ["cost", "estimated"]
    footers += [format_usd(report.total.cost_usd), f"{report.total.estimated_share:.0%}"]
    for index, (header, footer) in enumerate(zip(headers, footers, strict=True)):
        out.add_column(header, footer, justify="left" if index < len(report.group_by) else "right")
    for row in report.rows:
        keys = [row.group[name] or "-" for name in report.group_by]
        out.add_row(*keys, *_numbers(row), format_usd(row.cost_usd), f"{row.estimated_share:.0%}")
    return out


def _numbers(row: SpendRow) -> list[str]:
    counts = (
        row.calls, row.prompt_tokens, row.completion_tokens, row.cached_tokens, row.cache_write_tokens,
        row.reasoning_tokens,
    )  # fmt: skip
    return [f"{n:,}" for n in counts]
