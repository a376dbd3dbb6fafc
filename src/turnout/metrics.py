"""Prometheus metrics of one process: what the gateway served, what it cost, how routing chose, and
the state operators watch (breakers, the record writer's backlog, budgets).

Counters and histograms are fed from the finished call records (``observe``), so they agree with
the records by construction; label children are cached per label tuple, so a record costs a few
dictionary look-ups and increments. Gauges are sampled (``refresh``): before every scrape and every
few seconds, which is how they reach the other workers' scrapes in multiprocess mode.

Labels are bounded: model, provider, dialect, status, task and the like; an API key label only when
``key_labels`` is set. With several workers ``turnout serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at
a folder of its own before they start, and a scrape sums them (``MultiProcessCollector``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Mapping
from typing import Any

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from turnout.domain.snapshot import SnapshotStore
from turnout.gateway.guards import CircuitBreakers
from turnout.gateway.records import RecordSink
from turnout.records.writer import RecordWriter
from turnout.routing.service import Routed
from turnout.spend.guard import SpendGuard
from turnout.spend.ledger import BudgetHold, LedgerUnavailable

log = structlog.get_logger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
REFRESH_S = 5.0  # gauges sampled this often between scrapes


def multiprocess() -> bool:
    """Are the metrics of several worker processes summed from a shared folder?"""
    return bool(os.environ.get(MULTIPROC_ENV))


def render_multiprocess() -> bytes:
    """Every worker's metrics, summed from the shared folder (the ``turnout serve`` parent's port)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return generate_latest(registry)


