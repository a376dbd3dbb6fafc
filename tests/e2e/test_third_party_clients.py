"""Clients no one here wrote work against Turnout unchanged: LangChain's ChatOpenAI and
ChatAnthropic, and the LiteLLM SDK (as a client, through its OpenAI and Anthropic providers), plain
and streaming, with tools."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM fetches prices at import otherwise

from typing import Any

import litellm
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from tests.gateway_env import ANTHROPIC_MODEL, OPENAI_MODEL, GatewayEnv, gw  # noqa: F401

HELLO: Any = [{"role": "user", "content": "Say hello to the sea"}]


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"rain in {city}"


def _chat(env: GatewayEnv, model: str = OPENAI_MODEL, **kw: Any) -> ChatOpenAI:
    return ChatOpenAI(base_url=f"{env.url}/v1", api_key=env.key, model=model, max_retries=0, **kw)  # type: ignore[arg-type]


async def test_langchain_chat_openai_invokes_streams_and_calls_tools(gw: GatewayEnv) -> None:  # noqa: F811
    answer = await _chat(gw).ainvoke([HumanMessage("Say hello to the sea")])
    assert answer.content and answer.response_metadata["model_name"] == OPENAI_MODEL
    assert answer.usage_metadata and answer.usage_metadata["total_tokens"] > 0
    chunks = [c async for c in _chat(gw, stream_usage=True).astream([HumanMessage("Say hello")])]
    assert "".join(str(c.content) for c in chunks) and all(isinstance(c, AIMessageChunk) for c in chunks)
    assert any(c.usage_metadata for c in chunks), "the usage chunk arrives"
    called = await _chat(gw).bind_tools([get_weather]).ainvoke([HumanMessage("Weather in Oslo?")])
    assert called.tool_calls and called.tool_calls[0]["name"] == "get_weather"
    rows = await gw.records(3)
    assert {r.model for r in rows} == {OPENAI_MODEL} and all(r.status == "ok" for r in rows)


async def test_litellm_sdk_as_a_client_in_both_dialects(gw: GatewayEnv) -> None:  # noqa: F811
    through_openai = await litellm.acompletion(
        model=f"openai/{OPENAI_MODEL}", api_base=f"{gw.url}/v1", api_key=gw.key, messages=HELLO
    )
    assert through_openai.choices[0].message.content and through_openai.usage.total_tokens > 0
    stream = await litellm.acompletion(
        model=f"openai/{OPENAI_MODEL}", api_base=f"{gw.url}/v1", api_key=gw.key, messages=HELLO, stream=True
    )
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
    assert text
    through_anthropic = await litellm.acompletion(
        model=f"anthropic/{OPENAI_MODEL}", api_base=gw.url, api_key=gw.key, messages=HELLO, max_tokens=50
    )
    assert through_anthropic.choices[0].message.content
    rows = await gw.records(3)
    assert sorted(r.dialect for r in rows[-3:]) == ["anthropic", "openai", "openai"]


async def test_langchain_use_responses_api_invokes_streams_and_calls_tools(gw: GatewayEnv) -> None:  # noqa: F811
    chat = _chat(gw, use_responses_api=True)
    answer = await chat.ainvoke([HumanMessage("Say hello to the sea")])
    assert "hello to the sea" in answer.text
    assert answer.usage_metadata and answer.usage_metadata["total_tokens"] > 0
    chunks = [c async for c in chat.astream([HumanMessage("Say hello")])]
    assert "".join(c.text for c in chunks)
    called = await chat.bind_tools([get_weather]).ainvoke([HumanMessage("Weather in Oslo?")])
    assert called.tool_calls and called.tool_calls[0]["name"] == "get_weather"
    rows = await gw.records(3)
    assert {r.endpoint for r in rows} == {"responses"} and all(r.status == "ok" for r in rows)


async def test_litellm_sdk_responses_as_a_client(gw: GatewayEnv) -> None:  # noqa: F811
    whole = await litellm.aresponses(
        model=f"openai/{OPENAI_MODEL}", api_base=f"{gw.url}/v1", api_key=gw.key, input="Say hello to the sea"
    )
    text = "".join(part.text for item in whole.output if item.type == "message" for part in item.content)
    assert "hello to the sea" in text and whole.usage.total_tokens > 0
    stream = await litellm.aresponses(
        model=f"openai/{OPENAI_MODEL}", api_base=f"{gw.url}/v1", api_key=gw.key, input="Say hi", stream=True
    )
    kinds = [event.type async for event in stream]
    assert "response.output_text.delta" in kinds and kinds[-1] == "response.completed"
    rows = await gw.records(2)
    assert [r.endpoint for r in rows[-2:]] == ["responses", "responses"]


class Contact(BaseModel):
    """A person named in a message."""

    name: str
    city: str


def _claude(env: GatewayEnv, model: str, **kw: Any) -> ChatAnthropic:
    return ChatAnthropic(  # type: ignore[call-arg]
        base_url=env.url, api_key=env.key, model=model, max_retries=0, max_tokens=200, **kw
    )


async def test_langchain_chat_anthropic_invokes_streams_calls_tools_and_structures(
    gw: GatewayEnv,  # noqa: F811
) -> None:
    """LangChain's ChatAnthropic speaks /v1/messages: a Claude model (passed through) and an
    OpenAI-format one (translated both ways) answer it alike, tools and structured output included
    (ChatAnthropic asks for structure with a forced tool)."""
    for model in (ANTHROPIC_MODEL, OPENAI_MODEL):
        answer = await _claude(gw, model).ainvoke([HumanMessage("Say hello to the sea")])
        assert answer.text and answer.usage_metadata and answer.usage_metadata["total_tokens"] > 0
        chunks = [c async for c in _claude(gw, model).astream([HumanMessage("Say hello")])]
        assert "".join(c.text for c in chunks)
        assert any(c.usage_metadata and c.usage_metadata["output_tokens"] > 0 for c in chunks)
        with_tools = _claude(gw, model).bind_tools([get_weather])
        called = await with_tools.ainvoke([HumanMessage("Weather in Oslo?")])
        assert called.tool_calls and called.tool_calls[0]["name"] == "get_weather", model
        assert isinstance(called.tool_calls[0]["args"].get("city"), str)
        contact = await _claude(gw, model).with_structured_output(Contact).ainvoke("Ann lives in Oslo")
        assert isinstance(contact, Contact), model
    rows = await gw.records(8)
    assert {r.model for r in rows} == {ANTHROPIC_MODEL, OPENAI_MODEL}
    assert all(r.status == "ok" and r.dialect == "anthropic" for r in rows)


async def test_langchain_chat_openai_structured_output_from_both_formats(gw: GatewayEnv) -> None:  # noqa: F811
    """ChatOpenAI's with_structured_output (response_format json_schema, parsed strictly): an
    OpenAI-format model and a Claude model (where the format becomes a forced tool) both give an
    instance, invoked and streamed."""
    for model in (OPENAI_MODEL, ANTHROPIC_MODEL):
        structured = _chat(gw, model=model).with_structured_output(Contact, method="json_schema")
        contact = await structured.ainvoke("Ann lives in Oslo")
        assert isinstance(contact, Contact), model
        parts = [part async for part in structured.astream("Ann lives in Oslo")]
        assert parts and isinstance(parts[-1], Contact), (model, parts)
