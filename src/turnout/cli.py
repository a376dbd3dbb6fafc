"""Command line: serve, migrate, token, providers, models."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from turnout import serving
from turnout.auth.principal import Principal
from turnout.catalog.schemas import ModelFilter, ProviderCreate
from turnout.config import Settings
from turnout.container import Container
from turnout.errors import TurnoutError
from turnout.routing.replay import eval_app
from turnout.simulator.cli import simulate
from turnout.store.migrate import upgrade_sync

app = typer.Typer(help="Turnout: LLM gateway and intelligent model router", no_args_is_help=True)
providers_app = typer.Typer(help="Manage providers", no_args_is_help=True)
models_app = typer.Typer(help="Browse the model catalog", no_args_is_help=True)
app.add_typer(providers_app, name="providers")
app.add_typer(models_app, name="models")
app.add_typer(eval_app, name="eval")
app.command("simulate", help="Run the provider simulator (OpenAI, Anthropic, Ollama formats)")(simulate)
console = Console()
T = TypeVar("T")
CLI_PRINCIPAL = Principal(subject="cli", tenant_id="platform", roles=frozenset({"platform_admin"}))


def _run(work: Callable[[Container], Awaitable[T]]) -> T:
    """Run ``work`` with a fresh container on a migrated database; errors exit 1 with a message."""
    settings = Settings()
    upgrade_sync(settings.database_url)

    async def main() -> T:
        container = Container.build(settings)
        try:
            return await work(container)
        finally:
            await container.aclose()

    try:
        return asyncio.run(main())
    except TurnoutError as exc:
        console.print(f"[red]error ({exc.status_code}):[/red] {exc.message}")
        raise typer.Exit(1) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
    migrate: Annotated[bool, typer.Option(help="apply migrations first")] = True,
    workers: Annotated[int | None, typer.Option(min=1, help="worker processes (TURNOUT_WORKERS)")] = None,
) -> None:
    """Start the gateway (uvicorn, uvloop, httptools)."""
    settings = Settings()
    if migrate:
        upgrade_sync(settings.database_url)
    bind_host, bind_port = host or settings.host, port or settings.port
    console.print(f"Turnout on http://{bind_host}:{bind_port}  API docs: http://{bind_host}:{bind_port}/docs")
    console.print("Admin token: .venv/bin/turnout token --sub admin --tenant platform --role platform_admin")
    serving.serve(bind_host, bind_port, workers=workers or settings.workers)


@app.command()
def migrate() -> None:
    """Apply database migrations."""
    upgrade_sync(Settings().database_url)
    console.print("database is up to date")


@app.command()
def token(
    sub: Annotated[str, typer.Option(help="subject (user id)")],
    tenant: Annotated[str, typer.Option(help="tenant id")],
    role: Annotated[list[str], typer.Option(help="role; repeat for several")],
    ttl: Annotated[int, typer.Option(help="lifetime in seconds")] = 3600 * 24,
) -> None:
    """Mint a JWT signed with the configured secret."""
    from turnout.auth.jwt_tokens import JwtCodec

    settings = Settings()
    try:
        value = JwtCodec(settings.jwt_secret_value, settings.jwt_algorithm).mint(sub, tenant, role, ttl_s=ttl)
    except TurnoutError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None
    typer.echo(value)


@providers_app.command("add")
def providers_add(
    provider_id: Annotated[str, typer.Argument(help="slug, e.g. openrouter")],
    provider_type: Annotated[
        str, typer.Option("--type", help="openai|openrouter|anthropic|azure|ollama|custom")
    ],
    api_base: Annotated[str, typer.Option(help="base URL, e.g. https://openrouter.ai/api/v1")],
    display_name: Annotated[str | None, typer.Option(help="name shown in the UI")] = None,
    models_endpoint: Annotated[str | None, typer.Option(help="path of the models list")] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="read the API key from this environment variable")
    ] = None,
    prompt_key: Annotated[bool, typer.Option("--prompt-key", help="ask for the API key (hidden)")] = False,
    rpm: Annotated[int | None, typer.Option(help="rate limit, requests per minute")] = None,
) -> None:
    """Register a provider; its key goes to the secret store only."""
    key = os.environ.get(api_key_env) if api_key_env else None
    if prompt_key:
        key = typer.prompt("API key", hide_input=True)
    try:
        body = ProviderCreate(
            id=provider_id,
            display_name=display_name or provider_id,
            provider_type=provider_type,
            api_base=api_base,
            models_endpoint=models_endpoint,
            api_key=key,
            rate_limit_rpm=rpm,
        )
    except ValueError as exc:
        console.print(f"[red]invalid input:[/red] {exc}")
        raise typer.Exit(2) from None
    out = _run(lambda c: c.providers.create(body, CLI_PRINCIPAL))
    console.print(f"created provider [bold]{out.id}[/bold] (key ref: {out.api_key_ref or 'none'})")


@providers_app.command("list")
def providers_list() -> None:
    """Show providers with model counts and sync state."""
    items = _run(lambda c: c.providers.list())
    table = Table("id", "type", "api_base", "active", "models", "last synced", "last error")
    for p in items:
        table.add_row(
            p.id,
            p.provider_type,
            p.api_base,
            "yes" if p.is_active else "no",
            str(p.model_count),
            p.last_synced.isoformat(timespec="seconds") if p.last_synced else "-",
            p.last_sync_error or "",
        )
    console.print(table)


@providers_app.command("sync")
def providers_sync(provider_id: str) -> None:
    """Fetch the provider's catalog and upsert it, with a progress bar."""
    columns: list[Any] = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=max(total, 1))
            bar.update(tasks[phase], completed=done, total=max(total, 1))

        result = _run(lambda c: c.sync.sync(provider_id, report))
    console.print(
        f"{result.provider_id}: discovered {result.models_discovered}, added {result.models_added}, "
        f"updated {result.models_updated}, removed {result.models_removed} in {result.duration_ms} ms"
    )


