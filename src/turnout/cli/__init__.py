"""Command line: ``turnout serve | migrate | token | login-link | providers | models | spend | eval |
simulate``.

Only the commands a user runs import what they need (``cli/lazy.py``): ``turnout token`` reads the
settings and signs a JWT, nothing more. Errors are one readable line and a non-zero exit.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from turnout.cli.errors import fail, readable
from turnout.cli.lazy import LazyCommand, LazyGroup


class _Commands(LazyGroup):
    lazy = {
        "providers": LazyCommand("turnout.cli.catalog:providers_app", "Manage providers"),
        "models": LazyCommand("turnout.cli.catalog:models_app", "Browse the model catalog"),
        "spend": LazyCommand(
            "turnout.cli.spend:spend", "Spend per tenant, agent, key, model, policy or period (table, CSV)"
        ),
        "eval": LazyCommand(
            "turnout.cli.evaluation:eval_app", "Offline evaluation of routing; import evaluations as priors"
        ),
        "simulate": LazyCommand(
            "turnout.simulator.cli:simulate", "Run the provider simulator (OpenAI, Anthropic, Ollama formats)"
        ),
    }


app = typer.Typer(
    cls=_Commands,
    help="Turnout: LLM gateway and intelligent model router",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="bind address", show_default="127.0.0.1, or TURNOUT_HOST")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="port (0: any free one)", show_default="8080, or TURNOUT_PORT"),
    ] = None,
    migrate: Annotated[bool, typer.Option(help="apply migrations first")] = True,
    workers: Annotated[
        int | None, typer.Option(min=1, help="worker processes", show_default="1, or TURNOUT_WORKERS")
    ] = None,
) -> None:
    """Start the gateway (uvicorn, uvloop, httptools)."""
    from turnout import serving
    from turnout.config import Settings

    settings = Settings()
    bind_host = settings.host if host is None else host
    bind_port = settings.port if port is None else port
    serving.preflight(bind_host, bind_port, settings)  # a busy port said before migrating, loading
    if migrate:
        _migrate(settings.database_url)
    serving.serve(
        bind_host, bind_port, workers=workers or settings.workers, settings=settings, on_ready=_banner
    )


def _banner(host: str, port: int) -> None:
    """One line, printed once the port is bound, that a user can copy from whole."""
    url = f"http://{host}:{port}"
    cli = Path(sys.argv[0]).absolute().parent / "turnout"
    token = f"{cli} token --sub admin --tenant platform --role platform_admin"
    print(f"Turnout on {url} | API docs: {url}/docs | admin token: {token}", flush=True)
    if sys.stdout.isatty():  # a person at a terminal (make run): a link to click
        print(f"Web UI, signed in as the platform admin (one use, 15 min): {_admin_link(url)}", flush=True)
    else:  # output kept in a log: no credential in it, every start
        link = f"{cli} login-link --sub admin --tenant platform --role platform_admin --url {url}"
        print(f"Web UI: {url}/ui (a sign-in link: {link})", flush=True)


def _admin_link(url: str) -> str:
    from turnout.api.ui.session import login_link
    from turnout.auth.jwt_tokens import JwtCodec
    from turnout.config import Settings

    settings = Settings()
    codec = JwtCodec(settings.jwt_secret_value, settings.jwt_algorithm)
    return login_link(codec, url, "admin", "platform", ["platform_admin"])


@app.command()
def migrate() -> None:
    """Apply database migrations."""
    from turnout.config import Settings

    settings = Settings()
    where = _where(settings.database_url)
    applied = _migrate(settings.database_url)
    if applied:
        many = "migrations" if len(applied) > 1 else "migration"
        names = ", ".join(applied)
        typer.echo(f"applied {len(applied)} {many} ({names}); database is at {applied[-1]} ({where})")
    else:
        typer.echo(f"database is up to date, nothing to apply ({where})")


@app.command()
def token(
    sub: Annotated[str, typer.Option(help="subject (user id)")],
    tenant: Annotated[str, typer.Option(help="tenant id")],
    role: Annotated[list[str], typer.Option(help="role; repeat for several")],
    ttl: Annotated[int, typer.Option(min=1, help="lifetime in seconds")] = 3600 * 24,
) -> None:
    """Mint a JWT signed with the configured secret (the server's, from any directory)."""
    from turnout.auth.jwt_tokens import JwtCodec
    from turnout.config import Settings
    from turnout.errors import TurnoutError

    settings = Settings()
    try:
        value = JwtCodec(settings.jwt_secret_value, settings.jwt_algorithm).mint(sub, tenant, role, ttl_s=ttl)
    except TurnoutError as exc:
        fail(exc.message)
    typer.echo(value)


@app.command("login-link")
def login_link_command(
    sub: Annotated[str, typer.Option(help="subject (user id)")],
    tenant: Annotated[str, typer.Option(help="tenant id")],
    role: Annotated[list[str], typer.Option(help="role; repeat for several")],
    url: Annotated[
        str | None,
        typer.Option(
            help="the gateway's address", show_default="http://127.0.0.1:8080, or TURNOUT_HOST/PORT"
        ),
    ] = None,
) -> None:
    """A one-time web UI sign-in link (15 minutes) for this subject, tenant and roles."""
    from turnout.api.ui.session import login_link
    from turnout.auth.jwt_tokens import JwtCodec
    from turnout.config import Settings
    from turnout.errors import TurnoutError

    settings = Settings()
    if url is None:
        if settings.port == 0:
            fail("TURNOUT_PORT is 0 (any free port): pass --url with the port the server printed", code=2)
        url = _local_url(settings.host, settings.port)
    try:
        typer.echo(
            login_link(JwtCodec(settings.jwt_secret_value, settings.jwt_algorithm), url, sub, tenant, role)
        )
    except TurnoutError as exc:
        fail(exc.message)


def _local_url(host: str, port: int) -> str:
    """The address a server bound to ``host``:``port`` is reached at from this machine: a wildcard
    address (all interfaces) is reached on loopback, an IPv6 literal goes in brackets."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _migrate(url: str) -> list[str]:
    """Migrate the database (returns the revisions applied), or stop naming the setting when it
    cannot be reached (the error was asyncpg's bare "[Errno 111] Connect call failed ('127.0.0.1', 1)")."""
    from sqlalchemy.exc import DBAPIError

    from turnout.store.migrate import upgrade_sync

    try:
        return upgrade_sync(url)
    except (OSError, TimeoutError, DBAPIError) as exc:
        cause: BaseException = exc
        if isinstance(exc, DBAPIError) and exc.orig is not None:
            cause = exc.orig  # the driver's words, without SQLAlchemy's wrapping and link
        fail(f"the database at TURNOUT_DATABASE_URL ({_where(url)}) cannot be reached: {readable(cause)}")


def _where(url: str) -> str:
    return url.split("///", 1)[1] if url.startswith("sqlite") else url.rsplit("@", 1)[-1]


def main() -> None:
    """Entry point of the ``turnout`` script: any error is one readable line and exit status 1."""
    try:
        app()
    except Exception as exc:  # settings, validation, a database that cannot be reached...
        typer.echo(f"error: {readable(exc)}", err=True)
        sys.exit(1)
