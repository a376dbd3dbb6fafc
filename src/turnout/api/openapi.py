"""The OpenAPI document: FastAPI's (the control plane) plus the data plane, which the lean
handlers of ``data_plane.py`` serve outside FastAPI and so outside its generated document.

The data plane's operations are described here by hand, as JSON Schemas of what the handlers
accept (the checks themselves live in ``api/parse.py``, ``api/native.py`` and the
Anthropic translator); requests never pass through FastAPI for it. /docs shows them, and the
security tests fuzz them with schemathesis from this document.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from turnout.feedback.service import FeedbackIn, FeedbackOut
from turnout.modelinfo.discovered import CAPABILITIES

Schema = dict[str, Any]

_JSON = "application/json"
_STRING = {"type": "string"}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _number(low: float, high: float) -> Schema:
    return {"type": "number", "minimum": low, "maximum": high}


def _tool(schema_field: str, *, required: list[str]) -> Schema:
    """A tool definition: a name, a description and a JSON Schema object of its arguments."""
    return {
        "type": "object",
        "required": required,
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
            "description": _STRING,
            schema_field: {"type": "object", "properties": {"type": {"const": "object"}}},
        },
    }


_POSITIVE_INT = {"type": "integer", "minimum": 1}
_STRINGS = {"type": "array", "items": _STRING}

SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": _STRING,
                    "type": _STRING,
                    "param": {"type": ["string", "null"], "description": "the offending field"},
                    "code": {"type": ["string", "null"]},
                },
            }
        },
    },
    "AnthropicError": {
        "type": "object",
        "required": ["type", "error"],
        "properties": {
            "type": {"const": "error"},
            "error": {
                "type": "object",
                "required": ["type", "message"],
                "properties": {"type": _STRING, "message": _STRING},
            },
        },
    },
    "TurnoutMetadata": {
        "type": "object",
        "description": "Recorded with the call, never sent to the provider.",
        "properties": {
            name: {"type": "string", "maxLength": 255}
            for name in ("agent_id", "conversation_id", "user_id", "task_id")
        },
    },
    "Fallbacks": {
        "type": "array",
        "maxItems": 10,
        "items": {"type": "string", "minLength": 1},
        "description": "catalog ids tried next, in order, before the first byte is sent",
    },
    "Requirements": {
        "type": "object",
        "properties": {
            "capabilities": {"type": "array", "items": {"type": "string", "enum": list(CAPABILITIES)}},
            "min_quality_score": _number(0, 1),
            "max_cost": {"type": "number", "minimum": 0},
        },
    },
    "ContentPart": {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "enum": ["text", "image_url", "input_audio", "file"]},
            "text": _STRING,
            "image_url": {"type": "object", "properties": {"url": _STRING, "detail": _STRING}},
        },
    },
    "ChatMessage": {
        "type": "object",
        "required": ["role"],
        "properties": {
            "role": {
                "type": "string",
                "enum": ["system", "developer", "user", "assistant", "tool", "function"],
            },
            "content": {
                "anyOf": [_STRING, {"type": "array", "items": _ref("ContentPart")}, {"type": "null"}]
            },
            "name": _STRING,
            "tool_call_id": _STRING,
            "tool_calls": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Tool": {
        "type": "object",
        "required": ["type", "function"],
        "properties": {
            "type": {"const": "function"},
            "function": _tool("parameters", required=["name"]),
        },
    },
    "ChatCompletionRequest": {
        "type": "object",
        "required": ["messages"],
        "properties": {
            "model": {
                "type": "string",
                "minLength": 1,
                "maxLength": 512,
                "description": "a catalog id (`provider/external id`), a provider's own id, or `auto`",
            },
            "messages": {"type": "array", "minItems": 1, "items": _ref("ChatMessage")},
            "stream": {"type": "boolean"},
            "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
            "temperature": _number(0, 2),
            "top_p": _number(0, 1),
            "n": {"type": "integer", "enum": [1]},
            "max_tokens": _POSITIVE_INT,
            "max_completion_tokens": _POSITIVE_INT,
            "presence_penalty": _number(-2, 2),
            "frequency_penalty": _number(-2, 2),
            "stop": {"anyOf": [_STRING, {"type": "array", "maxItems": 4, "items": _STRING}]},
            "tools": {"type": "array", "items": _ref("Tool")},
            "tool_choice": {"anyOf": [_STRING, {"type": "object"}]},
            "response_format": {"type": "object", "required": ["type"], "properties": {"type": _STRING}},
            "user": _STRING,
            "metadata": _ref("TurnoutMetadata"),
            "fallbacks": _ref("Fallbacks"),
            "task_type": _STRING,
            "requirements": _ref("Requirements"),
        },
    },
    "EmbeddingsRequest": {
        "type": "object",
        "required": ["model", "input"],
        "properties": {
            "model": {"type": "string", "minLength": 1, "maxLength": 512},
            "input": {
                "anyOf": [_STRING, {"type": "array", "minItems": 1, "maxItems": 2048, "items": _STRING}]
            },
            "dimensions": _POSITIVE_INT,
            "encoding_format": {"type": "string", "enum": ["float", "base64"]},
            "metadata": _ref("TurnoutMetadata"),
            "fallbacks": _ref("Fallbacks"),
        },
    },
    "AnthropicMessagesRequest": {
        "type": "object",
        "required": ["max_tokens", "messages"],
        "properties": {
            "model": _STRING,
            "max_tokens": _POSITIVE_INT,
            "messages": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["role", "content"],
                    "properties": {
                        "role": {"type": "string", "enum": ["user", "assistant"]},
                        "content": {
                            "anyOf": [
                                _STRING,
                                {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["type"],
                                        "properties": {
                                            "type": {
                                                "type": "string",
                                                "enum": [
                                                    "text",
                                                    "image",
                                                    "document",
                                                    "tool_use",
                                                    "tool_result",
                                                ],
                                            },
                                            "text": _STRING,
                                        },
                                    },
                                },
                            ]
                        },
                    },
                },
            },
            "system": {
                "anyOf": [
                    _STRING,
                    {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"type": {"const": "text"}, "text": _STRING},
                        },
                    },
                ]
            },
            "temperature": _number(0, 1),
            "top_p": _number(0, 1),
            "top_k": {"type": "integer", "minimum": 0},
            "stop_sequences": _STRINGS,
            "stream": {"type": "boolean"},
            "metadata": {"type": "object", "properties": {"user_id": _STRING}},
            "tools": {
                "type": "array",
                "items": _tool("input_schema", required=["name", "input_schema"]),
            },
            "tool_choice": {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {"type": "string", "enum": ["auto", "any", "tool", "none"]},
                    "name": _STRING,
                },
            },
        },
    },
    "NativeChatRequest": {
        "type": "object",
        "required": ["messages"],
        "properties": {
            "model_id": {"type": "string", "description": "omitted: the router picks"},
            "messages": {"type": "array", "minItems": 1, "items": _ref("ChatMessage")},
            "task_type": _STRING,
            "requirements": _ref("Requirements"),
            "context": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["content"],
                    "properties": {"type": _STRING, "content": _STRING},
                },
            },
            "metadata": _ref("TurnoutMetadata"),
            "fallbacks": _ref("Fallbacks"),
            "max_tokens": _POSITIVE_INT,
            "temperature": _number(0, 2),
            "top_p": _number(0, 1),
            "stop": {"anyOf": [_STRING, {"type": "array", "maxItems": 4, "items": _STRING}]},
            "tools": {"type": "array", "items": _ref("Tool")},
        },
    },
    "NativeCompletionRequest": {
        "type": "object",
        "required": ["prompt"],
        "properties": {
            "prompt": {"type": "string", "minLength": 1},
            "model_id": _STRING,
            "task_type": _STRING,
            "requirements": _ref("Requirements"),
            "metadata": _ref("TurnoutMetadata"),
            "max_tokens": _POSITIVE_INT,
            "temperature": _number(0, 2),
        },
    },
    "NativeEmbeddingsRequest": {
        "type": "object",
        "required": ["texts"],
        "properties": {
            "texts": {"type": "array", "minItems": 1, "items": _STRING},
            "model_id": _STRING,
            "dimensions": _POSITIVE_INT,
        },
    },
    "ChatCompletion": {
        "type": "object",
        "description": "OpenAI's chat completion object (an SSE stream of chunks with `stream: true`)",
        "properties": {
            "id": _STRING,
            "object": _STRING,
            "model": _STRING,
            "choices": {"type": "array"},
            "usage": {"type": "object"},
        },
    },
    "ResponsesRequest": {
        "type": "object",
        "description": "OpenAI Responses API request (function tools only; `store` defaults to true)",
        "required": ["model", "input"],
        "properties": {
            "model": {"type": "string", "minLength": 1, "description": "a model id, or `auto`"},
            "input": {
                "oneOf": [
                    {"type": "string"},
                    {"type": "array", "minItems": 1, "items": {"type": "object"}},
                ]
            },
            "instructions": _STRING,
            "previous_response_id": _STRING,
            "store": {"type": "boolean"},
            "stream": {"type": "boolean"},
            "tools": {"type": "array", "items": {"type": "object"}},
            "tool_choice": {},
            "text": {"type": "object"},
            "reasoning": {"type": "object"},
            "max_output_tokens": _POSITIVE_INT,
            "temperature": _number(0, 2),
            "top_p": _number(0, 1),
            "metadata": {"type": "object"},
        },
    },
    "Response": {
        "type": "object",
        "description": "OpenAI's response object (typed SSE events with `stream: true`)",
        "properties": {
            "id": _STRING,
            "object": {"const": "response"},
            "status": _STRING,
            "output": {"type": "array"},
            "usage": {"type": "object"},
        },
    },
    "TokenCount": {
        "type": "object",
        "description": "Anthropic's token count; `estimated: true` (and `x-turnout-estimated: true`) when "
        "the model's provider cannot count, so Turnout estimated",
        "properties": {"input_tokens": {"type": "integer"}, "estimated": {"type": "boolean"}},
    },
    "LegacyCompletionRequest": {
        "type": "object",
        "required": ["model", "prompt"],
        "properties": {
            "model": {"type": "string", "minLength": 1},
            "prompt": {"type": "string", "minLength": 1},
            "max_tokens": _POSITIVE_INT,
            "temperature": _number(0, 2),
            "stream": {"type": "boolean"},
        },
    },
    "ModelList": {
        "type": "object",
        "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": {"type": "object"}}},
    },
    "Model": {
        "type": "object",
        "description": "OpenAI's model object; with anthropic-version, Anthropic's",
        "properties": {
            "id": _STRING,
            "object": {"const": "model"},
            "created": {"type": "integer"},
            "owned_by": _STRING,
        },
    },
}

for _model in (FeedbackIn, FeedbackOut):  # the hot-path rating route's body and answer
    SCHEMAS[_model.__name__] = _model.model_json_schema(ref_template="#/components/schemas/{model}")

_ANSWER_HEADERS = {
    name: {"description": text, "schema": _STRING}
    for name, text in (
        ("x-turnout-model", "the catalog id that answered"),
        ("x-turnout-provider", "its provider"),
        ("x-turnout-message-id", "the record of this call (for feedback)"),
        ("x-request-id", "the message id again, where the OpenAI SDK reads a request id"),
        ("request-id", "the message id again, where the Anthropic SDK reads a request id"),
        ("x-turnout-cost-usd", "cost, when known before the headers (non-streaming)"),
        ("x-turnout-cache", "`hit`: answered from the response cache (cost 0); `miss`: kept for the next"),
    )
}
_ERROR_STATUSES = {
    "400": "invalid request (the field is named in `param`)",
    "401": "missing or invalid key or token",
    "403": "model not allowed for this caller",
    "404": "unknown model",
    "413": "body too large",
    "429": "rate limited (`Retry-After`)",
    "502": "the provider failed",
    "503": "no model available",
}
_CLIENT_REQUEST_ID: Schema = {
    "name": "X-Client-Request-Id",
    "in": "header",
    "required": False,
    "description": "the caller's own id of the call (1 to 512 printable ASCII characters), kept on its "
    "record (`GET /api/v2/messages?client_request_id=`); `model.request.cancel` cancels a call in flight "
    "by it",
    "schema": {"type": "string", "minLength": 1, "maxLength": 512},
}
CALLER_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKeyAuth": []}]


def _operation(
    summary: str, body: str | None, answer: str, *, anthropic: bool = False, tag: str, recorded: bool = True
) -> Schema:
    error = _ref("AnthropicError" if anthropic else "Error")
    op: Schema = {
        "tags": [tag],
        "summary": summary,
        "operationId": summary.lower().replace(" ", "_").replace("-", "_"),
        "security": CALLER_SECURITY,
        "responses": {
            "200": {
                "description": "the answer",
                "headers": _ANSWER_HEADERS,
                "content": {_JSON: {"schema": _ref(answer)}},
            },
            **{
                code: {"description": text, "content": {_JSON: {"schema": error}}}
                for code, text in _ERROR_STATUSES.items()
            },
        },
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {_JSON: {"schema": _ref(body)}}}
        if recorded:  # a call: the caller may name it
            op["parameters"] = [_CLIENT_REQUEST_ID]
    return op


DATA_PLANE_PATHS: dict[str, Schema] = {
    "/v1/chat/completions": {
        "post": _operation(
            "OpenAI chat completions", "ChatCompletionRequest", "ChatCompletion", tag="data plane"
        )
    },
    "/v1/embeddings": {
        "post": _operation("OpenAI embeddings", "EmbeddingsRequest", "ChatCompletion", tag="data plane")
    },
    "/v1/models": {"get": _operation("OpenAI model list", None, "ModelList", tag="data plane")},
    "/v1/models/{model}": {"get": _operation("Retrieve a model", None, "Model", tag="data plane")},
    "/v1/messages": {
        "post": _operation(
            "Anthropic messages",
            "AnthropicMessagesRequest",
            "ChatCompletion",
            anthropic=True,
            tag="data plane",
        )
    },
    "/v1/messages/count_tokens": {
        "post": _operation(
            "Anthropic count tokens",
            "AnthropicMessagesRequest",
            "TokenCount",
            anthropic=True,
            tag="data plane",
            recorded=False,
        )
    },
    "/v1/responses": {
        "post": _operation("OpenAI responses", "ResponsesRequest", "Response", tag="data plane")
    },
    "/v1/responses/{response_id}": {
        "get": _operation("Retrieve a response", None, "Response", tag="data plane"),
        "delete": _operation("Delete a response", None, "Response", tag="data plane"),
    },
    "/v1/responses/{response_id}/input_items": {
        "get": _operation("List a response's input items", None, "ModelList", tag="data plane")
    },
    "/v1/completions": {
        "post": _operation(
            "OpenAI legacy completions", "LegacyCompletionRequest", "ChatCompletion", tag="data plane"
        )
    },
    "/api/models/chat": {
        "post": _operation("Native chat", "NativeChatRequest", "ChatCompletion", tag="native")
    },
    "/api/models/completion": {
        "post": _operation("Native completion", "NativeCompletionRequest", "ChatCompletion", tag="native")
    },
    "/api/models/embeddings": {
        "post": _operation("Native embeddings", "NativeEmbeddingsRequest", "ChatCompletion", tag="native")
    },
    "/api/models": {"get": _operation("Native model list", None, "ModelList", tag="native")},
}
_RESPONSE_ID = {
    "name": "response_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "maxLength": 40},
}
for _path in ("/v1/responses/{response_id}", "/v1/responses/{response_id}/input_items"):
    for _op in DATA_PLANE_PATHS[_path].values():
        _op["parameters"] = [_RESPONSE_ID]
DATA_PLANE_PATHS["/v1/models/{model}"]["get"]["parameters"] = [
    {
        "name": "model",
        "in": "path",
        "required": True,
        "description": "a model's id or alias; its slash may be sent as is or escaped",
        "schema": {"type": "string", "minLength": 1},
    }
]
FEEDBACK_PATH = "/api/v2/chat/messages/{message_id}/feedback"
DATA_PLANE_PATHS[FEEDBACK_PATH] = {
    "post": {
        **_operation("Rate an answer", "FeedbackIn", "FeedbackOut", tag="feedback"),
        "description": "Rate an answer 0.0-1.0; rating again replaces the earlier rating (an implicit "
        "signal never replaces an explicit rating).",
        "parameters": [
            {
                "name": "message_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "maxLength": 36},
            }
        ],
    }
}
HOT_PATH_OPERATIONS = list(DATA_PLANE_PATHS)  # data_plane.py's
_ANY_CALLER_PREFIXES = (
    "/api/v2/chat/messages/",
    "/api/models/feedback",
    "/api/v2/routing/explain",
    "/api/v2/routing/decisions/",
)


def data_plane_document(base: Schema) -> Schema:
    """``base`` (FastAPI's document) with the data plane's paths, schemas and security schemes."""
    base.setdefault("components", {}).setdefault("schemas", {}).update(SCHEMAS)
    base["components"]["securitySchemes"] = {
        "bearerAuth": {"type": "http", "scheme": "bearer", "description": "agent API key or JWT"},
        "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "x-api-key", "description": "agent API key"},
    }
    base["security"] = [{"bearerAuth": []}]  # the control plane: JWT
    for path, operations in base.get("paths", {}).items():
        for op in operations.values():
            if path in ("/healthz", "/readyz"):
                op["security"] = []
            elif path.startswith(_ANY_CALLER_PREFIXES):
                op["security"] = CALLER_SECURITY
    explain = base.get("paths", {}).get("/api/v2/routing/explain", {}).get("post")
    if explain is not None:  # it reads a chat body itself
        explain["requestBody"] = {
            "required": True,
            "content": {_JSON: {"schema": _ref("ChatCompletionRequest")}},
        }
    base.setdefault("paths", {}).update(DATA_PLANE_PATHS)
    return base


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and so /openapi.json and /docs) return the whole document."""

    def openapi() -> Schema:
        if app.openapi_schema is None:
            base = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            app.openapi_schema = data_plane_document(base)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
