"""Rendering the UI's pages: one Jinja2 environment over the package's templates (autoescaped), and
the error text a form shows next to its field."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse

from turnout import __version__
from turnout.api.ui.session import UiUser, check_csrf
from turnout.errors import InvalidRequest, TurnoutError

TEMPLATES = Path(__file__).parent / "templates"
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(), auto_reload=False)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "never"


def _usd(value: float | None, per: str = "") -> str:
    if value is None:
        return "-"
    return f"${value:,.2f}{per}" if value >= 1 else f"${value:.4f}{per}".rstrip("0").rstrip(".")


def _bars(values: list[float], width: int = 160, height: int = 28) -> Markup:
    """A small inline SVG bar chart (server-drawn: no chart script to ship or load)."""
    if not values:
        return Markup("")
    top = max(values) or 1.0
    step = width / len(values)
    bars = "".join(
        f'<rect x="{i * step:.1f}" y="{height - v / top * height:.1f}" width="{max(step - 1, 1):.1f}" '
        f'height="{v / top * height:.1f}"></rect>'
        for i, v in enumerate(values)
    )
    svg = f'<svg class="bars" width="{width}" height="{height}" role="img" aria-label="trend">{bars}</svg>'
    return Markup(svg)  # noqa: S704 - built from numbers only


_env.filters["when"] = _when
_env.filters["bars"] = _bars
_env.filters["usd"] = _usd


def render_fragment(template: str, user: UiUser | None, **context: Any) -> str:
    """A template's HTML as text (for a fragment sent inside a stream)."""
    return _env.get_template(template).render(user=user, version=__version__, **context)


def page(
    request: Request, user: UiUser | None, template: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A whole page (or, for an htmx request asking for ``partial``, just that template)."""
    html = _env.get_template(template).render(request=request, user=user, version=__version__, **context)
    return HTMLResponse(html, status_code=status_code, headers={"cache-control": "no-store"})


async def read_form(request: Request) -> FormData:
    """The posted form; a NUL in any field is a 400 naming it (no column stores one)."""
    form = await request.form()
    for name, value in form.multi_items():
        if isinstance(value, str) and "\x00" in value:
            raise InvalidRequest(f"{name} contains a NUL character", param=name)
    return form


async def posted_form(request: Request, user: UiUser) -> FormData:
    """A change's form, once its CSRF token is this session's (``read_form`` plus ``check_csrf``)."""
    form = await read_form(request)
    check_csrf(user, str(form.get("csrf") or ""))
    return form


def field_errors(exc: ValidationError) -> dict[str, str]:
    """Pydantic's errors by field name, as a form shows them next to each field."""
    out: dict[str, str] = {}
    for error in exc.errors():
        name = ".".join(str(part) for part in error.get("loc", ())) or "form"
        out.setdefault(name, str(error.get("msg", "invalid")))
    return out


def service_error(exc: TurnoutError) -> dict[str, str]:
    """A service's refusal, under the field it names (else the form's own error line)."""
    return {exc.param or "form": exc.message}
