"""Task detection (FR-05): explicit > tools > attachments > (the tasks of an imported evaluation >)
keywords (> classifier) > ``general``.

``detect_task`` runs on every request, so it does one pass over the messages (and a walk back to
the newest user message, usually the last one), scans only that message's text (its first and last
``KEYWORD_SCAN_CHARS``) with one precompiled regex, and never decodes attachment payloads: MIME
types come from the head of data URLs, file names and ``input_audio.format``. The maps it reads are
``turnout.domain.task_maps``.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from turnout.domain.task_maps import ATTACHMENT_CAPABILITY, CONFIDENCE, DEFAULT_MAPS, GENERAL, TaskMaps
from turnout.routing.types import DetectionSource, TaskDetection


class TextClassifier(Protocol):
    """What ``detect_task`` needs from an optional text classifier (see ``routing.classifier``)."""

    def predict(self, text: str) -> tuple[str, float] | None:
        """The most likely task type of ``text`` and its probability, or None when unsure."""
        ...


class LearnedTasks(Protocol):
    """What ``detect_task`` needs from the tasks of the imported evaluations (``routing.task_model``)."""

    def mixture(self, text: str) -> list[tuple[str, float]]:
        """The likeliest tasks of ``text`` with their probabilities, likeliest first; none when the
        text is unlike every evaluation's prompts."""
        ...

    def sure_of(self, mixture: Sequence[tuple[str, float]]) -> tuple[str, float] | None:
        """The mixture's likeliest task and its probability, or None where they are unsure."""
        ...


def task_mix(mixture: Sequence[tuple[str, float]], task: str) -> tuple[tuple[str, float], ...]:
    """The other tasks a request may be, for ``RouteRequest.task_mix``: the learned tasks' mixture
    less the detected ``task``, which keeps the rest of the mass. So when the evaluation's tasks
    decide, a prompt that is 60% one and 30% another is routed by both tasks' experience; when they
    are unsure and keywords decide, the keyword task weighs what the learned tasks leave over."""
    return tuple((t, p) for t, p in mixture if t != task)


def _data_url_mime(url: str) -> str:
    """``"image/png"`` from ``"data:image/png;base64,..."`` without touching the payload."""
    end = len(url)
    for sep in (";", ","):
        pos = url.find(sep, 5, 261)
        if 0 <= pos < end:
            end = pos
    return url[5:end].strip().lower() if end < len(url) else ""


def _part_attachment(part: dict[str, Any]) -> tuple[str, str, str] | None:
    """(capability or "", MIME type, filename) of a content part that carries a file, or None."""
    kind = part.get("type")
    if kind == "image_url":  # always an image input, whatever the data URL says
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        mime = _data_url_mime(url) if isinstance(url, str) and url.startswith("data:") else ""
        return "vision", mime or "image/", ""
    if kind == "input_audio":
        audio = part.get("input_audio")
        fmt = audio.get("format") if isinstance(audio, dict) else None
        return "audio", f"audio/{fmt}" if isinstance(fmt, str) else "audio/", ""
    if kind != "file":
        return None
    file = part.get("file")
    data, name = (file.get("file_data"), file.get("filename")) if isinstance(file, dict) else (None, None)
    name = name if isinstance(name, str) else ""
    mime = _data_url_mime(data) if isinstance(data, str) and data.startswith("data:") else ""
    if not mime or mime == "application/octet-stream":
        mime = mimetypes.guess_type(name, strict=False)[0] or mime if name else mime
    return ATTACHMENT_CAPABILITY.get(mime.split("/", 1)[0], ""), mime, name


def _tool_name(item: Any) -> str | None:
    """The function name of a tool definition, tool call or ``tool_choice`` (the type for built-ins)."""
    if not isinstance(item, dict):
        return None
    fn = item.get("function")
    name = fn.get("name") if isinstance(fn, dict) else item.get("name")
    if name is None and item.get("type") not in (None, "function"):
        name = item.get("type")
    return name if isinstance(name, str) and name else None


