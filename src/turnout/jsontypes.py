"""Pydantic types for what the API says: free-form JSON objects the store can always serialise,
amounts of USD as the records keep them."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, PlainSerializer

MAX_JSON_BYTES = 64 * 1024
USD_QUANTUM = Decimal("0.00000001")  # messages.cost_usd is NUMERIC(18, 8)


def _storable(value: dict[str, Any]) -> dict[str, Any]:
    try:
        size = len(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise ValueError(f"not storable as JSON: {exc}") from None
    if size > MAX_JSON_BYTES:
        raise ValueError(f"JSON object larger than {MAX_JSON_BYTES} bytes")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_storable)]


def usd_text(amount: Decimal) -> str:
    """An amount as a plain decimal with 8 places ("0.00980000", "0.00000000"): a database's Decimal
    reads back as "0E-8" or "0.00980000" (PostgreSQL), a sum as "0.0098" or "1E-8" (SQLite)."""
    return f"{amount.quantize(USD_QUANTUM):f}"


Usd = Annotated[Decimal, PlainSerializer(usd_text, return_type=str)]  # said (JSON, CSV) as ``usd_text``
