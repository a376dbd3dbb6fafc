"""A pydantic type for free-form JSON objects that the store can always serialise."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from pydantic import AfterValidator

MAX_JSON_BYTES = 64 * 1024


def _storable(value: dict[str, Any]) -> dict[str, Any]:
    try:
        size = len(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise ValueError(f"not storable as JSON: {exc}") from None
    if size > MAX_JSON_BYTES:
        raise ValueError(f"JSON object larger than {MAX_JSON_BYTES} bytes")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_storable)]
