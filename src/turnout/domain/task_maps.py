"""Task-detection maps (FR-05): tool -> task, attachment type -> task, keywords -> task.

The maps are data an admin may edit (``/api/v2/routing/task-maps``): the snapshot holds them,
and routing's detection reads them. Built once per edit: keywords become one precompiled regex.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

GENERAL = "general"
KEYWORD_SCAN_CHARS = 1_000  # a longer message is scanned on its first and last this many characters
CONFIDENCE = {
    "explicit": 1.0,
    "tool_called": 0.9,
    "tool_offered": 0.8,
    "attachment": 0.85,
    "evaluation": 0.8,
    "classifier": 0.7,
}
_TASK_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,49}")  # messages.task_type is VARCHAR(50)
_MAX_KEYWORDS = 5_000
_FIELDS = ("tool_to_task", "mime_to_task", "keyword_to_task")
ATTACHMENT_CAPABILITY = {"image": "vision", "audio": "audio"}  # an attachment's top MIME type -> capability

# FR-05 (SRS 3.5.4), verbatim.
TOOL_TO_TASK_TYPE: dict[str, str] = {
    "code_execute": "code",
    "document_ingest": "document",
    "http_fetch": "research",
    "file_read": "file_ops",
    "canvas_append": "canvas",
    "dalle3_image_gen": "image_gen",
    "mermaid_diagram": "diagram",
    "playwright_screenshot": "screenshot",
}
KEYWORD_TO_TASK_TYPE: dict[str, list[str]] = {
    "slides": ["powerpoint", "ppt", "presentation", "slides"],
    "code": ["code", "program", "script", "function", "python", "javascript"],
    "analysis": ["analyze", "examine", "investigate", "review"],
    "summarization": ["summarize", "summary", "condense", "tldr"],
    "translation": ["translate", "translation"],
    "image": ["image", "picture", "photo", "diagram"],
    "document": ["document", "report", "paper", "pdf"],
}


def _task_name(value: object, where: str) -> str:
    if not isinstance(value, str) or not _TASK_NAME.fullmatch(value):
        raise ValueError(f"{where}: task type must be 1-50 characters of a-z, 0-9, '_', '.', '-'")
    return value


def _key(value: object, where: str, limit: int) -> str:
    if not isinstance(value, str) or not value or value != value.strip() or len(value) > limit:
        raise ValueError(f"{where}: must be a non-empty string without surrounding spaces, <= {limit} chars")
    return value


def _mapping(value: object, name: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name}: must be an object")
    return value


def _trie(words: Iterable[str]) -> str:
    """``words`` as a prefix-tree regex, longest match first: 2-3x faster than a flat alternation."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for token in re.findall(r"\S|\s+", word):
            node = node.setdefault(" " if token.isspace() else token, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        branches = [(r"\s+" if k == " " else re.escape(k)) + emit(v) for k, v in sorted(node.items()) if k]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(root)


def _keyword_regex(keywords: Iterable[str]) -> re.Pattern[str]:
    """Whole-word matches of any keyword, with an optional plural 's'."""
    keywords = list(keywords)
    if not keywords:
        return re.compile(r"(?!)")
    return re.compile(r"(?<!\w)" + _trie(keywords) + r"s?(?!\w)")


@dataclass(frozen=True)
class TaskMaps:
    """The three maps detection reads; immutable once built, replace the whole object to change them.

    - ``tool_to_task``: tool (function) name -> task type, exact match.
    - ``mime_to_task``: a MIME prefix (``"image/"``, ``"application/pdf"``; longest prefix wins) or a
      filename extension with its dot (``".py"``; checked before the MIME type) -> task type.
    - ``keyword_to_task``: task type -> keywords or phrases; case-insensitive whole-word matches, with
      an optional plural ``s``; the task with the most distinct keywords found wins, ties go to the
      task listed first.
    """

    tool_to_task: dict[str, str]
    mime_to_task: dict[str, str]
    keyword_to_task: dict[str, list[str]]
    _tasks: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _keyword_tasks: dict[str, tuple[int, ...]] = field(init=False, repr=False, compare=False)
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _extensions: dict[str, str] = field(init=False, repr=False, compare=False)
    _prefixes: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tools = {
            _key(k, f"tool_to_task[{k!r}]", 128): _task_name(v, f"tool_to_task[{k!r}]")
            for k, v in _mapping(self.tool_to_task, "tool_to_task").items()
        }
        mimes: dict[str, str] = {}
        for k, v in _mapping(self.mime_to_task, "mime_to_task").items():
            where = f"mime_to_task[{k!r}]"
            key = _key(k, where, 127)
            if key != key.lower() or not (key.startswith(".") or "/" in key) or " " in key:
                raise ValueError(f"{where}: key must be a lower-case MIME prefix ('image/') or extension")
            mimes[key] = _task_name(v, where)
        keywords: dict[str, list[str]] = {}
        index: dict[str, tuple[int, ...]] = {}
        for i, (task, words) in enumerate(_mapping(self.keyword_to_task, "keyword_to_task").items()):
            where = f"keyword_to_task[{task!r}]"
            _task_name(task, where)
            if isinstance(words, str) or not isinstance(words, list | tuple):
                raise ValueError(f"{where}: must be a list of keywords")
            keywords[task] = [_key(word, f"{where}[{j}]", 100) for j, word in enumerate(words)]
            for norm in dict.fromkeys(" ".join(word.lower().split()) for word in keywords[task]):
                index[norm] = (*index.get(norm, ()), i)
        if len(index) > _MAX_KEYWORDS:
            raise ValueError(f"keyword_to_task: at most {_MAX_KEYWORDS} distinct keywords, got {len(index)}")
        set_ = object.__setattr__
        set_(self, "tool_to_task", tools)
        set_(self, "mime_to_task", mimes)
        set_(self, "keyword_to_task", keywords)
        set_(self, "_tasks", tuple(keywords))
        set_(self, "_keyword_tasks", index)
        set_(self, "_regex", _keyword_regex(index))
        set_(self, "_extensions", {k: v for k, v in mimes.items() if k.startswith(".")})
        prefixes = sorted(((k, v) for k, v in mimes.items() if "/" in k), key=lambda kv: -len(kv[0]))
        set_(self, "_prefixes", tuple(prefixes))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskMaps:
        """Build from ``to_dict()``'s shape; a missing field keeps ``DEFAULT_MAPS``'s, ``{}`` empties it.

        Raises ``ValueError`` naming the offending field on any bad input.
        """
        data = _mapping(data, "task maps")
        unknown = sorted(str(k) for k in data if k not in _FIELDS)
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(unknown)}; expected {', '.join(_FIELDS)}")
        base = DEFAULT_MAPS.to_dict()
        return cls(**{name: data.get(name, base[name]) for name in _FIELDS})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy, order preserved (it breaks keyword ties)."""
        keywords = {k: list(v) for k, v in self.keyword_to_task.items()}
        return {
            "tool_to_task": dict(self.tool_to_task),
            "mime_to_task": dict(self.mime_to_task),
            "keyword_to_task": keywords,
        }

    def task_for_file(self, mime: str, filename: str = "") -> str | None:
        """The task of an attachment: its extension first, then the longest matching MIME prefix."""
        dot = filename.rfind(".")
        if dot >= 0:
            task = self._extensions.get(filename[dot:].lower())
            if task is not None:
                return task
        for prefix, task in self._prefixes:
            if mime.startswith(prefix):
                return task
        return None

    def keyword_scores(self, text: str) -> list[int]:
        """Distinct keywords found per task, in ``keyword_to_task`` order (a word repeated in a pasted
        text counts once)."""
        scores = [0] * len(self._tasks)
        if len(text) > 2 * KEYWORD_SCAN_CHARS:
            text = text[:KEYWORD_SCAN_CHARS] + "\n" + text[-KEYWORD_SCAN_CHARS:]
        index = self._keyword_tasks
        found = set()
        for hit in set(self._regex.findall(text.lower())):
            if hit not in index:  # a plural, or a phrase with other whitespace
                hit = " ".join(hit.split())
                hit = hit if hit in index else hit[:-1]
            found.add(hit)
        for keyword in found:
            for i in index.get(keyword, ()):
                scores[i] += 1
        return scores

    def match_keywords(self, text: str) -> tuple[str, float] | None:
        """The keyword task of ``text`` and a confidence: 0.5 for one hit, up to 0.7; -0.1 when tied."""
        scores = self.keyword_scores(text)
        best = max(scores, default=0)
        if best == 0:
            return None
        tied = scores.count(best) > 1
        return self._tasks[scores.index(best)], 0.5 + 0.1 * min(best - 1, 2) - (0.1 if tied else 0.0)


def _by_task(groups: dict[str, str]) -> dict[str, str]:
    """Invert ``{task: "key key ..."}`` into ``{key: task}``: the defaults read better grouped by task."""
    return {key: task for task, keys in groups.items() for key in keys.split()}


_OOXML, _ODF = "application/vnd.openxmlformats-officedocument", "application/vnd.oasis.opendocument"
_DEFAULT_TOOLS = {
    "code": "code_interpreter python run_code",
    "research": "web_search web_search_preview",
    "document": "file_search",
    "image_gen": "image_generation generate_image",
}
_DEFAULT_MIMES = {
    "image": "image/ .png .jpg .jpeg .gif .webp .bmp .tiff .heic",
    "audio": "audio/ .mp3 .wav .m4a .ogg .flac",
    "video": "video/ .mp4 .mov .mkv .avi .webm",
    "document": f"application/pdf application/msword {_OOXML}.wordprocessingml {_ODF}.text application/rtf"
    " application/epub text/plain text/markdown text/html .pdf .doc .docx .odt .rtf .txt .md .epub .html",
    "slides": f"application/vnd.ms-powerpoint {_OOXML}.presentationml {_ODF}.presentation .ppt .pptx .odp",
    "analysis": f"application/vnd.ms-excel {_OOXML}.spreadsheetml {_ODF}.spreadsheet text/csv"
    " text/tab-separated-values .csv .tsv .xls .xlsx .ods",
    "code": "text/x- application/x-python application/javascript text/javascript application/x-sh"
    " application/sql .py .ipynb .js .mjs .ts .tsx .jsx .java .kt .go .rs .c .h .cc .cpp .hpp .cs .rb .php"
    " .swift .scala .sh .ps1 .sql .r .lua .pl .dart .hs .ex .clj .vue .svelte",
}
_MORE_KEYWORDS = {  # added to the SRS lists, and new task types after them (order breaks ties)
    "slides": "slide|slide deck|pitch deck|pptx|keynote",
    "code": "def|bash|sql|regex|typescript|debug|refactor|bug|exception|traceback|stack trace",
    "analysis": "analyse|analysis|pros and cons",
    "summarization": "summarise|tl;dr|gist|key points",
    "translation": "how do you say|into english|into french|into spanish|into german|traducir|traduire",
    "math": r"math|calculate|solve|equation|probability|percent|arithmetic|algebra|how many|how much"
    r"|\frac|\sqrt|\cdot|\times|\boxed",
    "reasoning": "logic|puzzle|riddle|deduce|clue|step by step|which of the following",
    "creative": "poem|story|lyrics|haiku|fiction|creative|tagline|slogan",
    "qa": "who|when|where|which|what is|what was|what year|trivia",
}
DEFAULT_MAPS = TaskMaps(
    tool_to_task={**TOOL_TO_TASK_TYPE, **_by_task(_DEFAULT_TOOLS)},
    mime_to_task=_by_task(_DEFAULT_MIMES),
    keyword_to_task={
        task: [*KEYWORD_TO_TASK_TYPE.get(task, []), *filter(None, _MORE_KEYWORDS.get(task, "").split("|"))]
        for task in {**KEYWORD_TO_TASK_TYPE, **_MORE_KEYWORDS}
    },
)
