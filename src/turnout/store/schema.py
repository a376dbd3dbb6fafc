"""Every table of Turnout, registered on one metadata (import this to see the whole schema)."""

from turnout.store import (  # noqa: F401  (registers the tables)
    agents,
    events,
    groups,
    messages,
    priors,
    response_cache,
    responses,
    routing,
    spend,
)
from turnout.store.models import Base

__all__ = ["Base"]