def _text_of(content: Any) -> str:
    if isinstance(content, str) or not isinstance(content, list):
        return content if isinstance(content, str) else ""
    texts = (p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "\n".join(t for t in texts if isinstance(t, str))


def last_user_text(body: Mapping[str, Any]) -> str:
    """The text of the newest user message that has content (or of a legacy ``prompt``): what
    keywords, classifiers and the prompt memory read."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _text_of(body.get("prompt"))
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if content is not None:
                return _text_of(content)
    return ""


def _pick(tasks: list[str]) -> str:
    """The most frequent task, ties to the first seen."""
    return max(dict.fromkeys(tasks), key=tasks.count)


def detect_task(
    body: Mapping[str, Any],
    maps: TaskMaps = DEFAULT_MAPS,
    *,
    explicit: str | None = None,
    classifier: TextClassifier | None = None,
    learned: LearnedTasks | None = None,
) -> TaskDetection:
    """Detect the task type of an OpenAI Chat Completions body (or a legacy ``prompt`` body).

    Priority: ``explicit`` (the client's ``task_type``) > a tool the assistant called or
    ``tool_choice`` forces > a tool offered > the newest message's attachments > ``learned``, the
    tasks of the imported evaluations, when it is sure (confidence 0.8 x its probability: those names
    are the ones its prior experience is kept under; ``task_mix`` weighs its likeliest other tasks,
    or all of them when it is unsure and a later step decides) > keywords of the last user message >
    ``classifier``, when given and keywords found nothing (confidence 0.7 x its
    probability) > ``general``. ``tools_used``: the tools called in the history, in first-call order,
    or the tools offered when none was called. ``required_capabilities``, whichever source decided:
    ``function_calling`` when tools are offered or called, ``vision`` for an image and ``audio`` for
    audio anywhere in the conversation.
    """
    messages = body.get("messages")
    messages = messages if isinstance(messages, list) else []
    called: list[str] = []
    attachments: list[tuple[str, str, str]] = []  # from the newest message that has any
    caps: set[str] = set()
    for message in reversed(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "assistant":
            calls = message.get("tool_calls")
            names = [*(calls if isinstance(calls, list) else ()), message.get("function_call")]
            called[:0] = [n for c in names if (n := _tool_name(c))]
            continue
        content = message.get("content") if role else None
        if isinstance(content, list):
            parts = [a for p in content if isinstance(p, dict) and (a := _part_attachment(p)) is not None]
            caps.update(cap for cap, _, _ in parts if cap)
            attachments = attachments or parts
    tools = body.get("tools")
    offered = [n for t in tools if (n := _tool_name(t))] if isinstance(tools, list) else []
    functions = body.get("functions")
    if isinstance(functions, list):
        offered += [n for f in functions if (n := _tool_name(f))]
    forced = _tool_name(body.get("tool_choice"))
    if offered or called:
        caps.add("function_calling")
    tools_used = tuple(dict.fromkeys(called or offered))
    capabilities = frozenset(caps)

    mixture: list[tuple[str, float]] = []

    def result(task: str, source: DetectionSource, confidence: float) -> TaskDetection:
        mix = task_mix(mixture, task) if mixture else ()
        return TaskDetection(task, source, round(confidence, 3), tools_used, capabilities, mix)

    if explicit is not None and (task := explicit.strip().lower()[:50]):
        return result(task, "explicit", CONFIDENCE["explicit"])
    strong = [t for n in (*called, *([forced] if forced else [])) if (t := maps.tool_to_task.get(n))]
    if strong:
        return result(_pick(strong[::-1]), "tool", CONFIDENCE["tool_called"])  # ties: newest call
    weak = [t for n in offered if (t := maps.tool_to_task.get(n))]
    if weak:
        return result(_pick(weak), "tool", CONFIDENCE["tool_offered"])
    files = [t for _, mime, name in attachments if (t := maps.task_for_file(mime, name))]
    if files:
        return result(_pick(files), "attachment", CONFIDENCE["attachment"])
    text = last_user_text(body)
    if learned is not None and text:
        mixture = learned.mixture(text)
        taught = learned.sure_of(mixture) if mixture else None
        if taught is not None:
            return result(taught[0], "evaluation", CONFIDENCE["evaluation"] * taught[1])
    found = maps.match_keywords(text) if text else None
    if found is not None:
        return result(found[0], "keyword", found[1])
    guess = classifier.predict(text) if classifier is not None and text else None
    if guess is not None:
        return result(guess[0], "classifier", CONFIDENCE["classifier"] * guess[1])
    return result(GENERAL, "default", 0.0)
