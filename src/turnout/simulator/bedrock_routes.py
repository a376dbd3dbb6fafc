"""AWS Bedrock wire format: ``POST /model/{modelId}/converse`` (JSON), ``POST
/model/{modelId}/converse-stream`` (binary ``application/vnd.amazon.eventstream`` frames) and the
control plane's ``GET /foundation-models``. Errors are ``{"message"}`` named by the
``x-amzn-ErrorType`` header.

Like AWS, every request must carry a valid SigV4 signature (service ``bedrock``): the simulator
recomputes it with botocore from the configured key pair and region and answers 403
``InvalidSignatureException`` when it differs (``UnrecognizedClientException`` for an unknown key
id, ``MissingAuthenticationTokenException`` without one). Requests are validated as Converse does:
roles alternate starting with a user turn, no empty content or blank text, toolUse and toolResult
blocks need a ``toolConfig``, tool results answer the tool uses of the turn before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from turnout.simulator import text
from turnout.simulator.config import DEFAULT_BEDROCK_MODELS
from turnout.simulator.respond import JSON_HEADERS, Plan, begin, format_seconds, send_body, send_stream

if TYPE_CHECKING:
    from turnout.simulator.server import Simulator

STREAM_HEADERS = {"Content-Type": "application/vnd.amazon.eventstream"}
MAX_SKEW_S = 15 * 60  # AWS refuses a signature dated further than this from its clock
_EXCEPTIONS = {
    400: "ValidationException",
    401: "UnrecognizedClientException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
_MESSAGES = {
    "ValidationException": "Malformed input request, please reformat your input and try again.",
    "AccessDeniedException": "You don't have access to the model with the specified model ID.",
    "ResourceNotFoundException": "The requested resource could not be found.",
    "ThrottlingException": "Too many requests, please wait before trying again.",
    "InternalServerException": "The server encountered an internal error.",
    "ServiceUnavailableException": "The service is temporarily unable to handle the request.",
}
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)
_FIRST_USER = (
    "A conversation must start with a user message. Try again with a conversation that starts with a "
    "user message."
)
_ALTERNATE = (
    "A conversation must alternate between user and assistant roles. Make sure the conversation "
    "alternates between user and assistant roles and try again."
)
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/"
    r"(?P<service>[^/,\s]+)/aws4_request,\s*SignedHeaders=(?P<headers>[a-z0-9;-]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})"
)
_IMAGE_FORMATS = frozenset({"png", "jpeg", "gif", "webp"})
_BLOCK_KINDS = ("text", "image", "document", "video", "toolUse", "toolResult", "reasoningContent")
# Listed but not synced: Turnout keeps only text models that are active and callable on demand.
_NON_TEXT = {
    "modelId": "stability.stable-image-core-v1:1",
    "modelName": "Stable Image Core",
    "providerName": "Stability AI",
    "inputModalities": ["TEXT"],
    "outputModalities": ["IMAGE"],
    "responseStreamingSupported": False,
    "inferenceTypesSupported": ["ON_DEMAND"],
    "modelLifecycle": {"status": "ACTIVE"},
}


def bedrock_error(
    status: int, message: str | None = None, retry_after: float | None = None, *, name: str | None = None
) -> web.Response:
    """An error as Bedrock writes it: ``{"message"}``, the exception named by ``x-amzn-ErrorType``."""
    name = (
        name
        or _EXCEPTIONS.get(status)
        or ("InternalServerException" if status >= 500 else "ValidationException")
    )
    headers = {
        "Content-Type": "application/json",
        "x-amzn-ErrorType": f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/",
        "x-amzn-RequestId": str(uuid.uuid4()),
    }
    if status == 429 or retry_after is not None:
        headers["Retry-After"] = format_seconds(1.0 if retry_after is None else retry_after)
    body = {"message": message or _MESSAGES.get(name, f"Simulated error (HTTP {status}).")}
    return web.Response(body=orjson.dumps(body), status=status, headers=headers)


def event_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude (total length, headers length, CRC32), string headers
    (name length, name, type 7, value length, value), payload, CRC32 of all that precedes it."""
    encoded = b"".join(
        struct.pack("!B", len(name)) + name + b"\x07" + struct.pack("!H", len(value)) + value
        for name, value in ((k.encode(), v.encode()) for k, v in headers.items())
    )
    prelude = struct.pack("!II", 16 + len(encoded) + len(payload), len(encoded))
    message = prelude + struct.pack("!I", binascii.crc32(prelude)) + encoded + payload
    return message + struct.pack("!I", binascii.crc32(message))


