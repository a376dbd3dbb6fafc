"""Traces as an operator's collector receives them: a live gateway exporting OTLP/HTTP to a local
receiver, driven with the official SDKs. One server span per data-plane request, a routing child and
one CLIENT child per upstream attempt, GenAI attributes, W3C trace context in and out, and prompt
text only where the gateway may store text.

The gateway's tracing is process-wide, so one traced gateway serves the whole module (the gateway
without an endpoint is tested in ``test_traces_off.py``)."""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
import pytest_asyncio

from tests.gateway_env import ANTHROPIC_MODEL, OPENAI_MODEL, OPENAI_MODEL_2, SIM_KEY, GatewayEnv, gateway
from tests.otlp_receiver import CLIENT, ERROR, SERVER, Receiver, SpanView, otlp_receiver

pytestmark = pytest.mark.asyncio(loop_scope="module")

HELLO: Any = [{"role": "user", "content": "hello"}]
PROVIDER_NAMES = {"oai": "openai", "claude": "anthropic", "local": "ollama"}


@dataclass
class Traced:
    gw: GatewayEnv
    receiver: Receiver


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def traced(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Traced]:
    """A gateway exporting to a local receiver (batches sent every 50 ms), text not stored."""
    with otlp_receiver() as (url, receiver), pytest.MonkeyPatch.context() as env:
        env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
        env.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"):
            env.delenv(name, raising=False)
        async with gateway(tmp_path_factory.mktemp("traces"), store_message_text=False) as gw:
            yield Traced(gw, receiver)


def _one(spans: list[SpanView], kind: int, name: str | None = None) -> SpanView:
    found = [s for s in spans if s.kind == kind and (name is None or s.name == name)]
    assert len(found) == 1, [(s.name, s.kind) for s in spans]
    return found[0]


def _attempts(spans: list[SpanView]) -> list[SpanView]:
    return sorted((s for s in spans if s.kind == CLIENT), key=lambda s: s.attributes["turnout.attempt"])


async def test_a_routed_call_is_a_server_span_with_routing_and_attempt_children(traced: Traced) -> None:
    gw = traced.gw
    raw = await gw.openai().chat.completions.with_raw_response.create(model="auto", messages=HELLO)
    answer = raw.parse()
    spans = await traced.receiver.trace_of(raw.headers["x-turnout-message-id"])
    server = _one(spans, SERVER)
    routing = _one(spans, 1, "turnout.route")
    (attempt,) = _attempts(spans)

    assert server.name == "POST /v1/chat/completions" and server.parent_id == ""
    assert server.service == "turnout"
    assert routing.parent_id == server.span_id and attempt.parent_id == server.span_id
    served, provider = raw.headers["x-turnout-model"], raw.headers["x-turnout-provider"]
    assert answer.usage is not None
    expected = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "auto",
        "gen_ai.response.model": answer.model,
        "gen_ai.provider.name": PROVIDER_NAMES[provider],
        "gen_ai.system": PROVIDER_NAMES[provider],
        "gen_ai.usage.input_tokens": answer.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": answer.usage.completion_tokens,
        "turnout.model_id": served,
        "turnout.provider_id": provider,
        "turnout.attempts": 1,
        "turnout.fallback_used": False,
        "http.response.status_code": 200,
    }
    assert {k: server.attributes.get(k) for k in expected} == expected
    assert server.status != ERROR and "error.type" not in server.attributes
    assert server.attributes["turnout.cost_usd"] == pytest.approx(float(raw.headers["x-turnout-cost-usd"]))
    assert server.attributes["turnout.task_type"] == routing.attributes["turnout.task_type"]
    assert routing.attributes["turnout.route.models"][0] == served

    external = served.split("/", 1)[1]  # the provider's own name of the model
    assert attempt.name == f"chat {external}"
    assert attempt.attributes["gen_ai.request.model"] == external
    assert attempt.attributes["gen_ai.provider.name"] == PROVIDER_NAMES[provider]
    assert attempt.attributes["turnout.model_id"] == served
    assert attempt.attributes["http.response.status_code"] == 200
    assert attempt.attributes["gen_ai.usage.output_tokens"] == answer.usage.completion_tokens
    assert attempt.status != ERROR

    everything = repr(traced.receiver.snapshot())
    assert SIM_KEY not in everything and gw.key not in everything, "no credential in any span"


async def _failed_over(traced: Traced, status: int) -> Any:
    """A call to gpt-4o-mini answering ``status``, tried once and served by its fallback."""
    gw = traced.gw
    caller = gw.container.gateway.caller
    policy = caller.policy
    caller.policy = dataclasses.replace(policy, max_retries=0)  # one try per model: failover at once
    gw.sim.inject(f"status:{status}", count=None, model="gpt-4o-mini")
    try:
        return await gw.openai().chat.completions.with_raw_response.create(
            model=OPENAI_MODEL, messages=HELLO, extra_body={"fallbacks": [OPENAI_MODEL_2]}
        )
    finally:
        gw.sim.clear_faults()
        caller.policy = policy


async def test_failover_is_two_attempt_spans_the_first_failed(traced: Traced) -> None:
    raw = await _failed_over(traced, 503)
    assert raw.headers["x-turnout-model"] == OPENAI_MODEL_2
    spans = await traced.receiver.trace_of(raw.headers["x-turnout-message-id"], spans_at_least=4)
    server = _one(spans, SERVER)
    failed, served = _attempts(spans)

    assert failed.parent_id == served.parent_id == server.span_id
    assert failed.status == ERROR and failed.attributes["error.type"] == "503"
    assert failed.attributes["http.response.status_code"] == 503, "what the upstream answered"
    assert failed.attributes["turnout.fault"] == "provider"
    assert failed.attributes["turnout.model_id"] == OPENAI_MODEL and failed.name == "chat gpt-4o-mini"
    assert served.status != ERROR and served.attributes["turnout.model_id"] == OPENAI_MODEL_2
    assert server.status != ERROR
    assert server.attributes["gen_ai.request.model"] == OPENAI_MODEL
    assert server.attributes["turnout.attempts"] == 2 and server.attributes["turnout.fallback_used"] is True
    assert server.attributes["turnout.cost_usd"] == pytest.approx(float(raw.headers["x-turnout-cost-usd"]))
    assert server.attributes["turnout.cost_usd"] > 0


