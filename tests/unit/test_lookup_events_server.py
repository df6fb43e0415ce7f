"""The loopback LookupEvents endpoint, driven by the real boto3 client over HTTP."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from standin.lookup_events_server import LookupEventsServer, make_records

END = 1_790_000_000.0  # 2026-09-21


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client(server: LookupEventsServer, region: str = "us-east-1", attempts: int = 1, key: str = "AKIATEST"):
    return boto3.client(
        "cloudtrail",
        region_name=region,
        endpoint_url=server.endpoint_url,
        aws_access_key_id=key,
        aws_secret_access_key="secret",
        config=Config(retries={"mode": "standard", "total_max_attempts": attempts}),
    )


@pytest.fixture
def server():
    with LookupEventsServer(rate=None) as running:
        yield running


def pages(ct, **params):
    return list(ct.get_paginator("lookup_events").paginate(**params))


def test_paginates_newest_first_50_a_page(server):
    records = make_records(120, END)
    server.load(records)
    got = pages(client(server), StartTime=END - 1000, EndTime=END)
    assert [len(p["Events"]) for p in got] == [50, 50, 20]
    events = [e for p in got for e in p["Events"]]
    assert [e["EventId"] for e in events] == [r["eventID"] for r in reversed(records)]
    first = events[0]
    assert json.loads(first["CloudTrailEvent"]) == records[-1]
    assert first["EventTime"].timestamp() == END
    assert first["Username"] == records[-1]["userIdentity"]["userName"]
    assert first["ReadOnly"] == "true"
    assert "NextToken" not in got[-1]


def test_time_range_is_inclusive_and_checked(server):
    server.load(make_records(10, END))
    ct = client(server)
    got = ct.lookup_events(StartTime=END - 3, EndTime=END - 1)["Events"]
    assert [e["EventTime"].timestamp() for e in got] == [END - 1, END - 2, END - 3]
    with pytest.raises(ClientError) as error:
        ct.lookup_events(StartTime=END, EndTime=END - 5)
    assert error.value.response["Error"]["Code"] == "InvalidTimeRangeException"


def test_region_and_account_scope(server):
    server.load(make_records(5, END, prefix="use1"), region="us-east-1")
    server.load(make_records(3, END, prefix="euw1"), region="eu-west-1")
    server.load(make_records(4, END, prefix="other"), region="us-east-1", account="210987654321")
    server.map_key("AKIAOTHER", "210987654321")
    assert len(client(server, "us-east-1").lookup_events()["Events"]) == 5
    assert {e["EventId"][:4] for e in client(server, "eu-west-1").lookup_events()["Events"]} == {"euw1"}
    assert len(client(server, "eu-central-1").lookup_events()["Events"]) == 0
    other = client(server, "us-east-1", key="AKIAOTHER").lookup_events()["Events"]
    assert {e["EventId"][:5] for e in other} == {"other"}
    assert {(r.region, r.account) for r in server.served()} == {
        ("us-east-1", "123456789012"),
        ("eu-west-1", "123456789012"),
        ("eu-central-1", "123456789012"),
        ("us-east-1", "210987654321"),
    }


def test_next_token_is_stable_when_new_events_arrive(server):
    server.load(make_records(60, END, prefix="old"))
    ct = client(server)
    first = ct.lookup_events(MaxResults=50)
    server.load(make_records(30, END + 100, prefix="new"))
    second = ct.lookup_events(MaxResults=50, NextToken=first["NextToken"])
    ids = [e["EventId"] for e in first["Events"] + second["Events"]]
    assert len(ids) == len(set(ids)) == 60
    assert all(i.startswith("old-") for i in ids)


def test_next_token_must_match_the_query(server):
    server.load(make_records(60, END))
    ct = client(server)
    token = ct.lookup_events(StartTime=END - 100, EndTime=END)["NextToken"]
    with pytest.raises(ClientError) as error:
        ct.lookup_events(StartTime=END - 200, EndTime=END, NextToken=token)
    assert error.value.response["Error"]["Code"] == "InvalidNextTokenException"


def test_lookup_attribute_filters_and_only_one_is_allowed(server):
    server.load(make_records(9, END))
    ct = client(server)
    got = ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "GetUser"}])
    assert {e["EventName"] for e in got["Events"]} == {"GetUser"}
    assert len(got["Events"]) == 3
    with pytest.raises(ClientError) as error:
        ct.lookup_events(
            LookupAttributes=[
                {"AttributeKey": "EventName", "AttributeValue": "GetUser"},
                {"AttributeKey": "Username", "AttributeValue": "user1"},
            ]
        )
    assert error.value.response["Error"]["Code"] == "InvalidLookupAttributesException"


def test_max_results_above_50_is_rejected(server):
    with pytest.raises(ClientError) as error:
        client(server).lookup_events(MaxResults=51)
    assert error.value.response["Error"]["Code"] == "InvalidMaxResultsException"


def test_rate_limit_per_account_and_region():
    clock = FakeClock()
    with LookupEventsServer(rate=2.0, burst=2.0, clock=clock) as server:
        use1, euw1 = client(server, "us-east-1"), client(server, "eu-west-1")
        use1.lookup_events()
        use1.lookup_events()
        with pytest.raises(ClientError) as error:
            use1.lookup_events()
        assert error.value.response["Error"]["Code"] == "ThrottlingException"
        assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        euw1.lookup_events()  # another region has its own budget
        clock.now += 0.5
        use1.lookup_events()  # one token back after half a second
        statuses = [(r.region, r.status) for r in server.requests]
        assert statuses == [
            ("us-east-1", 200),
            ("us-east-1", 200),
            ("us-east-1", 400),
            ("eu-west-1", 200),
            ("us-east-1", 200),
        ]


@pytest.mark.parametrize(
    "fault, code",
    [
        ("throttle", "ThrottlingException"),
        (500, "InternalFailure"),
        ("AccessDeniedException", "AccessDeniedException"),
    ],
)
def test_injected_fault_surfaces_without_retries(server, fault, code):
    server.inject(fault)
    with pytest.raises(ClientError) as error:
        client(server).lookup_events()
    assert error.value.response["Error"]["Code"] == code


@pytest.mark.parametrize("fault", ["throttle", 500, 503])
def test_botocore_retries_absorb_injected_faults(server, fault):
    server.load(make_records(3, END))
    server.inject(fault, count=2)
    got = client(server, attempts=4).lookup_events()
    assert len(got["Events"]) == 3
    assert [r.status for r in server.requests][-1] == 200
    assert len(server.requests) == 3


@pytest.mark.parametrize("fault", [404, "not a code"])
def test_inject_rejects_unknown_faults(server, fault):
    with pytest.raises(ValueError):
        server.inject(fault)
