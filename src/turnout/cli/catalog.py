"""``turnout providers ...`` and ``turnout models ...``: the catalog from the command line."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.auth.principal import Principal
from turnout.catalog.model_service import ModelService
from turnout.catalog.providers import ProviderService
from turnout.catalog.schemas import ModelFilter, ProviderCreate, ProviderFromTemplate
from turnout.catalog.sync import SyncService
from turnout.catalog.templates import TEMPLATES, provider_create, template_for, template_out
from turnout.cli.errors import fail, readable
from turnout.config import Settings
from turnout.errors import TurnoutError
from turnout.net.http import HttpClient
from turnout.providers.registry import PROVIDER_TYPES
from turnout.secrets import build_secret_store
from turnout.store.db import make_engine, make_sessionmaker
from turnout.store.migrate import upgrade_sync

providers_app = typer.Typer(help="Manage providers", no_args_is_help=True)
models_app = typer.Typer(help="Browse the model catalog", no_args_is_help=True)
console = Console()
T = TypeVar("T")
CLI_PRINCIPAL = Principal(subject="cli", tenant_id="platform", roles=frozenset({"platform_admin"}))


@providers_app.callback()
def _providers() -> None:
    """Manage providers."""


@models_app.callback()
def _models() -> None:
    """Browse the model catalog."""


@dataclass
class Catalog:
    """What the catalog commands use: the catalog's services, without the gateway, the router or
    the record writer a ``Container`` brings (seconds of imports for a one-line answer)."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    providers: ProviderService
    models: ModelService
    http: HttpClient
    sync: SyncService


def _run(work: Callable[[Catalog], Awaitable[T]]) -> T:
    """Run ``work`` with the catalog services on a migrated database; errors exit 1 with a message."""
    settings = Settings()
    upgrade_sync(settings.database_url)

    async def main() -> T:
        engine = make_engine(settings.database_url)
        sessions = make_sessionmaker(engine)
        secrets = build_secret_store(settings, sessions)
        http = HttpClient(settings)
        providers = ProviderService(sessions, secrets, allow_private=settings.allow_private_api_base)
        sync = SyncService(sessions, providers, http.session, timeout_s=settings.sync_timeout_s)
        try:
            return await work(Catalog(settings, sessions, providers, ModelService(sessions), http, sync))
        finally:
            await sync.wait_maintenance()
            await http.close()
            await secrets.close()
            await engine.dispose()

    try:
        return asyncio.run(main())
    except TurnoutError as exc:
        fail(f"({exc.status_code}) {exc.message}")


def _key_from_env(name: str | None) -> str | None:
    """The key in environment variable ``name`` (None without one); a variable that is not set
    stops the command, naming it (a typo made a provider without a key)."""
    key = os.environ.get(name) if name else None
    if name and not key:
        fail(f"--api-key-env: environment variable {name} is not set", code=2)
    return key


