"""Small helpers shared by the HTTP modules."""

from __future__ import annotations

from starlette.requests import Request

from turnout.container import Container


def container_of(request: Request) -> Container:
    """The process's container, set on the app by the factory."""
    container: Container = request.app.state.container
    return container