def event(name: str, payload: dict[str, Any]) -> bytes:
    """A ConverseStream event frame."""
    headers = {":event-type": name, ":content-type": "application/json", ":message-type": "event"}
    return event_frame(headers, orjson.dumps(payload))


def exception_frame(name: str, message: str) -> bytes:
    """A ConverseStream exception frame (``name`` as streams spell it: ``throttlingException``)."""
    headers = {":exception-type": name, ":content-type": "application/json", ":message-type": "exception"}
    return event_frame(headers, orjson.dumps({"message": message}))


def _pick_tool(body: dict[str, Any], messages: list[Any]) -> dict[str, Any] | None:
    """The tool to use: tools given, the last turn a user's that holds no tool result."""
    config = body.get("toolConfig")
    tools = config.get("tools") if isinstance(config, dict) else None
    last = messages[-1]
    if not isinstance(tools, list) or not tools or last.get("role") != "user":
        return None
    if any("toolResult" in block for block in last["content"]):
        return None
    specs = [t["toolSpec"] for t in tools if isinstance(t, dict) and isinstance(t.get("toolSpec"), dict)]
    choice = config.get("toolChoice") if isinstance(config, dict) else None
    named = choice.get("tool") if isinstance(choice, dict) else None
    if isinstance(named, dict):
        specs = [s for s in specs if s.get("name") == named.get("name")] or specs
    return specs[0] if specs else None