async def test_an_upstream_rate_limit_is_no_fault_of_the_caller(traced: Traced) -> None:
    """A 429 says the provider is busy: the attempt's span says rate_limited, not caller_input."""
    raw = await _failed_over(traced, 429)
    spans = await traced.receiver.trace_of(raw.headers["x-turnout-message-id"], spans_at_least=4)
    failed, _ = _attempts(spans)
    assert failed.attributes["http.response.status_code"] == 429
    assert failed.attributes["turnout.fault"] == "rate_limited"


async def test_a_failed_call_marks_its_server_span_failed(traced: Traced) -> None:
    gw = traced.gw
    caller = gw.container.gateway.caller
    policy = caller.policy
    caller.policy = dataclasses.replace(policy, max_retries=0)
    gw.sim.inject("status:503", count=1, model="gpt-4o")
    try:
        with pytest.raises(openai.APIStatusError) as caught:
            await gw.openai().chat.completions.create(model=OPENAI_MODEL_2, messages=HELLO)
    finally:
        gw.sim.clear_faults()
        caller.policy = policy
    status = caught.value.status_code
    spans = await traced.receiver.trace_of(caught.value.response.headers["x-turnout-message-id"], 3)
    server = _one(spans, SERVER)
    (attempt,) = _attempts(spans)
    assert server.status == ERROR and server.attributes["error.type"]
    assert server.attributes["http.response.status_code"] == status >= 500
    assert attempt.status == ERROR and attempt.attributes["error.type"] == "503"


async def test_an_incoming_traceparent_is_the_parent_and_goes_upstream(traced: Traced) -> None:
    gw = traced.gw
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    raw = await gw.openai().chat.completions.with_raw_response.create(
        model=OPENAI_MODEL,
        messages=HELLO,
        extra_headers={"traceparent": f"00-{trace_id}-{parent_id}-01", "tracestate": "acme=1"},
    )
    spans = await traced.receiver.trace_of(raw.headers["x-turnout-message-id"])
    server = _one(spans, SERVER)
    (attempt,) = _attempts(spans)
    assert (server.trace_id, server.parent_id) == (trace_id, parent_id)
    upstream = gw.sim.requests[-1].headers
    assert upstream["traceparent"] == f"00-{trace_id}-{attempt.span_id}-01"
    assert upstream["tracestate"] == "acme=1"


async def test_a_stream_server_span_ends_with_its_usage(traced: Traced) -> None:
    gw = traced.gw
    raw = await gw.openai().chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    usage = None
    async for chunk in raw.parse():
        usage = chunk.usage or usage
    assert usage is not None
    spans = await traced.receiver.trace_of(raw.headers["x-turnout-message-id"])
    server = _one(spans, SERVER)
    assert server.attributes["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert server.attributes["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert _one(spans, CLIENT).parent_id == server.span_id
    assert "traceparent" in gw.sim.requests[-1].headers


async def test_each_dialect_names_its_endpoint_and_operation(traced: Traced) -> None:
    gw = traced.gw
    client = gw.openai()
    completion = await client.completions.with_raw_response.create(model=OPENAI_MODEL, prompt="hello")
    response = await client.responses.with_raw_response.create(model=OPENAI_MODEL, input="hello")
    message = await gw.anthropic().messages.with_raw_response.create(
        model=ANTHROPIC_MODEL, max_tokens=32, messages=HELLO
    )
    for raw, name, operation in (
        (completion, "POST /v1/completions", "text_completion"),
        (response, "POST /v1/responses", "chat"),
        (message, "POST /v1/messages", "chat"),
    ):
        spans = await traced.receiver.trace_of(raw.headers["x-turnout-message-id"])
        server = _one(spans, SERVER)
        assert (server.name, server.attributes["gen_ai.operation.name"]) == (name, operation)
        assert _one(spans, CLIENT).name.startswith(f"{operation} ")
        assert server.attributes["gen_ai.usage.output_tokens"] > 0


async def test_prompt_and_answer_text_only_where_text_is_stored(traced: Traced) -> None:
    gw = traced.gw
    secret = f"the launch code is heliotrope-{secrets.token_hex(4)}"
    said: Any = [{"role": "user", "content": secret}]
    raw = await gw.openai().chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=said)
    spans = await traced.receiver.trace_of(raw.headers["x-turnout-message-id"])
    assert "heliotrope" not in repr(spans)
    assert "gen_ai.input.messages" not in _one(spans, SERVER).attributes

    gateway_ = gw.container.gateway
    gateway_.store_text = True  # what TURNOUT_STORE_MESSAGE_TEXT=true sets at start-up
    try:
        raw = await gw.openai().chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=said)
    finally:
        gateway_.store_text = False
    answer = raw.parse()
    server = _one(await traced.receiver.trace_of(raw.headers["x-turnout-message-id"]), SERVER)
    assert json.loads(server.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": secret}]}
    ]
    output = json.loads(server.attributes["gen_ai.output.messages"])
    assert output[0]["parts"][0]["content"] == answer.choices[0].message.content
    assert output[0]["role"] == "assistant" and output[0]["finish_reason"] == answer.choices[0].finish_reason
