"""Every route with a valid request, the base the bad-input tests change one thing in."""

from __future__ import annotations

from typing import Any

from turnout.api.data_plane import ROUTES as DATA_PLANE_ROUTES

CHAT = {"model": "sim/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
PARAMETERS = {"type": "object", "properties": {"a": {"type": "string"}}}
OPENAI_CHAT = {
    "model": "sim/gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
    ],
    "temperature": 0.5,
    "max_tokens": 20,
    "stop": ["zz"],
    "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": PARAMETERS}}],
    "tool_choice": "auto",
    "response_format": {"type": "text"},
    "metadata": {"user_id": "u", "conversation_id": "c", "task_id": "t"},
    "fallbacks": ["sim/gpt-4o-mini"],
    "task_type": "general",
    "requirements": {"max_cost": 1},
}
ANTHROPIC_MESSAGES = {
    "model": "sim/gpt-4o-mini",
    "max_tokens": 10,
    "system": "be brief",
    "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    "temperature": 0.5,
    "stop_sequences": ["zz"],
    "tools": [{"name": "f", "description": "d", "input_schema": PARAMETERS}],
    "tool_choice": {"type": "auto"},
    "metadata": {"user_id": "u"},
}
NATIVE_CHAT = {
    "model_id": "sim/gpt-4o-mini",
    "messages": CHAT["messages"],
    "task_type": "general",
    "context": [{"type": "doc", "content": "c"}],
    "requirements": {"capabilities": ["text"]},
    "metadata": {"user_id": "u"},
}
# (method, path, who, a valid body): who is "admin" (platform), "tenant" (tenant admin) or "agent"
ROUTES: list[tuple[str, str, str, Any]] = [
    (
        "POST",
        "/api/v2/admin/providers",
        "admin",
        {
            "id": "p2",
            "display_name": "d",
            "provider_type": "openai",
            "api_base": "http://127.0.0.1:9/v1",
            "api_key": "k",
            "api_version": "v",
            "models_endpoint": "/m",
        },
    ),
    (
        "PATCH",
        "/api/v2/admin/providers/sim",
        "admin",
        {"display_name": "d", "models_endpoint": "/models", "api_key": "k", "api_version": "v"},
    ),
    (
        "POST",
        "/api/v2/admin/models",
        "admin",
        {
            "provider_id": "sim",
            "external_id": "x",
            "display_name": "X",
            "domains": ["a"],
            "metadata": {"a": "b"},
        },
    ),
    ("PATCH", "/api/v2/admin/models/sim/gpt-4o-mini", "admin", {"display_name": "X", "domains": ["a"]}),
    (
        "POST",
        "/api/v2/admin/models/bulk",
        "admin",
        {"filter": {"provider": "sim", "q": "x"}, "is_enabled": True},
    ),
    ("POST", "/api/v2/admin/models/performance/reset", "admin", {"model_id": "sim/gpt-4o-mini"}),
    (
        "POST",
        "/api/v2/agents",
        "tenant",
        {"id": "b2", "name": "n", "capsule": {"a": "b"}, "default_policy": "normal"},
    ),
    (
        "PATCH",
        "/api/v2/agents/bot",
        "tenant",
        {"name": "n", "capsule": {"a": "b"}, "default_policy": "normal"},
    ),
    ("POST", "/api/v2/agents/bot/keys", "tenant", {"name": "n"}),
    ("POST", "/api/v2/agents/bot/models", "tenant", {"model_ids": ["sim/gpt-4o-mini"]}),
    ("POST", "/api/v2/agents/bot/models/disable", "tenant", {"model_ids": ["sim/gpt-4o-mini"]}),
    ("POST", "/api/v2/routing/policies", "admin", {"name": "pp", "description": "d"}),
    ("PUT", "/api/v2/routing/task-policies", "admin", {"code": "normal"}),
    ("PUT", "/api/v2/routing/task-maps", "admin", {"keywords": {"x": "code"}}),
    ("POST", "/api/v2/routing/explain", "agent", CHAT),
    (
        "POST",
        "/api/models/feedback",
        "agent",
        {
            "request_id": "abc",
            "success": True,
            "feedback": "f",
            "corrections": {"a": "b"},
            "metadata": {"a": "b"},
        },
    ),
    (
        "POST",
        "/api/v2/chat/messages/abc/feedback",
        "agent",
        {"rating": 1, "comment": "c", "corrections": {"a": "b"}},
    ),
    ("POST", "/api/v2/chat/messages/abc/events", "agent", {"event": "copy"}),
    ("POST", "/v1/chat/completions", "agent", OPENAI_CHAT),
    ("POST", "/v1/messages", "agent", ANTHROPIC_MESSAGES),
    (
        "POST",
        "/v1/responses",
        "agent",
        {
            "model": "sim/gpt-4o-mini",
            "instructions": "be brief",
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
            "text": {"format": {"type": "json_object"}},
            "metadata": {"user_id": "u"},
        },
    ),
    ("POST", "/v1/completions", "agent", {"model": "sim/gpt-4o-mini", "prompt": "hi", "max_tokens": 5}),
    ("POST", "/v1/embeddings", "agent", {"model": "sim/text-embedding-3-small", "input": ["hi", "there"]}),
    ("POST", "/api/models/chat", "agent", NATIVE_CHAT),
    ("POST", "/api/models/completion", "agent", {"model_id": "sim/gpt-4o-mini", "prompt": "hi"}),
    ("POST", "/api/models/embeddings", "agent", {"model_id": "sim/text-embedding-3-small", "texts": ["hi"]}),
]
GETS: list[tuple[str, str]] = [
    ("/api/v2/admin/providers/sim", "admin"),
    ("/api/v2/admin/models?q=x&provider=sim", "admin"),
    ("/api/v2/admin/models/sim/gpt-4o-mini", "admin"),
    ("/api/v2/admin/models/performance?task_type=a&agent_id=b&model_id=c&time_range=7d", "admin"),
    ("/api/v2/agents/bot", "tenant"),
    ("/api/v2/agents/bot/keys", "tenant"),
    ("/api/v2/agents/bot/audit", "tenant"),
    ("/api/v2/routing/policies/normal", "admin"),
    ("/api/v2/routing/decisions/abc", "agent"),
    ("/v1/models", "agent"),
    ("/api/models", "agent"),
    ("/v1/responses/resp_0123456789abcdef0123456789abcdef", "agent"),
    ("/v1/responses/resp_0123456789abcdef0123456789abcdef/input_items", "agent"),
]


def is_data_plane(path: str) -> bool:
    """Served by the lean hot path (``api/hot_path.py``), not FastAPI."""
    return path in {route.path for route in DATA_PLANE_ROUTES} or (
        path.startswith("/api/v2/chat/messages/") and path.endswith("/feedback")
    )