@providers_app.command("add")
def providers_add(
    provider_id: Annotated[str, typer.Argument(help="slug, e.g. openrouter")],
    provider_type: Annotated[str, typer.Option("--type", help="|".join(PROVIDER_TYPES))],
    api_base: Annotated[str, typer.Option(help="base URL, e.g. https://openrouter.ai/api/v1")],
    display_name: Annotated[str | None, typer.Option(help="name shown in the UI")] = None,
    models_endpoint: Annotated[str | None, typer.Option(help="path of the models list")] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="read the API key from this environment variable")
    ] = None,
    prompt_key: Annotated[bool, typer.Option("--prompt-key", help="ask for the API key (hidden)")] = False,
    rpm: Annotated[int | None, typer.Option(help="rate limit, requests per minute")] = None,
    default_price_input: Annotated[
        float | None, typer.Option(help="USD per 1M input tokens for every synced model")
    ] = None,
    default_price_output: Annotated[
        float | None, typer.Option(help="USD per 1M output tokens for every synced model")
    ] = None,
    free: Annotated[bool, typer.Option("--free", help="every synced model costs 0 (free)")] = False,
    self_hosted: Annotated[
        bool | None,
        typer.Option(
            "--self-hosted/--hosted",
            help="price its models as self-hosted (0) or as the hosted API they are; default: detected",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Register a provider; its key goes to the secret store only.

    Models of a self-hosted provider (Ollama, or an OpenAI-compatible server on localhost, a private
    address or a single-label host such as a Docker service) sync free unless default prices are set.
    """
    if free and (default_price_input is not None or default_price_output is not None):
        fail("--free and --default-price-input/--default-price-output exclude each other", code=2)
    key = _key_from_env(api_key_env)
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
            default_price_input=0 if free else default_price_input,
            default_price_output=0 if free else default_price_output,
            self_hosted=self_hosted,
        )
    except ValueError as exc:
        fail(f"invalid input: {readable(exc)}", code=2)
    out = _run(lambda c: c.providers.create(body, CLI_PRINCIPAL))
    console.print(f"created provider [bold]{out.id}[/bold] (key ref: {out.api_key_ref or 'none'})")


@providers_app.command("templates")
def providers_templates() -> None:
    """Show the known providers `turnout providers from-template` registers."""
    table = Table("template", "name", "type", "api_base", "you give", "prices from", "available")
    for out in map(template_out, TEMPLATES):
        base = out.api_base or f"yours, e.g. {out.api_base_example}"
        prices = "0 (self-hosted)" if out.self_hosted else out.price_id or "guessed per model"
        given = [*out.requires, *(f"credentials.{name}" for name in out.credential_required)]
        available = "yes" if out.available else f"no: {out.unavailable_reason}"
        table.add_row(
            out.id, out.display_name, out.provider_type, base, ", ".join(given) or "-", prices, available
        )
    console.print(table)


@providers_app.command("from-template")
def providers_from_template(
    template: Annotated[str, typer.Argument(help="template id (see `turnout providers templates`)")],
    provider_id: Annotated[str | None, typer.Option("--id", help="slug; default: the template's id")] = None,
    display_name: Annotated[str | None, typer.Option(help="name shown in the UI")] = None,
    api_base: Annotated[
        str | None,
        typer.Option(help="base URL: required for Azure and Hugging Face, else replaces the default"),
    ] = None,
    region: Annotated[str | None, typer.Option(help="e.g. us-east-1 (Bedrock)")] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="read the API key from this environment variable")
    ] = None,
    prompt_key: Annotated[bool, typer.Option("--prompt-key", help="ask for the API key (hidden)")] = False,
    credential_env: Annotated[
        list[str] | None,
        typer.Option(help="FIELD=VAR: read credential FIELD from environment variable VAR; repeat"),
    ] = None,
    rpm: Annotated[int | None, typer.Option(help="rate limit, requests per minute")] = None,
) -> None:
    """Register a known provider from its template: its type, base URL and pricing source are filled in."""
    key = _key_from_env(api_key_env)
    if prompt_key:
        key = typer.prompt("API key", hide_input=True)
    credentials: dict[str, str] = {}
    for pair in credential_env or []:
        field, sep, var = pair.partition("=")
        if not sep or not field or not var:
            fail(f"--credential-env takes FIELD=VAR, not {pair!r}", code=2)
        if not os.environ.get(var):
            fail(f"--credential-env {field}: environment variable {var} is not set", code=2)
        credentials[field] = os.environ[var]
    try:
        body = ProviderFromTemplate.model_validate(
            {"id": provider_id, "display_name": display_name, "api_base": api_base, "region": region,
             "api_key": key, "credentials": credentials or None, "rate_limit_rpm": rpm}
        )  # fmt: skip
        create = provider_create(template_for(template), body)
    except ValueError as exc:
        fail(f"invalid input: {readable(exc)}", code=2)
    except TurnoutError as exc:
        fail(f"invalid input: {exc.message}", code=2)
    out = _run(lambda c: c.providers.create(create, CLI_PRINCIPAL))
    prices = "0, self-hosted" if out.is_self_hosted else f"from {out.pricing_source or 'each model id'}"
    console.print(
        f"created provider [bold]{out.id}[/bold] ({out.provider_type}, {out.api_base}; prices {prices}; "
        f"key ref: {out.api_key_ref or 'none'})"
    )


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

    async def work(c: Catalog) -> dict[str, Any]:
        async with c.sessions() as session:
            provider = await c.providers.load(session, provider_id)
        credentials = await c.providers.credentials(provider)
        return await test_connection(c.http.session(), connection_of(provider), credentials, timeout_s=10)

    result = _run(work)
    status = f"HTTP {result['status']}, " if result.get("status") else ""
    if result["ok"]:
        console.print(
            f"[green]ok[/green]: {provider_id} listed {result['models_found']} models "
            f"({status}{result['latency_ms']} ms)"
        )
        return
    console.print(f"[red]failed[/red]: {provider_id}: {result['error']} ({status}{result['latency_ms']} ms)")
    raise typer.Exit(1)


@models_app.command("list")
def models_list(
    provider: Annotated[str | None, typer.Option()] = None,
    tier: Annotated[str | None, typer.Option(help="free|low|standard|premium")] = None,
    capability: Annotated[list[str] | None, typer.Option(help="repeat; all must be present")] = None,
    q: Annotated[str | None, typer.Option(help="search in id and name")] = None,
    page: Annotated[int, typer.Option(min=1, max=100_000)] = 1,
    per_page: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """List catalog models (pages bounded as the API bounds them)."""
    try:
        flt = ModelFilter(provider=provider, cost_tier=tier, capability=capability or [], q=q)
    except ValueError as exc:
        fail(f"invalid filter: {readable(exc)}", code=2)
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
