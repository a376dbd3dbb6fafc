"""The messages this replica answered recently, so feedback can be attributed before the
batch writer has stored them."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class RatedTarget:
    """What a rating is about: whose answer, which model, which task."""

    message_id: str
    tenant_id: str
    agent_id: str | None
    model: str
    task_type: str
    created_at: datetime


class RecentMessages:
    """A bounded LRU of recently answered messages."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._capacity = capacity
        self._items: OrderedDict[str, RatedTarget] = OrderedDict()

    def add(self, target: RatedTarget) -> None:
        self._items[target.message_id] = target
        if len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def get(self, message_id: str) -> RatedTarget | None:
        return self._items.get(message_id)


class RecentDecisions:
    """A bounded LRU of routing decisions, readable before their messages are stored."""

    def __init__(self, capacity: int = 50_000) -> None:
        self._capacity = capacity
        self._items: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()

    def add(self, message_id: str, tenant_id: str, decision: dict[str, Any]) -> None:
        self._items[message_id] = (tenant_id, decision)
        if len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def decision(self, message_id: str) -> tuple[str, dict[str, Any]] | None:
        return self._items.get(message_id)
