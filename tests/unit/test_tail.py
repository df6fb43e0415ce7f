"""P21: a steady machine stream's new record over its own past (iamspike.tail)."""

from __future__ import annotations

import json

import numpy as np
from iamspike.baseline import BaselineParams, fit_baselines
from iamspike.cloudtrail import FIELDS, record_to_row
from iamspike.engine import Detector, parse_options, run
from iamspike.tail import TailParams, own_record, tail_scores

HOUR = 3600
START = 1_700_006_400  # a midnight UTC
BINS = 24 * 20
SPIKE = BINS - 5
MACHINE = np.array([True])


def stream(spike: float = 3.0, seed: int = 7) -> np.ndarray:
    """One principal failing about 20 times an hour, every hour, with one hour at ``spike`` times."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rng.gamma(40.0, 20.0 / 40.0, size=BINS)).astype(np.float64)[:, None]
    counts = np.maximum(counts, 1.0)
    counts[SPIKE, 0] = round(spike * 20)
    return counts


def flags(counts, machine=MACHINE, params=None, t=None):
    base = fit_baselines(counts, START, HOUR, params=BaselineParams(), day_shape=True)
    t_idx = np.arange(counts.shape[0]) if t is None else np.asarray(t)
    e_idx = np.zeros(len(t_idx), dtype=np.int64)
    hl = BaselineParams().local_half_life_bins
    return own_record(counts, base, t_idx, e_idx, machine, hl, params=params), base


def test_a_steady_streams_spike_is_its_own_record_and_no_other_hour_is():
    counts = stream()
    record, _ = flags(counts)
    assert record[SPIKE]
    assert not record[:SPIKE].any()


def test_a_person_is_never_judged_against_its_own_record():
    record, _ = flags(stream(), machine=np.array([False]))
    assert not record.any()


def test_a_stream_with_a_silent_hour_in_the_last_week_is_not_steady():
    counts = stream()
    counts[SPIKE - 30, 0] = 0.0
    record, _ = flags(counts)
    assert not record[SPIKE]


def test_a_spike_no_higher_than_an_earlier_hour_is_no_record():
    counts = stream()
    counts[SPIKE - 24 * 9, 0] = counts[SPIKE, 0] + 10  # an earlier, bigger hour
    record, _ = flags(counts)
    assert not record[SPIKE]


def test_the_margin_and_the_floor_decide():
    counts = stream()
    base = fit_baselines(counts, START, HOUR, params=BaselineParams(), day_shape=True)
    hl = BaselineParams().local_half_life_bins
    zero = np.zeros(1, dtype=np.int64)
    now = tail_scores(counts, base, np.array([SPIKE]), zero, hl)[0]
    assert now >= TailParams().floor
    high = TailParams(floor=now + 1.0)
    record, _ = flags(counts, params=high, t=[SPIKE])
    assert not record[0]
    past = tail_scores(counts, base, np.arange(SPIKE), np.zeros(SPIKE, dtype=np.int64), hl).max()
    wide = TailParams(margin=now - past + 1.0)
    record, _ = flags(counts, params=wide, t=[SPIKE])
    assert not record[0]
    record, _ = flags(counts, params=TailParams(margin=now - past - 1.0), t=[SPIKE])
    assert record[0]


# ------------------------------------------------------------------- through the engine
T0 = 1_788_739_200  # 2026-09-07T00:00:00Z
ACCT = "111122223333"
ROLE = f"arn:aws:sts::{ACCT}:assumed-role/etl/i-0abc"
USER = f"arn:aws:iam::{ACCT}:user/alice"
AT = 9 * 24 + 14  # the spike's hour, on day 10


def denied(t: float, arn: str) -> dict:
    kind = "IAMUser" if ":user/" in arn else "AssumedRole"
    return {
        "eventTime": t,
        "eventName": "GetObject",
        "eventSource": "s3.amazonaws.com",
        "errorCode": "AccessDenied",
        "recipientAccountId": ACCT,
        "sourceIPAddress": "10.0.0.5",
        "userAgent": "Boto3/1",
        "userIdentity": {"type": kind, "arn": arn, "accountId": ACCT},
    }


def poller(extra: int, arn: str = ROLE, days: int = 10) -> list[dict]:
    """About 20 denials an hour, every hour, on one usual API; ``extra`` more at hour AT."""
    rng = np.random.default_rng(11)
    out = []
    for h in range(days * 24):
        n = max(1, int(rng.poisson(rng.gamma(40.0, 0.5)))) + (extra if h == AT else 0)
        out += [denied(T0 + h * HOUR + 3 * i, arn) for i in range(n)]
    return out


def spikes(rows: list[dict]) -> list[int]:
    return [(r["_time"] - T0) // HOUR for r in rows if r["entity_type"] == "principal"]


def test_an_engine_run_flags_the_record_of_a_steady_role_not_of_a_person_nor_a_smaller_hour():
    rows = run(poller(35))  # 50 against an expected 20 (upper 61): its own record
    assert spikes(rows) == [AT]
    (row,) = rows
    assert row["score"] == 50.0
    assert "50 is far above every earlier bin of this steady stream (its own record)" in row["reason"]
    assert spikes(run(poller(35, arn=USER))) == []
    assert spikes(run(poller(15))) == []


def test_raw_events_count_rows_and_a_saved_state_give_the_same_record():
    records = poller(35)
    long_run = run(records)
    counts: dict[tuple, int] = {}
    for r in records:
        key = (int(r["eventTime"]) // HOUR * HOUR, r["eventName"])
        counts[key] = counts.get(key, 0) + 1
    header = ["_time", "account", "principal", "eventName", "count"]
    table = [
        [str(t), ACCT, "arn:aws:iam::111122223333:role/etl", api, str(n)] for (t, api), n in counts.items()
    ]
    detector = Detector(parse_options(["count_field=count"]))
    detector.add_rows(header, table)
    assert spikes(detector.results()) == [AT]
    early = [r for r in records if r["eventTime"] < T0 + 9 * 24 * HOUR]
    late = [r for r in records if r["eventTime"] >= T0 + 9 * 24 * HOUR]
    saved = run(early, parse_options(["show=state"]))
    state_header = sorted({key for row in saved for key in row})
    alert = Detector()
    alert.add_rows(state_header, [[str(row.get(key, "")) for key in state_header] for row in saved])
    alert.add_rows([*FIELDS, "_raw"], [[*record_to_row(r), json.dumps(r)] for r in late])
    assert alert.results() == long_run
