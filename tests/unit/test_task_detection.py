"""Task detection (FR-05): what a client request is routed as, and why."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from turnout.domain.task_maps import DEFAULT_MAPS, KEYWORD_TO_TASK_TYPE, TOOL_TO_TASK_TYPE, TaskMaps
from turnout.routing.classifier import TaskClassifier
from turnout.routing.detection import detect_task

PDF = {
    "type": "file",
    "file": {"filename": "contract.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"},
}
PNG = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
WAV = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}


def user(text: str, *parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text}, *parts] if parts else text}


def tool(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}


def called(*names: str) -> dict[str, Any]:
    calls = [
        {"id": f"c{i}", "type": "function", "function": {"name": n, "arguments": "{}"}}
        for i, n in enumerate(names)
    ]
    return {"role": "assistant", "content": None, "tool_calls": calls}


def body(*messages: dict[str, Any], tools: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"model": "auto", "messages": list(messages), **extra}
    if tools is not None:
        out["tools"] = [tool(t) for t in tools]
    return out


# --- priority: explicit > tool > attachment > keyword > default ---------------------------------


def test_explicit_task_type_wins_over_every_other_signal() -> None:
    request = body(user("Summarize this slides deck", PDF), called("code_execute"), tools=["http_fetch"])
    found = detect_task(request, explicit=" Translation ")
    assert (found.task_type, found.source, found.confidence) == ("translation", "explicit", 1.0)
    assert found.tools_used == ("code_execute",)  # still recorded for FR-05.5
    assert found.required_capabilities == {"function_calling"}


def test_blank_explicit_is_ignored() -> None:
    assert detect_task(body(user("write some python")), explicit="  ").source == "keyword"


def test_a_tool_beats_attachments_and_keywords() -> None:
    found = detect_task(body(user("Please summarize this photo", PNG), tools=["http_fetch"]))
    assert (found.task_type, found.source) == ("research", "tool")
    assert found.required_capabilities == {"function_calling", "vision"}


def test_an_attachment_beats_keywords() -> None:
    found = detect_task(body(user("Translate this into French", PDF)))
    assert (found.task_type, found.source, found.confidence) == ("document", "attachment", 0.85)


def test_keywords_beat_the_default() -> None:
    found = detect_task(body(user("Can you condense this into a TL;DR?")))
    assert (found.task_type, found.source) == ("summarization", "keyword")
    assert 0.5 <= found.confidence <= 0.7


def test_nothing_to_go_on_is_general() -> None:
    for request in (body(user("hi!")), body(), {"messages": "not a list"}, {}):
        found = detect_task(request)
        assert (found.task_type, found.source, found.confidence) == ("general", "default", 0.0)
        assert found.tools_used == () and found.required_capabilities == frozenset()


# --- tools --------------------------------------------------------------------------------------


def test_a_tool_the_assistant_called_outweighs_tools_merely_offered() -> None:
    request = body(
        user("find the changelog"),
        called("http_fetch"),
        {"role": "tool", "tool_call_id": "c0", "content": "<html>"},
        user("and the one before?"),
        tools=["code_execute", "document_ingest"],
    )
    found = detect_task(request)
    assert (found.task_type, found.source, found.confidence) == ("research", "tool", 0.9)
    assert found.tools_used == ("http_fetch",)


def test_offered_tools_decide_with_less_confidence_and_are_listed_when_none_was_called() -> None:
    found = detect_task(body(user("hello"), tools=["get_weather", "mermaid_diagram"]))
    assert (found.task_type, found.source, found.confidence) == ("diagram", "tool", 0.8)
    assert found.tools_used == ("get_weather", "mermaid_diagram")


def test_the_most_called_tool_wins_and_ties_go_to_the_newest_call() -> None:
    history = [user("go"), called("file_read"), called("code_execute", "code_execute"), user("next")]
    assert detect_task(body(*history)).task_type == "code"
    tied = body(user("go"), called("file_read"), called("http_fetch"), user("next"))
    assert detect_task(tied).task_type == "research"
    found = detect_task(body(*history))
    assert found.tools_used == ("file_read", "code_execute")


def test_a_forced_tool_choice_counts_as_a_call() -> None:
    forced = {"type": "function", "function": {"name": "dalle3_image_gen"}}
    found = detect_task(body(user("a fox"), tools=["http_fetch", "dalle3_image_gen"], tool_choice=forced))
    assert (found.task_type, found.confidence) == ("image_gen", 0.9)


def test_built_in_tool_types_and_legacy_functions_are_recognised() -> None:
    built_in = {"messages": [user("news?")], "tools": [{"type": "web_search"}]}
    assert detect_task(built_in).task_type == "research"
    legacy = body(user("run it"), functions=[{"name": "code_execute", "parameters": {}}])
    assert detect_task(legacy).task_type == "code"


def test_unknown_tools_fall_through_but_still_require_function_calling() -> None:
    found = detect_task(body(user("Summarize my inbox"), tools=["list_emails"]))
    assert (found.task_type, found.source) == ("summarization", "keyword")
    assert found.tools_used == ("list_emails",)
    assert found.required_capabilities == {"function_calling"}


# --- attachments --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("part", "task", "capabilities"),
    [
        (PNG, "image", {"vision"}),
        ({"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}, "image", {"vision"}),
        (WAV, "audio", {"audio"}),
        (PDF, "document", set()),
        (
            {
                "type": "file",
                "file": {"filename": "main.py", "file_data": "data:application/octet-stream;base64,AA"},
            },
            "code",
            set(),
        ),
        ({"type": "file", "file": {"filename": "Q3.XLSX"}}, "analysis", set()),
        ({"type": "file", "file": {"file_data": "data:text/csv,a,b"}}, "analysis", set()),
        ({"type": "file", "file": {"filename": "deck.pptx"}}, "slides", set()),
        (
            {"type": "file", "file": {"filename": "x", "file_data": "data:audio/mpeg;base64,AA"}},
            "audio",
            {"audio"},
        ),
        ({"type": "file", "file": {"filename": "scan.png"}}, "image", {"vision"}),  # MIME from the name
    ],
)
def test_attachment_types_from_data_urls_file_parts_and_extensions(
    part: dict[str, Any], task: str, capabilities: set[str]
) -> None:
    found = detect_task(body(user("what about this?", part)))
    assert (found.task_type, found.source) == (task, "attachment")
    assert found.required_capabilities == capabilities


def test_a_file_part_of_unknown_type_falls_through_to_keywords() -> None:
    part = {"type": "file", "file": {"file_id": "file-abc123"}}
    assert detect_task(body(user("Review it", part))).task_type == "analysis"


def test_the_newest_attachments_decide_but_every_image_needs_vision() -> None:
    found = detect_task(
        body(user("look", PNG), {"role": "assistant", "content": "a cat"}, user("and this?", PDF))
    )
    assert found.task_type == "document"
    assert found.required_capabilities == {"vision"}


def test_an_image_earlier_in_the_conversation_still_decides_and_needs_vision() -> None:
    found = detect_task(body(user("look", PNG), {"role": "assistant", "content": "ok"}, user("write a poem")))
    assert found.task_type == "image"  # the conversation is about the image
    assert "vision" in found.required_capabilities


# --- keywords -----------------------------------------------------------------------------------


def test_only_the_last_user_message_is_read_for_keywords() -> None:
    request = body(
        user("write python code"), {"role": "assistant", "content": "Here is the code"}, user("Summarize it")
    )
    assert detect_task(request).task_type == "summarization"


def test_text_parts_are_read() -> None:
    request = body(
        {
            "role": "user",
            "content": [{"type": "text", "text": "make a"}, {"type": "text", "text": "PowerPoint"}],
        }
    )
    assert detect_task(request).task_type == "slides"


@pytest.mark.parametrize(
    ("text", "task"),
    [
        ("Explain this verse of scripture", "general"),  # "script" must not match inside a word
        ("a subscript in LaTeX", "general"),
        ("Fix my JAVASCRIPT", "code"),  # case-insensitive
        ("two scripts are failing", "code"),  # plural
        ("Think step\nby   step", "reasoning"),  # phrases match across any whitespace
        ("reviewing the codebase", "general"),  # whole words only
        ("tl;dr please", "summarization"),
        (r"Simplify $\frac{3}{9}$", "math"),
    ],
)
def test_keywords_match_whole_words_case_insensitively(text: str, task: str) -> None:
    assert detect_task(body(user(text))).task_type == task


def test_more_keywords_win_and_ties_go_to_the_task_listed_first() -> None:
    two_for_code = detect_task(body(user("Summarize what this Python function does")))
    assert two_for_code.task_type == "code"
    tie = detect_task(body(user("Summarize the report")))  # summarization 1, document 1
    assert tie.task_type == "summarization"
    assert tie.confidence < two_for_code.confidence


def test_a_repeated_keyword_counts_once() -> None:
    found = detect_task(body(user("photo photo photo photo, translate the caption")))
    assert found.task_type == "translation"  # image 1 (repeated), translation 1: tie -> map order


def test_a_legacy_prompt_body_is_read() -> None:
    assert detect_task({"model": "x", "prompt": "translate to German: hello"}).task_type == "translation"


def test_the_srs_maps_are_part_of_the_defaults() -> None:
    for name, task in TOOL_TO_TASK_TYPE.items():
        assert DEFAULT_MAPS.tool_to_task[name] == task
    for task, words in KEYWORD_TO_TASK_TYPE.items():
        assert DEFAULT_MAPS.keyword_to_task[task][: len(words)] == words
    assert list(DEFAULT_MAPS.keyword_to_task)[: len(KEYWORD_TO_TASK_TYPE)] == list(KEYWORD_TO_TASK_TYPE)


# --- classifier hook ----------------------------------------------------------------------------


class FakeClassifier:
    def __init__(self, answer: tuple[str, float] | None) -> None:
        self.answer = answer
        self.calls: list[str] = []

    def predict(self, text: str) -> tuple[str, float] | None:
        self.calls.append(text)
        return self.answer


def test_the_classifier_is_asked_only_when_keywords_find_nothing() -> None:
    fake = FakeClassifier(("math", 0.9))
    found = detect_task(body(user("Sasha sells ten boards at $10 each")), classifier=fake)
    assert (found.task_type, found.source, found.confidence) == ("math", "classifier", 0.63)
    assert detect_task(body(user("Write a python script")), classifier=fake).source == "keyword"
    assert fake.calls == ["Sasha sells ten boards at $10 each"]


def test_an_unsure_classifier_leaves_the_default() -> None:
    assert detect_task(body(user("hmm")), classifier=FakeClassifier(None)).source == "default"


def test_the_real_classifier_is_unavailable_without_its_head(tmp_path: Path) -> None:
    assert TaskClassifier.if_available(head_path=tmp_path / "missing.json") is None


@pytest.mark.skipif(not TaskClassifier.available(), reason="needs the 'classifier' extra (wordllama)")
def test_the_real_classifier_recognises_benchmark_style_prompts() -> None:
    classifier = TaskClassifier()
    guess = classifier.predict("Write a function to find the maximum value in a given heterogeneous list.")
    assert guess is not None and guess[0] == "code"
    guess = classifier.predict(
        "Mrs. Thompson bought 3 chickens for $3 each and paid $15. What did the potatoes cost?"
    )
    assert guess is not None and guess[0] == "math"
    found = detect_task(
        body(user("Lea bought one book for $16 and three binders for $2 each.")), classifier=classifier
    )
    assert (found.task_type, found.source) == ("math", "classifier")


# --- maps: runtime replacement, round trip, validation ------------------------------------------


def test_maps_round_trip_through_json() -> None:
    data = json.loads(json.dumps(DEFAULT_MAPS.to_dict()))
    assert TaskMaps.from_dict(data) == DEFAULT_MAPS
    assert TaskMaps.from_dict(data).to_dict() == DEFAULT_MAPS.to_dict()


def test_replacement_maps_change_detection() -> None:
    maps = TaskMaps.from_dict(
        {
            "tool_to_task": {"jira_search": "ticketing"},
            "keyword_to_task": {"legal": ["contract", "clause"], "code": ["script"]},
        }
    )
    assert detect_task(body(user("hi"), tools=["jira_search"]), maps).task_type == "ticketing"
    assert detect_task(body(user("Is this clause enforceable?")), maps).task_type == "legal"
    assert detect_task(body(user("Summarize it")), maps).task_type == "general"
    assert maps.mime_to_task == DEFAULT_MAPS.mime_to_task  # a missing field keeps the default
    assert detect_task(body(user("hi"), tools=["http_fetch"]), maps).source == "default"


def test_maps_are_immutable_and_copy_their_input() -> None:
    source = {"tool_to_task": {}, "mime_to_task": {}, "keyword_to_task": {"legal": ["contract"]}}
    maps = TaskMaps.from_dict(source)
    source["keyword_to_task"]["legal"].append("clause")
    assert detect_task(body(user("a clause")), maps).task_type == "general"
    with pytest.raises(dataclasses.FrozenInstanceError):
        maps.tool_to_task = {}  # type: ignore[misc]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([], "task maps"),
        ({"keywords": {}}, "unknown field(s): keywords"),
        ({"tool_to_task": ["code_execute"]}, "tool_to_task"),
        ({"tool_to_task": {"code_execute": "Code Gen"}}, "tool_to_task['code_execute']"),
        ({"tool_to_task": {"": "code"}}, "tool_to_task['']"),
        ({"mime_to_task": {"pdf": "document"}}, "mime_to_task['pdf']"),
        ({"mime_to_task": {"Image/": "image"}}, "mime_to_task['Image/']"),
        ({"keyword_to_task": {"code": "python"}}, "keyword_to_task['code']"),
        ({"keyword_to_task": {"code": ["python", " "]}}, "keyword_to_task['code'][1]"),
        ({"keyword_to_task": {"code": ["python", 3]}}, "keyword_to_task['code'][1]"),
        ({"keyword_to_task": {"x" * 51: ["python"]}}, "keyword_to_task['xxxx"),
    ],
)
def test_bad_maps_are_rejected_naming_the_field(data: Any, field: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(field)):
        TaskMaps.from_dict(data)