class BedrockRoutes:
    """The Bedrock routes of one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def register(self, router: web.UrlDispatcher) -> None:
        """Add the runtime's Converse routes and the control plane's model list."""
        router.add_post("/model/{model_id}/converse", self.converse)
        router.add_post("/model/{model_id}/converse-stream", self.converse_stream)
        router.add_get("/foundation-models", self.list_models)

    def models(self) -> tuple[str, ...]:
        """The ids of the text models listed (those a Turnout sync keeps)."""
        return self.sim.config.model_list(DEFAULT_BEDROCK_MODELS)

    # -- signature ---------------------------------------------------------------------------------

    def verify(self, request: web.Request, body: bytes) -> web.Response | None:
        """A 403 unless the request's SigV4 signature is the one botocore computes with the
        configured secret; None when it is (or when no secret is configured)."""
        config = self.sim.config
        if config.aws_secret_access_key is None:
            return None
        header = request.headers.get("Authorization")
        if not header:
            return bedrock_error(
                403, "Missing Authentication Token", name="MissingAuthenticationTokenException"
            )
        auth = _AUTH.fullmatch(header.strip())
        if auth is None:
            message = "Authorization header requires Credential, SignedHeaders and Signature."
            return bedrock_error(403, message, name="IncompleteSignatureException")
        if auth["key"] != config.aws_access_key_id:
            message = "The security token included in the request is invalid."
            return bedrock_error(403, message, name="UnrecognizedClientException")
        if auth["service"] != "bedrock" or auth["region"] != config.aws_region:
            message = (
                f"Credential should be scoped to a valid region and service ({config.aws_region}/bedrock)."
            )
            return bedrock_error(403, message, name="InvalidSignatureException")
        amz_date = request.headers.get("X-Amz-Date", "")
        try:
            signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return bedrock_error(403, _MISMATCH, name="InvalidSignatureException")
        if abs((datetime.now(UTC) - signed_at).total_seconds()) > MAX_SKEW_S or amz_date[:8] != auth["date"]:
            return bedrock_error(
                403, f"Signature expired: {amz_date} is now out of range.", name="InvalidSignatureException"
            )
        names = auth["headers"].split(";")
        if "host" not in names or any(name not in request.headers for name in names):
            return bedrock_error(403, _MISMATCH, name="InvalidSignatureException")
        sha = request.headers.get("X-Amz-Content-SHA256")
        if sha is not None and sha != hashlib.sha256(body).hexdigest():
            return bedrock_error(403, _MISMATCH, name="InvalidSignatureException")
        headers = {name: request.headers[name] for name in names}
        aws = AWSRequest(request.method, f"http://{request.headers['Host']}{request.raw_path}", headers, body)
        aws.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(auth["key"], config.aws_secret_access_key), "bedrock", auth["region"])
        expected = signer.signature(signer.string_to_sign(aws, signer.canonical_request(aws)), aws)
        if not hmac.compare_digest(expected, auth["signature"]):
            return bedrock_error(403, _MISMATCH, name="InvalidSignatureException")
        return None

    # -- routes ------------------------------------------------------------------------------------

    async def list_models(self, request: web.Request) -> web.StreamResponse:
        """``GET /foundation-models`` (ListFoundationModels: one page, a summary per model)."""
        self.sim.hit("bedrock", "GET /foundation-models")
        if (denied := self.verify(request, await request.read())) is not None:
            return denied
        plan = await begin(self.sim, request, None, bedrock_error)
        if not isinstance(plan, Plan):
            return plan
        region = self.sim.config.aws_region
        summaries = [_summary(model_id, region) for model_id in self.models()]
        summaries.append(
            {"modelArn": f"arn:aws:bedrock:{region}::foundation-model/{_NON_TEXT['modelId']}", **_NON_TEXT}
        )
        return await send_body(request, plan, orjson.dumps({"modelSummaries": summaries}), JSON_HEADERS)

    async def converse(self, request: web.Request) -> web.StreamResponse:
        """``POST /model/{modelId}/converse``."""
        return await self._serve(request, stream=False)

    async def converse_stream(self, request: web.Request) -> web.StreamResponse:
        """``POST /model/{modelId}/converse-stream``."""
        return await self._serve(request, stream=True)

    async def _serve(self, request: web.Request, *, stream: bool) -> web.StreamResponse:
        sim = self.sim
        operation = "converse-stream" if stream else "converse"
        sim.hit("bedrock", f"POST /model/{{modelId}}/{operation}")
        raw = await request.read()
        if (denied := self.verify(request, raw)) is not None:
            return denied
        model = request.match_info["model_id"]
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if (problem := self._problem(body, model)) is not None:
            return bedrock_error(400, problem)
        messages = body["messages"]
        sim.record("bedrock", request, model, body, stream)
        plan = await begin(sim, request, model, bedrock_error)
        if not isinstance(plan, Plan):
            return plan
        prompt = text.last_user_text(messages)
        system = " ".join(b["text"] for b in body.get("system") or () if isinstance(b.get("text"), str))
        prompt_tokens = text.count_prompt_tokens([system, *text.messages_texts(messages)])
        tool = _pick_tool(body, messages)
        block: dict[str, Any]
        if tool is not None:
            schema = (tool.get("inputSchema") or {}).get("json")
            arguments = text.tool_arguments(schema, prompt)
            block = {
                "toolUse": {
                    "toolUseId": "tooluse_" + uuid.uuid4().hex[:22],
                    "name": tool["name"],
                    "input": arguments,
                }
            }
            pieces = text.split_pieces(orjson.dumps(arguments).decode(), 8)
            output_tokens, stop_reason = max(1, (len("".join(pieces)) + 3) // 4), "tool_use"
        else:
            pieces = text.text_pieces(prompt, sim.config.reply_tokens, sim.config.reply_text)
            stop_reason = "end_turn"
            limit = (body.get("inferenceConfig") or {}).get("maxTokens")
            if isinstance(limit, int) and limit < len(pieces):
                pieces, stop_reason = pieces[:limit], "max_tokens"
            block = {"text": "".join(pieces)}
            output_tokens = len(pieces)
        cached = min(sim.config.cached_tokens, prompt_tokens)
        usage = {
            "inputTokens": prompt_tokens - cached,
            "outputTokens": output_tokens,
            "totalTokens": prompt_tokens + output_tokens,
        }
        if cached:
            usage["cacheReadInputTokens"] = cached
        headers = {"x-amzn-RequestId": str(uuid.uuid4())}
        if stream:
            return await send_stream(
                request, plan, _frames(block, pieces, stop_reason, usage), {**STREAM_HEADERS, **headers}
            )
        answer = {
            "output": {"message": {"role": "assistant", "content": [block]}},
            "stopReason": stop_reason,
            "usage": usage,
            "metrics": {"latencyMs": 1},
        }
        return await send_body(
            request, plan, orjson.dumps(answer), {**JSON_HEADERS, **headers}, output_tokens
        )

    def _problem(self, body: Any, model: str) -> str | None:
        """What Converse's validation would say about ``body``, or None."""
        if not isinstance(body, dict):
            return "Malformed input request: the body is not a JSON object."
        if self.sim.config.strict_models and model not in self.models():
            return "The provided model identifier is invalid."
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _FIRST_USER
        tool_uses: set[str] = set()
        needs_tools = False
        for i, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role not in ("user", "assistant"):
                return f"messages.{i}.role: must be user or assistant."
            if i == 0 and role != "user":
                return _FIRST_USER
            if i and messages[i - 1].get("role") == role:
                return _ALTERNATE
            content = message.get("content")
            if not isinstance(content, list) or not content:
                return (
                    f"The content field in the Message object at messages.{i} is empty. Add a "
                    "ContentBlock object to the content field and try again."
                )
            answered = tool_uses
            tool_uses = set()
            for j, block in enumerate(content):
                where = f"messages.{i}.content.{j}"
                kinds = [k for k in _BLOCK_KINDS if isinstance(block, dict) and k in block]
                if len(kinds) != 1:
                    return f"{where}: a ContentBlock must hold exactly one of {', '.join(_BLOCK_KINDS)}."
                problem = _block_problem(kinds[0], block[kinds[0]], where, role, answered)
                if problem is not None:
                    return problem
                if kinds[0] == "toolUse":
                    tool_uses.add(block["toolUse"]["toolUseId"])
                needs_tools = needs_tools or kinds[0] in ("toolUse", "toolResult")
        return _config_problem(body, needs_tools)