class GatewayMetrics:
    """The process's metrics, in a registry of their own (tests build many gateways per process)."""

    def __init__(self, *, key_labels: bool = False) -> None:
        self.registry = CollectorRegistry()
        self.key_labels = key_labels
        reg = self.registry
        request_labels = ["model", "provider", "dialect", "status", "cache"]
        cost_labels = ["model", "provider"]
        if key_labels:
            request_labels.append("api_key")
            cost_labels.append("api_key")
        self.requests = Counter(
            "turnout_requests", "Calls answered or failed, by served model", request_labels, registry=reg
        )
        self.tokens = Counter(
            "turnout_tokens",
            "Tokens in (prompt) and out (completion)",
            ["model", "provider", "direction"],
            registry=reg,
        )
        self.cost = Counter("turnout_cost_usd", "Cost of the calls in USD", cost_labels, registry=reg)
        self.latency = Histogram(
            "turnout_request_duration_seconds",
            "Time from the request to its last byte",
            ["model", "provider", "dialect"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.ttft = Histogram(
            "turnout_time_to_first_token_seconds",
            "Time from the request to the first streamed token",
            ["model", "provider"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.retries = Counter(
            "turnout_retries", "Upstream attempts beyond the first, by served model", ["model"], registry=reg
        )
        self.fallbacks = Counter(
            "turnout_fallbacks", "Calls answered by a model after another failed", ["model"], registry=reg
        )
        self.routed = Counter(
            "turnout_routing_decisions",
            "Models chosen by the router (model: auto), by task",
            ["task", "model"],
            registry=reg,
        )
        self.explored = Counter(
            "turnout_routing_explorations", "Router choices that explored, by task", ["task"], registry=reg
        )
        self.breaker_open = Gauge(
            "turnout_breaker_open",
            "1 while a model's circuit breaker is open (skipped for everyone)",
            ["model"],
            registry=reg,
            multiprocess_mode="max",
        )
        self.queue_depth = Gauge(
            "turnout_record_queue_depth",
            "Call records waiting for the database",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.journal_bytes = Gauge(
            "turnout_record_journal_bytes",
            "Bytes in the records' write-ahead journal",
            registry=reg,
            multiprocess_mode="livesum",
        )
        budget_labels = ["budget", "name", "scope", "period"]
        self.budget_spent = Gauge(
            "turnout_budget_spent_usd",
            "Spent in the budget's current period",
            budget_labels,
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.budget_reserved = Gauge(
            "turnout_budget_reserved_usd",
            "Reserved by calls in flight",
            budget_labels,
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.budget_amount = Gauge(
            "turnout_budget_amount_usd",
            "The budget's amount per period",
            budget_labels,
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self._children: dict[tuple[Any, ...], Any] = {}
        self._open: set[str] = set()  # models whose breaker gauge is 1
        self._budgets: set[tuple[str, ...]] = set()  # label tuples of the budget gauges set
        self._sources: tuple[CircuitBreakers, RecordWriter, SpendGuard, SnapshotStore] | None = None
        self._task: asyncio.Task[None] | None = None

    def _child(self, metric: Any, *values: Any) -> Any:
        key = (id(metric), *values)
        child = self._children.get(key)
        if child is None:
            if len(self._children) > 50_000:  # a runaway label set: start over rather than grow
                self._children.clear()
            child = self._children[key] = metric.labels(*values)
        return child

    # -- fed by the request path ------------------------------------------------------------------

    def observe(self, row: Mapping[str, Any]) -> None:
        """Count one finished call record."""
        model = row["model"] or "none"
        provider = row["provider"] or "none"
        dialect = row["dialect"]
        cache = "hit" if row["cache_hit"] else "miss"
        if self.key_labels:
            key = row["api_key_id"] or "none"
            self._child(self.requests, model, provider, dialect, row["status"], cache, key).inc()
        else:
            self._child(self.requests, model, provider, dialect, row["status"], cache).inc()
        prompt, completion = row["prompt_tokens"], row["completion_tokens"]
        if prompt:
            self._child(self.tokens, model, provider, "input").inc(prompt)
        if completion:
            self._child(self.tokens, model, provider, "output").inc(completion)
        cost = row["cost_usd"]
        if cost:
            labels = (model, provider, row["api_key_id"] or "none") if self.key_labels else (model, provider)
            self._child(self.cost, *labels).inc(float(cost))
        self._child(self.latency, model, provider, dialect).observe(row["latency_ms"] / 1000)
        ttft = row["ttft_ms"]
        if ttft is not None and row["stream"]:
            self._child(self.ttft, model, provider).observe(ttft / 1000)
        attempts = row["attempts"]
        if attempts and attempts > 1:
            self._child(self.retries, model).inc(attempts - 1)
        if row["fallback_used"]:
            self._child(self.fallbacks, model).inc()

    def on_routed(self, routed: Routed) -> None:
        """Count one routing decision of the router (not a model the caller named)."""
        if not routed.plan:
            return
        task = routed.decision.task_type
        self._child(self.routed, task, routed.plan[0].id).inc()
        if routed.decision.explored:
            self._child(self.explored, task).inc()

    # -- sampled ----------------------------------------------------------------------------------

    def watch(
        self, breakers: CircuitBreakers, records: RecordWriter, spend: SpendGuard, snapshots: SnapshotStore
    ) -> None:
        """Where ``refresh`` samples the gauges from."""
        self._sources = (breakers, records, spend, snapshots)

    async def refresh(self) -> None:
        """Sample the gauges: breakers, the writer's backlog, every budget's current period."""
        if self._sources is None:
            return
        breakers, records, spend, snapshots = self._sources
        open_now = set(breakers.open_models())
        for model in self._open - open_now:
            self.breaker_open.labels(model).set(0)
        for model in open_now:
            self.breaker_open.labels(model).set(1)
        self._open = open_now
        self.queue_depth.set(records.pending)
        self.journal_bytes.set(records.journal_bytes)
        await self._refresh_budgets(spend, snapshots)

    async def _refresh_budgets(self, spend: SpendGuard, snapshots: SnapshotStore) -> None:
        now = spend.clock()
        seen: set[tuple[str, ...]] = set()
        budgets = [b for group in snapshots.current.budgets.values() for b in group]
        for budget in budgets:
            labels = (budget.id, budget.name, budget.scope, budget.period)
            try:
                spent, reserved = await spend.ledger.balance(BudgetHold.at(budget, now))
            except LedgerUnavailable:
                continue  # keeps the last value seen
            seen.add(labels)
            self.budget_spent.labels(*labels).set(spent / 1e6)
            self.budget_reserved.labels(*labels).set(reserved / 1e6)
            self.budget_amount.labels(*labels).set(budget.amount_usd)
        for gone in self._budgets - seen:  # deleted budgets leave the scrape
            for gauge in (self.budget_spent, self.budget_reserved, self.budget_amount):
                with contextlib.suppress(KeyError):
                    gauge.remove(*gone)
        self._budgets = seen

    async def render(self) -> bytes:
        """The text a scrape gets: this process's metrics, or every worker's in multiprocess mode."""
        await self.refresh()
        return render_multiprocess() if multiprocess() else generate_latest(self.registry)

    # -- background sampling ----------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="metrics-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            try:
                await self.refresh()
            except Exception:
                log.exception("metrics.refresh_failed")


class ObservedSink:
    """The record sink the gateway writes to, counting each record on its way to the writer."""

    def __init__(self, sink: RecordSink, metrics: GatewayMetrics) -> None:
        self._submit = sink.submit
        self._observe = metrics.observe

    def submit(self, record: dict[str, Any]) -> Awaitable[None] | None:
        self._observe(record)
        return self._submit(record)
