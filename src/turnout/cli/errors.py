"""One readable line for any error the CLI meets (no pydantic links, no tracebacks)."""

from __future__ import annotations

from typing import NoReturn

import typer
from pydantic import ValidationError

from turnout.errors import fields_message


def readable(exc: BaseException) -> str:
    """``exc`` as one line a user can act on."""
    if isinstance(exc, ValidationError):  # every bad field once, in the API's and NATS's words
        return fields_message(exc.errors())[0]
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(message).split())


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` as an error line and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
