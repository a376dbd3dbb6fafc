"""Prometheus metrics of one process: what the gateway served, what it cost, how routing chose, and
the state operators watch (breakers, the record writer's backlog, budgets).

Counters and histograms are fed from the finished call records (``observe``), so they agree with
the records by construction. Records are counted a batch at a time (64, or every second, or at a
scrape): each label set is incremented once per batch, which cut the metrics' CPU per call by
about half against incrementing per call. Gauges are sampled (``refresh``): before every scrape and every
few seconds, which is how they reach the other workers' scrapes in multiprocess mode.

Labels are bounded: model, provider, dialect, status, task and the like; an API key label only when
``key_labels`` is set. With several workers ``turnout serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at
a folder of its own before they start, and a scrape sums them (``MultiProcessCollector``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Mapping
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
from turnout.spend.ledger import BudgetHold, LedgerUnavailable, usd_of
from turnout.tasks import cancel_and_wait

log = structlog.get_logger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
REFRESH_S = 5.0  # gauges sampled this often between scrapes
FLUSH_EVERY = 64  # records counted in one go (and at least every FLUSH_S, and at each scrape)
FLUSH_S = 1.0
MAX_CALLER_TASKS = 64  # task labels callers' own task_type values may add; past them: OTHER_TASK
OTHER_TASK = "other"


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
        self.rejected = Counter(
            "turnout_rejected_requests",
            "Requests refused before they became calls (no record): bad credentials, bodies, paths",
            ["api", "status", "code"],
            registry=reg,
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
        self._rows: list[Mapping[str, Any]] = []  # records not yet counted (see observe)
        self._routed: list[tuple[str, str, bool]] = []  # decisions not yet counted: task, model, explored
        self._caller_tasks: set[str] = set()  # the task_type values callers gave that have a label
        self._open: set[str] = set()  # models whose breaker gauge is 1
        self._budgets: set[tuple[str, ...]] = set()  # label tuples of the budget gauges set
        self._sources: tuple[CircuitBreakers, RecordWriter, SpendGuard, SnapshotStore] | None = None
        self._task: asyncio.Task[None] | None = None
        self._backlog: Callable[[], Awaitable[tuple[int, int]]] | None = None
        self.outbox_backlog = Gauge(
            "turnout_outbox_backlog",
            "Events in the outbox not yet delivered to a sink (nats, webhooks)",
            ["sink"],
            registry=reg,
            multiprocess_mode="max",
        )

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
        """Count one finished call record (in the next ``flush``: a few records at a time, so that
        each label set is incremented once per batch rather than once per call)."""
        self._rows.append(row)
        if len(self._rows) >= FLUSH_EVERY:
            self.flush()

    def on_rejected(self, api: str, status: int, code: str) -> None:
        """Count one request refused before it became a call (``api.rejections``)."""
        self.rejected.labels(api, str(status), code).inc()

    def on_routed(self, routed: Routed) -> None:
        """Count one routing decision of the router (not a model the caller named)."""
        if routed.plan:
            task = self._task_label(routed.detection.task_type, routed.detection.source)
            self._routed.append((task, routed.plan[0].id, routed.decision.explored))

    def _task_label(self, task: str, source: str) -> str:
        """A detected task is its own label (detection names a bounded set: the task maps', the
        classifier's, an imported evaluation's); a caller's own ``task_type`` is free text, so
        at most ``MAX_CALLER_TASKS`` of those get a label of their own, the rest ``other``."""
        if source != "explicit" or task in self._caller_tasks:
            return task
        if len(self._caller_tasks) < MAX_CALLER_TASKS:
            self._caller_tasks.add(task)
            return task
        return OTHER_TASK

    def flush(self) -> None:
        """Move the records and decisions counted since the last flush into the metrics."""
        rows, self._rows = self._rows, []
        decisions, self._routed = self._routed, []
        sums: dict[tuple[Any, ...], float] = {}
        timings: dict[tuple[Any, ...], list[float]] = {}
        keys = self.key_labels
        for row in rows:
            model = row["model"] or "none"
            provider = row["provider"] or "none"
            dialect = row["dialect"]
            key = (row["api_key_id"] or "none",) if keys else ()
            cache = "hit" if row["cache_hit"] else "miss"
            labels = (self.requests, model, provider, dialect, row["status"], cache, *key)
            sums[labels] = sums.get(labels, 0) + 1
            if prompt := row["prompt_tokens"]:
                labels = (self.tokens, model, provider, "input")
                sums[labels] = sums.get(labels, 0) + prompt
            if completion := row["completion_tokens"]:
                labels = (self.tokens, model, provider, "output")
                sums[labels] = sums.get(labels, 0) + completion
            if cost := row["cost_usd"]:
                labels = (self.cost, model, provider, *key)
                sums[labels] = sums.get(labels, 0) + float(cost)
            timings.setdefault((self.latency, model, provider, dialect), []).append(row["latency_ms"] / 1000)
            if row["stream"] and (ttft := row["ttft_ms"]) is not None:
                timings.setdefault((self.ttft, model, provider), []).append(ttft / 1000)
            if (attempts := row["attempts"]) and attempts > 1:
                labels = (self.retries, model)
                sums[labels] = sums.get(labels, 0) + attempts - 1
            if row["fallback_used"]:
                labels = (self.fallbacks, model)
                sums[labels] = sums.get(labels, 0) + 1
        for task, model, explored in decisions:
            labels = (self.routed, task, model)
            sums[labels] = sums.get(labels, 0) + 1
            if explored:
                labels = (self.explored, task)
                sums[labels] = sums.get(labels, 0) + 1
        for (metric, *values), amount in sums.items():
            self._child(metric, *values).inc(amount)
        for (metric, *values), seconds in timings.items():
            child = self._child(metric, *values)
            for value in seconds:
                child.observe(value)

    # -- sampled ----------------------------------------------------------------------------------

    def watch(
        self, breakers: CircuitBreakers, records: RecordWriter, spend: SpendGuard, snapshots: SnapshotStore
    ) -> None:
        """Where ``refresh`` samples the gauges from."""
        self._sources = (breakers, records, spend, snapshots)

    def watch_outbox(self, backlog: Callable[[], Awaitable[tuple[int, int]]]) -> None:
        """Where ``refresh`` reads the outbox's backlog: (not yet on NATS, not yet fanned out)."""
        self._backlog = backlog

    async def refresh(self) -> None:
        """Count what is pending; sample the gauges: breakers, the writer's backlog, every budget's
        current period."""
        self.flush()
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
        if self._backlog is not None:
            nats, hooks = await self._backlog()
            self.outbox_backlog.labels("nats").set(nats)
            self.outbox_backlog.labels("webhooks").set(hooks)
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
            self.budget_spent.labels(*labels).set(usd_of(spent))
            self.budget_reserved.labels(*labels).set(usd_of(reserved))
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
        await cancel_and_wait(self._task)
        self._task = None

    async def _loop(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(FLUSH_S)
            ticks += 1
            try:
                if ticks % int(REFRESH_S / FLUSH_S) == 0:
                    await self.refresh()
                else:
                    self.flush()
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
