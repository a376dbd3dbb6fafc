"""The container: every long-lived object of one process, built once and passed around."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from turnout.agents.model_config import AgentModelService
from turnout.agents.service import AgentService
from turnout.auth.jwt_tokens import JwtCodec
from turnout.catalog.groups import GroupService
from turnout.catalog.model_service import ModelService
from turnout.catalog.providers import ProviderService
from turnout.catalog.sync import SyncService
from turnout.cluster.bus import ChangeBus
from turnout.cluster.pg_bus import PostgresBus, asyncpg_connect_kwargs
from turnout.cluster.rate_limit import RedisRpmLimiter
from turnout.cluster.redis import connect
from turnout.cluster.redis_bus import RedisBus
from turnout.config import Settings
from turnout.conversations.responses import ResponseStore
from turnout.domain.snapshot import SnapshotStore
from turnout.events.commands import CommandServer
from turnout.events.hub import EventHub, FlaggedSink
from turnout.events.nats import NatsEvents
from turnout.events.outbox import Outbox
from turnout.events.webhook_delivery import WebhookDispatcher
from turnout.events.webhooks import WebhookService
from turnout.feedback.performance import PerformanceService
from turnout.feedback.recent import RecentDecisions, RecentMessages
from turnout.feedback.service import FeedbackService
from turnout.feedback.sharing import ExperienceSharing
from turnout.feedback.sync import FeedbackSync
from turnout.gateway.cache import DatabaseAnswers, RedisAnswers, ResponseCache
from turnout.gateway.failover import Caller, RetryPolicy
from turnout.gateway.guards import CircuitBreakers, RateLimiter, RpmLimiter
from turnout.gateway.keys import ProviderKeys
from turnout.gateway.pipeline import Gateway
from turnout.gateway.records import RecordSink
from turnout.metrics import GatewayMetrics, ObservedSink
from turnout.net.http import HttpClient
from turnout.records.access_log import AccessLog
from turnout.records.queries import MessageQueries
from turnout.records.spend import SpendQueries
from turnout.records.writer import RecordWriter
from turnout.routing.admin import RoutingAdmin
from turnout.routing.classifier import TaskClassifier
from turnout.routing.deployments import DeploymentLoad
from turnout.routing.experience import ExperienceStore
from turnout.routing.priors import PriorLoader
from turnout.routing.prompt_memory import PromptMemory
from turnout.routing.router import Router, RouterConfig
from turnout.routing.service import RoutingService
from turnout.secrets import SecretStore, build_secret_store
from turnout.spend.admin import SpendAdmin
from turnout.spend.alerts import BudgetAlerts
from turnout.spend.guard import SpendGuard
from turnout.spend.ledger import Ledger, MemoryLedger
from turnout.spend.redis_ledger import RedisLedger
from turnout.spend.seed import RecordSeed
from turnout.store.db import make_engine, make_sessionmaker
from turnout.store.sqlite.checkpoint import WalCheckpointer
from turnout.timeouts import TimeoutWheel

log = structlog.get_logger(__name__)

PROVIDER_KEYS_EVENT = "provider_keys"  # a provider was added, changed or removed: forget its credentials
READY_TIMEOUT_S = 2.0  # a service slower than this to answer a readiness probe is not ready


@dataclass
class Container:
    """Shared state of one process (no module-level globals)."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    secrets: SecretStore
    http: HttpClient
    jwt: JwtCodec
    snapshots: SnapshotStore
    providers: ProviderService
    models: ModelService
    deployment_groups: GroupService
    sync: SyncService
    agents: AgentService
    agent_models: AgentModelService
    records: RecordWriter
    messages: MessageQueries
    spend_reports: SpendQueries
    gateway: Gateway
    experience: ExperienceStore
    routing: RoutingService
    routing_admin: RoutingAdmin
    recent: RecentDecisions
    feedback_sync: FeedbackSync
    feedback: FeedbackService
    performance: PerformanceService
    sharing: ExperienceSharing
    checkpoints: WalCheckpointer
    timeouts: TimeoutWheel
    spend: SpendGuard
    spend_admin: SpendAdmin
    bus: ChangeBus
    redis: Redis | None
    responses: ResponseStore
    metrics: GatewayMetrics | None
    events: EventHub
    nats: NatsEvents | None
    webhooks: WebhookService
    webhook_dispatcher: WebhookDispatcher
    started: bool = False
    commands: CommandServer | None = None  # served over NATS once it is connected
    verified_keys: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> Container:
        """Wire every service from settings; opens no connection yet."""
        engine = make_engine(settings.database_url)
        sessions = make_sessionmaker(engine)
        secrets = build_secret_store(settings, sessions)
        http = HttpClient(settings)
        redis = (
            connect(settings.redis_url, timeout_s=settings.redis_timeout_s) if settings.redis_url else None
        )
        bus = _change_bus(settings, redis)
        snapshots = SnapshotStore(sessions, interval_s=settings.snapshot_interval_s, publish=bus.publish)
        bus.subscribe(snapshots.on_event)
        keys = ProviderKeys(secrets, settings.secret_cache_ttl_s)

        async def changed() -> None:
            keys.forget()
            bus.publish({"type": PROVIDER_KEYS_EVENT})  # the others drop their cached credentials too
            await snapshots.refresh()

        bus.subscribe(lambda event: keys.forget() if event.get("type") == PROVIDER_KEYS_EVENT else None)

        providers = ProviderService(
            sessions, secrets, allow_private=settings.allow_private_api_base, on_change=changed
        )
        records = RecordWriter(
            sessions,
            settings.journal_dir or settings.data_dir / "journal",
            batch_size=settings.record_batch_size,
            flush_interval_s=settings.record_flush_interval_s,
            durability=settings.record_durability,
            access_log=AccessLog(settings.access_log and settings.log_level.upper() in ("DEBUG", "INFO")),
        )
        experience = ExperienceStore()
        breakers = CircuitBreakers(
            settings.breaker_threshold, settings.breaker_cooldown_s, publish=bus.publish
        )
        bus.subscribe(breakers.on_event)
        limiter: RateLimiter = (
            RpmLimiter()
            if redis is None
            else RedisRpmLimiter(redis, settings.redis_prefix, down=settings.redis_down_limits)
        )
        classifier = TaskClassifier.if_available() if settings.task_classifier == "auto" else None
        # one copy of the shipped word vectors (33 MB once read) serves the built-in classifier, an
        # imported evaluation's tasks and the prompt memory; without the extra there is none
        vectors = classifier or TaskClassifier.if_available()
        prompt_encoder = vectors if settings.prompt_memory else None
        if settings.prompt_memory and prompt_encoder is None:
            structlog.get_logger(__name__).warning(
                "prompt_memory_unavailable", reason="needs the 'classifier' extra (word vectors)"
            )
        memory = PromptMemory() if prompt_encoder is not None else None
        router = Router(
            experience,
            RouterConfig(
                w_priority=settings.routing_w_priority,
                w_experience=settings.routing_w_experience,
                exploration=settings.routing_exploration,
                cost_tradeoff=settings.routing_cost_tradeoff,
            ),
            memory,
        )
        metrics = GatewayMetrics(key_labels=settings.metrics_key_labels) if settings.metrics else None
        outbox = Outbox(sessions, retention=timedelta(days=settings.events_retention_days))
        events = EventHub(sessions, outbox, nats=settings.nats_url is not None)
        nats_events = (
            NatsEvents(settings.nats_url, sessions, outbox, stream=settings.nats_stream)
            if settings.nats_url
            else None
        )
        if nats_events is not None:
            events.notify(nats_events.wake)
        sink: RecordSink = FlaggedSink(records, events)
        if metrics is not None:
            sink = ObservedSink(sink, metrics)
        load = DeploymentLoad()  # deployment-group members' load: failover feeds it, routing reads it
        # imported evaluations (their prior experience and task classifier), kept by the feedback sync;
        # their classifier reads the word vectors whether or not the built-in one is on
        priors = PriorLoader(experience, vectors, memory)
        routing = RoutingService(
            router,
            breakers,
            default_model=settings.default_model,
            classifier=classifier,
            load=load,
            priors=priors,
            prompt_encoder=prompt_encoder,
        )
        seed = RecordSeed(sessions)
        ledger: Ledger = (
            RedisLedger(redis, seed, prefix=settings.redis_prefix)
            if redis is not None
            else MemoryLedger(seed)
        )
        spend = SpendGuard(
            ledger,
            BudgetAlerts(sessions),
            budgets_when_down=settings.redis_down_budgets,
            limits_when_down=settings.redis_down_limits,
            publish=bus.publish,
        )
        bus.subscribe(spend.on_event)
        routing.steer = spend.steering
        if metrics is not None:
            routing.observe = metrics.on_routed
            metrics.watch(breakers, records, spend, snapshots)
        recent_messages, recent_decisions = RecentMessages(), RecentDecisions()
        feedback_sync = FeedbackSync(
            sessions, experience, interval_s=settings.feedback_sync_interval_s, priors=priors, memory=memory
        )
        timeouts = TimeoutWheel()
        caller = Caller(
            http.session,
            keys,
            breakers,
            limiter,
            RetryPolicy(
                settings.retry_max,
                settings.retry_base_delay_s,
                settings.retry_max_delay_s,
                settings.retry_after_max_s,
                settings.first_byte_timeout_s,
                settings.http_total_timeout_s,
            ),
            timeouts,
            on_outcome=lambda model_id, ok, latency_ms: experience.record_outcome(model_id, ok, latency_ms),
            load=load,
        )
        webhook_dispatcher = WebhookDispatcher(
            sessions,
            secrets,
            http.session,
            allow_private=settings.allow_private_api_base,
            retry_base_s=settings.webhook_retry_base_s,
            retry_max_s=settings.webhook_retry_max_s,
            max_attempts=settings.webhook_max_attempts,
            timeout_s=settings.webhook_timeout_s,
            concurrency=settings.webhook_concurrency,
            hooks_active=lambda: events.hooks,
        )
        events.notify(webhook_dispatcher.wake)
        container = cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            secrets=secrets,
            http=http,
            jwt=JwtCodec(settings.jwt_secret_value, settings.jwt_algorithm, settings.jwt_default_ttl_s),
            snapshots=snapshots,
            providers=providers,
            models=ModelService(sessions, on_change=snapshots.refresh),
            deployment_groups=GroupService(sessions, snapshots),
            sync=SyncService(
                sessions,
                providers,
                http.session,
                timeout_s=settings.sync_timeout_s,
                on_change=snapshots.trigger,
            ),
            agents=AgentService(sessions, snapshots),
            agent_models=AgentModelService(sessions, snapshots),
            records=records,
            messages=MessageQueries(sessions, records.flush),
            spend_reports=SpendQueries(sessions),
            gateway=Gateway(
                snapshots,
                caller,
                sink,
                routing,
                recent_messages,
                recent_decisions,
                store_text=settings.store_message_text,
                spend=spend,
                cache=ResponseCache(
                    RedisAnswers(redis, settings.redis_prefix) if redis else DatabaseAnswers(sessions),
                    memory_bytes=int(settings.response_cache_memory_mb * 1024 * 1024),
                ),
            ),
            experience=experience,
            routing=routing,
            routing_admin=RoutingAdmin(sessions, snapshots, settings.routing_cost_tradeoff),
            recent=recent_decisions,
            feedback_sync=feedback_sync,
            feedback=FeedbackService(sessions, experience, recent_messages, feedback_sync, memory),
            performance=PerformanceService(sessions, feedback_sync),
            sharing=ExperienceSharing(sessions, snapshots),
            checkpoints=WalCheckpointer(engine, settings.sqlite_checkpoint_interval_s),
            timeouts=timeouts,
            spend=spend,
            spend_admin=SpendAdmin(sessions, snapshots, spend),
            bus=bus,
            redis=redis,
            responses=ResponseStore(sessions),
            metrics=metrics,
            events=events,
            nats=nats_events,
            webhooks=WebhookService(
                sessions, secrets, allow_private=settings.allow_private_api_base, wake=webhook_dispatcher.wake
            ),
            webhook_dispatcher=webhook_dispatcher,
        )
        container.webhooks.subscribed = events.subscribed
        if metrics is not None:
            metrics.watch_outbox(functools.partial(outbox.backlog, nats=settings.nats_url is not None))
        return container

    async def readiness(self, timeout_s: float = READY_TIMEOUT_S) -> dict[str, str]:
        """Whether the services this gateway was set up with answer now: the database, the secret
        store (Vault unsealed and its token valid; the local store's table), and Redis when
        configured (``ok``, or why not), each within ``timeout_s``."""
        checks: dict[str, str] = {}

        async def database() -> None:
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")

        probes: dict[str, Callable[[], Awaitable[Any]]] = {
            "database": database,
            "secret_store": self.secrets.check,
        }
        if self.redis is not None:
            probes["redis"] = self.redis.ping
        for name, probe in probes.items():
            checks[name] = await _answer(probe, timeout_s)
        return checks

    async def start(self) -> None:
        """Open the records' journal, load the snapshot, start background work (idempotent)."""
        if self.started:
            return
        await self.checkpoints.start()
        await self.records.start()
        await self.webhook_dispatcher.start()
        await self.events.check_webhooks()  # do calls produce events from the first one on?
        self.events.start()
        if self.nats is not None:
            self.commands = CommandServer(
                self.jwt, self.models, self.performance, self.gateway.cancel, self.gateway.cancel_named
            )
            self.nats.on_connect(self.commands.start)
            self.nats.start()  # connects in the background: a NATS that is down delays no start
        await self.bus.start()  # subscribed before the snapshot loads: no change falls in between
        await self.snapshots.start()
        await self.feedback_sync.start()
        await self.feedback.start()
        if self.metrics is not None:
            self.metrics.start()
        classifier = self.routing.classifier
        if isinstance(classifier, TaskClassifier):
            await asyncio.to_thread(classifier.warm)
        await self._check_secrets()
        self.started = True

    async def _check_secrets(self) -> None:
        """Say at start-up when the secret store cannot serve keys (a wrong Vault token, a sealed
        Vault): every call to a keyed provider would fail until it can. Not fatal: Vault may be
        unsealed later, and ``/readyz`` keeps saying so until then."""
        answer = await _answer(self.secrets.check, READY_TIMEOUT_S)
        if answer != "ok":
            log.error("secrets.unavailable", error=answer)

    async def aclose(self) -> None:
        """Stop background work, flush records, close connections."""
        if self.started:
            if self.metrics is not None:
                await self.metrics.stop()
            await self.snapshots.stop()
            await self.bus.stop()
            await self.sync.wait_maintenance()
            await self.spend.drain()  # settles in flight reach the ledger, alerts the database
            await self.spend.ledger.aclose()
            await self.webhook_dispatcher.stop()
            await self.records.stop()  # accepted records stored, or left in the journal for the next start
            await self.events.stop()  # the last records' events into the outbox
            if self.commands is not None:
                await self.commands.stop()
            if self.nats is not None:
                await self.nats.stop()
            await self.feedback.stop()  # then ratings are copied onto their stored messages
            await self.feedback_sync.stop()
            self.started = False
        if self.gateway.cache is not None:
            await self.gateway.cache.aclose()  # cached answers in flight to their store
        await self.checkpoints.stop()  # after the last writes (or a start that failed half-way)
        await self.timeouts.stop()
        await self.http.close()
        await self.secrets.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()


def _change_bus(settings: Settings, redis: Redis | None) -> ChangeBus:
    """How this replica hears the others' changes: Redis pub/sub, else PostgreSQL LISTEN/NOTIFY,
    else nobody to hear (SQLite is one process)."""
    channel = f"{settings.redis_prefix}changes"
    if redis is not None:
        return RedisBus(redis, channel)
    if settings.database_url.startswith("postgresql"):
        return PostgresBus(asyncpg_connect_kwargs(settings.database_url), channel)
    return ChangeBus()


async def _answer(probe: Callable[[], Awaitable[Any]], timeout_s: float) -> str:
    """``ok`` when ``probe`` returns within ``timeout_s``, else why not, in one short line."""
    try:
        await asyncio.wait_for(probe(), timeout_s)
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except Exception as exc:  # any failure of the service is its answer here
        return f"{type(exc).__name__}: {exc}"[:200]
    return "ok"
