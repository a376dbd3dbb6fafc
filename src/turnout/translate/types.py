"""The canonical model every translation goes through: OpenAI Chat Completions shapes as TypedDicts.

Client dialects are translated to a ``ChatRequest`` (``ChatCall.body``); adapters take it and turn
the provider's answer back into a ``Completion`` or a stream of ``Chunk``s, which ``api/`` writes in
the caller's dialect. Those are the types at every boundary of the data plane: the parsers, the
adapters' ``ChatAdapter`` protocol, the stream decoders and encoders, the gateway's results.

The types cost nothing at run time: the hot path keeps passing the dicts it parsed (an
OpenAI-compatible request is a shallow copy, a stream chunk passes on as decoded). Where a parsed
JSON object becomes one of these types, a ``cast`` says so after the check that earns it (its
``choices`` is a list, its fields were validated); fields a provider adds pass through untouched.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict


class FunctionCall(TypedDict):
    """A tool call's function: its name and its arguments as a JSON string."""

    name: str
    arguments: str


class ToolCall(TypedDict, total=False):
    """A tool call of an assistant message (``index`` only in stream deltas)."""

    index: int
    id: str
    type: Literal["function"]
    function: FunctionCall


class ImageURL(TypedDict, total=False):
    url: str
    detail: str


class TextPart(TypedDict):
    type: Literal["text"]
    text: str


class ImagePart(TypedDict):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = TextPart | ImagePart


class Message(TypedDict, total=False):
    """One chat message (system, developer, user, assistant or tool)."""

    role: str
    content: str | list[ContentPart] | None
    name: str
    tool_calls: list[ToolCall]
    tool_call_id: str
    refusal: str | None
    reasoning: str
    reasoning_content: str  # the thinking text (DeepSeek's, vLLM's and LiteLLM's name for it)


class FunctionSpec(TypedDict, total=False):
    name: str
    description: str
    parameters: dict[str, Any]
    strict: bool


class Tool(TypedDict):
    type: Literal["function"]
    function: FunctionSpec


class ChatRequest(TypedDict, total=False):
    """A ``/v1/chat/completions`` body; ``model`` is still the catalog id. The last four fields are
    Turnout's own extensions, never sent upstream."""

    model: str
    messages: list[Message]
    stream: bool
    stream_options: dict[str, Any]
    max_tokens: int
    max_completion_tokens: int
    temperature: float
    top_p: float
    stop: str | list[str]
    n: int
    seed: int
    user: str
    tools: list[Tool]
    tool_choice: str | dict[str, Any]
    parallel_tool_calls: bool
    response_format: dict[str, Any]
    reasoning_effort: str
    metadata: dict[str, Any]
    fallbacks: list[str]
    task_type: str
    requirements: dict[str, Any]


class PromptTokensDetails(TypedDict, total=False):
    """``cache_creation_tokens`` is Turnout's extension: cache writes, priced apart from reads."""

    cached_tokens: int
    cache_creation_tokens: int


class CompletionTokensDetails(TypedDict, total=False):
    reasoning_tokens: int


class Usage(TypedDict, total=False):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails
    completion_tokens_details: CompletionTokensDetails


class Choice(TypedDict, total=False):
    index: int
    message: Message
    logprobs: Any
    finish_reason: str | None


class Completion(TypedDict, total=False):
    """A ``chat.completion``; ``model`` is the catalog id."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class FunctionDelta(TypedDict, total=False):
    """A piece of a streamed tool call's function: its name first, then fragments of arguments."""

    name: str
    arguments: str


class ToolCallDelta(TypedDict, total=False):
    """A piece of a streamed tool call, matched to the others by ``index``."""

    index: int
    id: str
    type: Literal["function"]
    function: FunctionDelta


class Delta(TypedDict, total=False):
    role: str
    content: str | None
    refusal: str | None
    reasoning: str
    reasoning_content: str
    tool_calls: list[ToolCallDelta] | list[ToolCall]


class ChunkChoice(TypedDict, total=False):
    index: int
    delta: Delta
    logprobs: Any
    finish_reason: str | None


class Chunk(TypedDict, total=False):
    """A ``chat.completion.chunk``; the last one may carry ``usage`` with ``choices: []``."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None


class EmbeddingsRequest(TypedDict, total=False):
    model: str
    input: str | list[str] | list[int] | list[list[int]]
    dimensions: int
    encoding_format: Literal["float", "base64"]
    user: str


class Embedding(TypedDict):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str


class EmbeddingsUsage(TypedDict):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(TypedDict, total=False):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingsUsage


WholeAnswer = Completion | EmbeddingsResponse
"""A whole (not streamed) answer in canonical form: a chat completion or an embeddings list."""
