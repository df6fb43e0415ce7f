"""State rows: encode/decode round trip and rejection of foreign values."""

from __future__ import annotations

import json

import pytest
from iamspike.state import STATE_FIELD, StateEntry, decode, encode


def test_round_trip() -> None:
    entry = StateEntry(3600, 1_000_000 * 3600, 1_000_010 * 3600, "111", "arn:aws:iam::111:user/a", {})
    entry = StateEntry(
        entry.span, entry.first, entry.last, entry.account, entry.principal, {entry.first + 7200: 4}
    )
    row = encode(entry)
    assert row["account"] == "111" and row["failures"] == 4 and row["_time"] == entry.last
    assert json.loads(row[STATE_FIELD])["bins"] == {"2": 4}
    assert decode(row[STATE_FIELD]) == entry


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        '{"v": 99}',
        '{"v": 1, "span": 3600}',
        '{"v":1,"span":"x","first":0,"last":0,"account":"","principal":"","bins":{}}',
    ],
)
def test_decode_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        decode(text)
