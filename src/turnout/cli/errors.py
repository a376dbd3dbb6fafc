"""One readable line for any error the CLI meets (no pydantic links, no tracebacks)."""

from __future__ import annotations

from typing import NoReturn

import typer
from pydantic import ValidationError


def readable(exc: BaseException) -> str:
    """``exc`` as one line a user can act on."""
    if isinstance(exc, ValidationError):
        parts = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ()))
            message = str(error.get("msg", "invalid"))
            if error.get("type") == "value_error":  # a validator's own words, without pydantic's prefix
                message = message.removeprefix("Value error, ")
            parts.append(f"{where}: {message}" if where else message)
        return "; ".join(parts)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(message).split())


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` as an error line and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
