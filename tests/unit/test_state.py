"""State rows: encode/decode round trip and rejection of foreign values."""

from __future__ import annotations

import json

import pytest
from iamspike.state import STATE_FIELD, StateEntry, decode, encode


def test_round_trip() -> None:
    first = 1_000_000 * 3600
    bins = {first + 7200: 4, first + 10800: 2}
    entry = StateEntry(3600, first, first + 36000, "111", "arn:aws:iam::111:user/a", bins, {first + 7200: 3})
    row = encode(entry)
    assert row["account"] == "111" and row["failures"] == 6 and row["_time"] == entry.last
    blob = json.loads(row[STATE_FIELD])
    assert blob["bins"] == {"2": 4, "3": 2} and blob["apis"] == {"2": 3}
    restored = decode(row[STATE_FIELD])
    assert restored.bins == bins and restored.apis == {first + 7200: 3, first + 10800: 1}


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
