"""Every table of Turnout, registered on one metadata (import this to see the whole schema)."""

from turnout.store import agents, messages, responses, routing, spend  # noqa: F401  (registers the tables)
from turnout.store.models import Base

__all__ = ["Base"]