def _block_problem(kind: str, value: Any, where: str, role: str, answered: set[str]) -> str | None:
    """What is wrong with one content block, or None."""
    if kind == "text":
        if not isinstance(value, str) or not value.strip():
            return (
                f"The text field in the ContentBlock object at {where} is blank. "
                "Add text to the text field, and try again."
            )
    elif kind == "image":
        source = value.get("source") if isinstance(value, dict) else None
        data = source.get("bytes") if isinstance(source, dict) else None
        if role != "user" or not isinstance(value, dict) or value.get("format") not in _IMAGE_FORMATS:
            return f"{where}.image: a user's image with a format of png, jpeg, gif or webp is required."
        try:
            if not isinstance(data, str) or not base64.b64decode(data, validate=True):
                raise ValueError
        except ValueError:
            return f"{where}.image.source.bytes: must be base64-encoded image bytes."
    elif kind == "toolUse":
        ok = isinstance(value, dict) and all(
            isinstance(value.get(k), str) and value[k] for k in ("toolUseId", "name")
        )
        if role != "assistant" or not ok or not isinstance(value.get("input"), dict):
            return f"{where}.toolUse: an assistant's toolUse needs toolUseId, name and an input object."
    elif kind == "toolResult":
        if role != "user" or not isinstance(value, dict) or value.get("toolUseId") not in answered:
            return f"{where}.toolResult: its toolUseId must match a toolUse block of the previous turn."
        content = value.get("content")
        if not isinstance(content, list) or not content:
            return f"{where}.toolResult.content: at least one content block is required."
    return None


