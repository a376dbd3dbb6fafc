"""The container: every long-lived object of one process, built once and passed around."""

from __future__ import annotations

import asyncio
import gc
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from turnout.agents.model_config import AgentModelService
from turnout.agents.service import AgentService
from turnout.auth.jwt_tokens import JwtCodec
from turnout.catalog.model_service import ModelService
from turnout.catalog.providers import ProviderService
from turnout.catalog.sync import SyncService
from turnout.config import Settings
from turnout.feedback.performance import PerformanceService
from turnout.feedback.recent import RecentDecisions, RecentMessages
from turnout.feedback.service import FeedbackService
from turnout.feedback.sync import FeedbackSync
from turnout.gateway.failover import Caller, RetryPolicy
from turnout.gateway.keys import ProviderKeys
from turnout.gateway.limits import CircuitBreakers, RpmLimiter
from turnout.gateway.pipeline import Gateway
from turnout.gateway.snapshot import SnapshotStore
from turnout.net.http import HttpClient
from turnout.records.writer import RecordWriter
from turnout.routing.admin import RoutingAdmin
from turnout.routing.classifier import TaskClassifier
from turnout.routing.experience import ExperienceStore
from turnout.routing.router import Router, RouterConfig
from turnout.routing.service import RoutingService
from turnout.secrets import SecretStore, build_secret_store
from turnout.store.checkpoint import WalCheckpointer
from turnout.store.db import make_engine, make_sessionmaker
from turnout.timeouts import TimeoutWheel

# A request allocates a few hundred container objects, so the default 700 ran a young collection
# every couple of requests and a full one every second: ~10% of the CPU at saturation and 40 ms
# pauses (bench/gateway_profile.py). Cyclic garbage waits a little longer; memory stays bounded.
GC_THRESHOLDS = (20_000, 50, 100)


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
    sync: SyncService
    agents: AgentService
    agent_models: AgentModelService
    records: RecordWriter
    gateway: Gateway
    experience: ExperienceStore
    routing: RoutingService
    routing_admin: RoutingAdmin
    recent: RecentDecisions
    feedback_sync: FeedbackSync
    feedback: FeedbackService
    performance: PerformanceService
    checkpoints: WalCheckpointer
    timeouts: TimeoutWheel
    started: bool = False
    verified_keys: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> Container:
        """Wire every service from settings; opens no connection yet."""
        engine = make_engine(settings.database_url)
        sessions = make_sessionmaker(engine)
        secrets = build_secret_store(settings, sessions)
        http = HttpClient(settings)
        snapshots = SnapshotStore(sessions, interval_s=settings.snapshot_interval_s)
        keys = ProviderKeys(secrets, settings.secret_cache_ttl_s)

        async def changed() -> None:
            keys.forget()
            await snapshots.refresh()

        providers = ProviderService(
            sessions, secrets, allow_private=settings.allow_private_api_base, on_change=changed
        )
        records = RecordWriter(
            sessions,
            settings.journal_dir or settings.data_dir / "journal",
            batch_size=settings.record_batch_size,
            flush_interval_s=settings.record_flush_interval_s,
        )
        experience = ExperienceStore()
        breakers = CircuitBreakers(settings.breaker_threshold, settings.breaker_cooldown_s)
        router = Router(
            experience,
            RouterConfig(
                w_priority=settings.routing_w_priority,
                w_experience=settings.routing_w_experience,
                exploration=settings.routing_exploration,
                exploration_rate=settings.routing_exploration_rate,
                cost_margin=settings.routing_cost_margin,
                size_exponent=settings.routing_size_exponent,
            ),
        )
        classifier = TaskClassifier.if_available() if settings.task_classifier == "auto" else None
        routing = RoutingService(
            router, breakers, default_model=settings.default_model, classifier=classifier
        )
        recent_messages, recent_decisions = RecentMessages(), RecentDecisions()
        feedback_sync = FeedbackSync(sessions, experience, interval_s=settings.feedback_sync_interval_s)
        timeouts = TimeoutWheel()
        caller = Caller(
            http.session,
            keys,
            breakers,
            RpmLimiter(),
            RetryPolicy(
                settings.retry_max,
                settings.retry_base_delay_s,
                settings.retry_max_delay_s,
                settings.retry_after_max_s,
                settings.first_byte_timeout_s,
            ),
            timeouts,
            on_outcome=lambda model_id, ok, latency_ms: experience.record_outcome(model_id, ok, latency_ms),
        )
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            secrets=secrets,
            http=http,
            jwt=JwtCodec(settings.jwt_secret_value, settings.jwt_algorithm, settings.jwt_default_ttl_s),
            snapshots=snapshots,
            providers=providers,
            models=ModelService(sessions, on_change=snapshots.refresh),
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
            gateway=Gateway(
                snapshots,
                caller,
                records,
                routing,
                recent_messages,
                recent_decisions,
                store_text=settings.store_message_text,
            ),
            experience=experience,
            routing=routing,
            routing_admin=RoutingAdmin(sessions, snapshots),
            recent=recent_decisions,
            feedback_sync=feedback_sync,
            feedback=FeedbackService(sessions, experience, recent_messages, feedback_sync),
            performance=PerformanceService(sessions, experience),
            checkpoints=WalCheckpointer(engine, settings.sqlite_checkpoint_interval_s),
            timeouts=timeouts,
        )

    async def start(self) -> None:
        """Replay journaled records, load the snapshot, start background work (idempotent)."""
        if self.started:
            return
        await self.checkpoints.start()
        await self.records.start()
        await self.snapshots.start()
        await self.feedback_sync.start()
        await self.feedback.start()
        classifier = self.routing.classifier
        if isinstance(classifier, TaskClassifier):
            await asyncio.to_thread(classifier.warm)
        gc.freeze()  # start-up objects (snapshot, vectors) leave the collector's scans: shorter pauses
        gc.set_threshold(*GC_THRESHOLDS)
        self.started = True

    async def aclose(self) -> None:
        """Stop background work, flush records, close connections."""
        if self.started:
            await self.snapshots.stop()
            await self.sync.wait_maintenance()
            await self.records.stop()  # every accepted record stored (or journaled) first
            await self.feedback.stop()  # then ratings are copied onto their stored messages
            await self.feedback_sync.stop()
            self.started = False
        await self.checkpoints.stop()  # after the last writes (or a start that failed half-way)
        await self.timeouts.stop()
        await self.http.close()
        await self.secrets.close()
        await self.engine.dispose()