@providers_app.command("test")
def providers_test(provider_id: str) -> None:
    """Check that the provider answers with its key."""
    from turnout.catalog.fetch import test_connection
    from turnout.catalog.sync import connection_of

    async def work(c: Container) -> dict[str, Any]:
        async with c.sessions() as session:
            provider = await c.providers.load(session, provider_id)
        key = await c.providers.api_key(provider)
        return await test_connection(c.http.session(), connection_of(provider), key, timeout_s=10)

    result = _run(work)
    colour = "green" if result["ok"] else "red"
    console.print(f"[{colour}]{'ok' if result['ok'] else 'failed'}[/{colour}] {result}")
    if not result["ok"]:
        raise typer.Exit(1)


@models_app.command("list")
def models_list(
    provider: Annotated[str | None, typer.Option()] = None,
    tier: Annotated[str | None, typer.Option(help="free|low|standard|premium")] = None,
    capability: Annotated[list[str] | None, typer.Option(help="repeat; all must be present")] = None,
    q: Annotated[str | None, typer.Option(help="search in id and name")] = None,
    page: int = 1,
    per_page: int = 50,
) -> None:
    """List catalog models."""
    try:
        flt = ModelFilter(provider=provider, cost_tier=tier, capability=capability or [], q=q)
    except ValueError as exc:
        console.print(f"[red]invalid filter:[/red] {exc}")
        raise typer.Exit(2) from None
    result = _run(lambda c: c.models.list(flt, page, per_page))
    table = Table("id", "tier", "priority", "ctx", "capabilities", "available")
    for m in result.items:
        table.add_row(
            m.id,
            m.cost_tier,
            str(m.priority),
            str(m.ctx_length or "-"),
            ",".join(m.capabilities),
            "yes" if m.is_available and m.is_enabled else "no",
        )
    console.print(table)
    console.print(f"page {result.page}, {len(result.items)} of {result.total}")


def main() -> None:
    """Entry point of the ``turnout`` script."""
    app()
