"""Checkpoints: atomic JSON state, the bounded persisted set of seen ids."""

from __future__ import annotations

import os

from iamspike.ingest.checkpoint import CheckpointStore, SeenIds, safe_name


def test_state_round_trips_and_leaves_no_temporary_file(tmp_path):
    store = CheckpointStore(str(tmp_path), "aws_cloudtrail_s3://prod")
    assert store.load("stream-a", {"default": 1}) == {"default": 1}
    store.save("stream-a", {"newest": "2023-08-26T20:35:00+00:00", "recent": ["k1", "k2"]})
    store.save("stream-a", {"newest": "2023-08-26T20:40:00+00:00", "recent": ["k2"]})
    assert CheckpointStore(str(tmp_path), "aws_cloudtrail_s3://prod").load("stream-a") == {
        "newest": "2023-08-26T20:40:00+00:00",
        "recent": ["k2"],
    }
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".tmp")]


def test_inputs_do_not_share_checkpoints(tmp_path):
    one = CheckpointStore(str(tmp_path), "aws_cloudtrail_s3://a/b")
    two = CheckpointStore(str(tmp_path), "aws_cloudtrail_s3://a_b")
    one.save("k", 1)
    assert two.load("k") is None
    assert safe_name("aws_cloudtrail_s3://a/b") != safe_name("aws_cloudtrail_s3://a_b")


def test_unreadable_checkpoint_falls_back_to_default(tmp_path):
    store = CheckpointStore(str(tmp_path), "x://y")
    with open(store.path("k") + ".json", "w") as handle:
        handle.write("{not json")
    assert store.load("k", "fresh") == "fresh"


def test_seen_ids_persist_across_restarts(tmp_path):
    path = str(tmp_path / "seen.journal")
    seen = SeenIds(path, capacity=100)
    seen.add_all(["a", "b"])
    seen.close()
    again = SeenIds(path, capacity=100)
    assert "a" in again and "b" in again and "c" not in again


def test_seen_ids_are_bounded_and_forget_the_oldest(tmp_path):
    path = str(tmp_path / "seen.journal")
    seen = SeenIds(path, capacity=10)
    for n in range(100):
        seen.add_all([f"id-{n}"])
    assert len(seen) == 10
    assert "id-99" in seen and "id-90" in seen and "id-89" not in seen
    seen.close()
    with open(path) as handle:
        assert len(handle.readlines()) <= 20  # the journal is compacted at twice the capacity
    assert "id-99" in SeenIds(path, capacity=10)


def test_a_line_torn_by_a_kill_is_ignored(tmp_path):
    path = str(tmp_path / "seen.journal")
    with open(path, "w") as handle:
        handle.write("a\nb\npartial-id-with-no-newl")
    seen = SeenIds(path, capacity=10)
    assert "a" in seen and "b" in seen and "partial-id-with-no-newl" not in seen


def test_seen_ids_batches_keep_order_and_durability_on_both_paths(tmp_path):
    path = str(tmp_path / "seen.journal")
    seen = SeenIds(path, capacity=4)
    view = seen.ids
    seen.add_all(["a", "b"])  # new and distinct: one dict update
    seen.add_all(["c", "a", "c"])  # "a" seen before, "c" twice: moved to the end one by one
    assert list(view) == ["b", "a", "c"] and "a" in view and "z" not in view  # a live view
    seen.add_all(["d", "e"])  # over capacity: the oldest ("b") goes
    assert list(view) == ["a", "c", "d", "e"]
    seen.add_all(["x\ny"])  # an id with a newline is journaled as one line
    assert "x y" in view
    seen.close()
    assert list(SeenIds(path, capacity=4).ids) == ["c", "d", "e", "x y"]
