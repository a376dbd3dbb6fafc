"""The messages this replica answered recently, so feedback and decision lookups work before the
batch writer has stored them. Entries are plain tuples and bytes: the garbage collector does not
scan them, so a busy gateway keeps short GC pauses."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class RatedTarget:
    """What a rating is about: whose answer, which model, which task."""

    message_id: str
    tenant_id: str
    agent_id: str | None
    model: str
    task_type: str
    created_at: datetime
    prompt_vector: bytes | None = None  # the prompt's features, when the prompt memory routed it


class RecentMessages:
    """A bounded LRU of recently answered messages (stored as untracked tuples)."""

    def __init__(self, capacity: int = 20_000) -> None:
        self._capacity = capacity
        self._items: OrderedDict[str, tuple[str, str | None, str, str, float, bytes | None]] = OrderedDict()

    def remember(
        self,
        message_id: str,
        tenant_id: str,
        agent_id: str | None,
        model: str,
        task_type: str,
        created: float,
        prompt_vector: bytes | None = None,
    ) -> None:
        """Make an answer ratable (what ``get`` gives back as a RatedTarget); ``created`` in epoch
        seconds. Plain arguments, not a RatedTarget: the gateway calls this for every answer."""
        self._items[message_id] = (tenant_id, agent_id, model, task_type, created, prompt_vector)
        if len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def get(self, message_id: str) -> RatedTarget | None:
        item = self._items.get(message_id)
        if item is None:
            return None
        tenant, agent, model, task, created, vector = item
        return RatedTarget(
            message_id, tenant, agent, model, task, datetime.fromtimestamp(created, UTC), vector
        )


class RecentDecisions:
    """A bounded LRU of routing decisions (stored as JSON bytes), readable before their messages are."""

    def __init__(self, capacity: int = 20_000) -> None:
        self._capacity = capacity
        self._items: OrderedDict[str, list[Any]] = OrderedDict()  # id -> [tenant, decision, outcome]

    def add(self, message_id: str, tenant_id: str, decision_json: bytes) -> None:
        """Keep a decision, already serialised (the gateway writes the same bytes into its record)."""
        self._items[message_id] = [tenant_id, decision_json, None]
        if len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def settle(self, message_id: str, record: dict[str, Any]) -> None:
        """Note how the call ended: which model served (or failed last), after how many attempts."""
        item = self._items.get(message_id)
        if item is not None:
            item[2] = decision_outcome(record)

    def decision(self, message_id: str) -> tuple[str, dict[str, Any]] | None:
        item = self._items.get(message_id)
        if item is None:
            return None
        return item[0], {**orjson.loads(item[1]), "outcome": item[2]}


def _usd(cost: Any) -> float | None:
    return None if cost is None else float(cost)  # a record's Decimal, as JSON carries it


def decision_outcome(record: Any) -> dict[str, Any]:
    """How a routed call ended, from its record (a submitted dict or a stored Message row)."""
    get = record.get if isinstance(record, dict) else lambda key: getattr(record, key)
    return {
        "served_by": get("model") if get("status") == "ok" else None,
        "last_tried": get("model"),
        "provider": get("provider"),
        "fallback_used": get("fallback_used"),
        "attempts": get("attempts"),
        "status": get("status"),
        "cost_usd": _usd(get("cost_usd")),
        "latency_ms": get("latency_ms"),
    }
