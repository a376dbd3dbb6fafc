"""Message ids: random version-4 UUIDs, from a buffered source."""

from __future__ import annotations

import uuid

from turnout.ids import new_id


def test_ids_are_canonical_random_v4_uuids_and_never_repeat() -> None:
    ids = [new_id() for _ in range(20_000)]  # crosses many buffer refills
    assert len(set(ids)) == len(ids)
    for value in ids[:600]:
        parsed = uuid.UUID(value)
        assert str(parsed) == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    # every random bit varies: no position is stuck across the sample (version nibble aside)
    hex_digits = [value.replace("-", "") for value in ids[:2000]]
    varying = [len({h[i] for h in hex_digits}) > 1 for i in range(32)]
    assert varying.count(False) == 1 and not varying[12]