def _config_problem(body: dict[str, Any], needs_tools: bool) -> str | None:
    """What is wrong with ``system``, ``inferenceConfig`` or ``toolConfig``, or None."""
    system = body.get("system", [])
    if not isinstance(system, list) or not all(
        isinstance(b, dict) and isinstance(b.get("text"), str) for b in system
    ):
        return "system: must be a list of text blocks."
    config = body.get("inferenceConfig", {})
    if not isinstance(config, dict):
        return "inferenceConfig: must be an object."
    limit = config.get("maxTokens")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        return "inferenceConfig.maxTokens: must be an integer >= 1."
    tools = body.get("toolConfig")
    if tools is None:
        return (
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
            if needs_tools
            else None
        )
    specs = tools.get("tools") if isinstance(tools, dict) else None
    if not isinstance(specs, list) or not specs:
        return "toolConfig.tools: at least one tool is required."
    for k, tool in enumerate(specs):
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        schema = spec.get("inputSchema") if isinstance(spec, dict) else None
        if (
            not isinstance(spec, dict)
            or not isinstance(spec.get("name"), str)
            or not isinstance(schema, dict)
            or not isinstance(schema.get("json"), dict)
        ):
            return f"toolConfig.tools.{k}.toolSpec: a name and an inputSchema.json object are required."
    choice = tools.get("toolChoice")
    if choice is not None and (
        not isinstance(choice, dict) or len(choice) != 1 or next(iter(choice)) not in ("auto", "any", "tool")
    ):
        return "toolConfig.toolChoice: must be one of auto, any or tool."
    return None


def _summary(model_id: str, region: str) -> dict[str, Any]:
    """A ListFoundationModels entry for a text model."""
    provider = model_id.split(".", 1)[0] if "." in model_id else "Amazon"
    return {
        "modelArn": f"arn:aws:bedrock:{region}::foundation-model/{model_id}",
        "modelId": model_id,
        "modelName": model_id,
        "providerName": provider.capitalize(),
        "inputModalities": ["TEXT", "IMAGE"],
        "outputModalities": ["TEXT"],
        "responseStreamingSupported": True,
        "customizationsSupported": [],
        "inferenceTypesSupported": ["ON_DEMAND"],
        "modelLifecycle": {"status": "ACTIVE"},
    }


def _frames(block: dict[str, Any], pieces: tuple[str, ...], stop: str, usage: dict[str, Any]) -> list[bytes]:
    """messageStart, (contentBlockStart for a tool use), deltas, contentBlockStop, messageStop, metadata."""
    out = [event("messageStart", {"role": "assistant"})]
    if "toolUse" in block:
        start = {"toolUse": {k: block["toolUse"][k] for k in ("toolUseId", "name")}}
        out.append(event("contentBlockStart", {"contentBlockIndex": 0, "start": start}))
        deltas: list[dict[str, Any]] = [{"toolUse": {"input": piece}} for piece in pieces]
    else:
        deltas = [{"text": piece} for piece in pieces]
    out.extend(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": d}) for d in deltas)
    out.append(event("contentBlockStop", {"contentBlockIndex": 0}))
    out.append(event("messageStop", {"stopReason": stop}))
    out.append(event("metadata", {"usage": usage, "metrics": {"latencyMs": 1}}))
    return out
