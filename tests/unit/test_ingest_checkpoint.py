"""Checkpoints: atomic JSON state, the bounded persisted set of seen ids, file names safe on
Windows and Linux, checkpoints of earlier versions found after an upgrade."""

from __future__ import annotations

import os

import pytest
from iamspike.ingest.checkpoint import CheckpointError, CheckpointStore, SeenIds, safe_name


def test_state_round_trips_and_leaves_no_temporary_file(tmp_path):
    store = CheckpointStore(str(tmp_path), "aws_cloudtrail_s3://prod")
    assert store.load("stream-a", {"default": 1}) == {"default": 1}
    store.save("stream-a", {"newest": "2023-08-26T20:35:00+00:00", "recent": ["k1", "k2"]})
    store.save("stream-a", {"newest": "2023-08-26T20:40:00+00:00", "recent": ["k2"]})
    assert CheckpointStore(str(tmp_path), "aws_cloudtrail_s3://prod").load("stream-a") == {
        "newest": "2023-08-26T20:40:00+00:00",
        "recent": ["k2"],
    }
    assert len(os.listdir(tmp_path)) == 1  # the checkpoint, no temporary file


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
    seen.add_all(["c"])  # a line of its own, not the torn one's end
    seen.close()
    assert list(SeenIds(path, capacity=10).ids) == ["a", "b", "c"]


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


# -- file names safe on Linux and Windows ------------------------------------------------------
WINDOWS_FORBIDDEN = ':\\*?"<>|/'


def windows_safe(name: str) -> bool:
    """A name Windows and Linux both accept as a plain file: no forbidden character or trailing
    dot, no reserved device name before the first dot, short enough for a 260-character path."""
    stem = name.split(".", 1)[0].upper()
    return (
        not set(name) & set(WINDOWS_FORBIDDEN)
        and name.isascii()
        and not name.endswith((".", " "))
        and stem not in {"CON", "PRN", "AUX", "NUL", *(f"{p}{n}" for p in ("COM", "LPT") for n in range(10))}
        and len(name) <= 151
    )


@pytest.mark.parametrize(
    "key",
    [
        "stream-AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1/" + "deep/" * 60,  # 300+ characters
        "x" * 1000,
        'a:b\\c*d?e"f<g>h|i/j',
        "CON",
        "nul.txt",
        "com1",
        "LPT9.json",
        "",
        "..",
        " trailing dot. ",
        "ünïcödé-ключ",
    ],
)
def test_every_key_gets_a_short_windows_safe_file_of_its_own(tmp_path, key):
    store = CheckpointStore(str(tmp_path), "aws_cloudtrail_s3://" + "long stanza name " * 10)
    store.save(key, {"key": key})
    seen = store.seen_ids(key)
    seen.add_all(["id-1"])
    seen.close()
    names = os.listdir(tmp_path)
    assert len(names) == 2 and all(windows_safe(name) for name in names), names
    assert store.load(key) == {"key": key}


@pytest.mark.parametrize(
    "name",
    ["aws_cloudtrail_s3://prod", "nul.txt", "CON", "aux.", "a:b|c", "", "x" * 500],
)
def test_safe_name_is_windows_safe_for_any_name(name):
    assert windows_safe(safe_name(name) + ".journal")
    assert windows_safe(safe_name(name, 10) + ".journal")


@pytest.mark.parametrize(
    ("one", "two"),
    [
        ("stream-a/b", "stream-a_b"),  # one file under the old names
        ("stream-a:b", "stream-a?b"),
        ("stream-" + "p" * 100 + "1", "stream-" + "p" * 100 + "2"),  # differ after the readable part
        ("CON", "con"),  # one file on Windows, whose names ignore case
    ],
)
def test_keys_differing_only_in_punctuation_or_case_keep_their_own_state(tmp_path, one, two):
    store = CheckpointStore(str(tmp_path), "aws_cloudtrail_s3://prod")
    store.save(one, 1)
    store.save(two, 2)
    assert (store.load(one), store.load(two)) == (1, 2)
    assert store.path(one).lower() != store.path(two).lower()


# -- upgrade: checkpoints under the names of earlier versions ---------------------------------
@pytest.mark.parametrize(
    ("key", "old_name"),
    [
        (
            "stream-AWSLogs/111122223333/CloudTrail/us-east-1/",
            "stream-AWSLogs_111122223333_CloudTrail_us-east-1_",
        ),
        ("lookup-us-east-1", "lookup-us-east-1"),
        ("claims", "claims"),
    ],
)
def test_a_checkpoint_under_its_old_name_is_copied_to_the_new_one_on_first_read(tmp_path, key, old_name):
    store = CheckpointStore(str(tmp_path), "aws_cloudtrail_s3://prod")
    old = tmp_path / f"{store.prefix}.{old_name}.json"
    old.write_bytes(b'{"newest": "2023-08-26T20:35:00+00:00"}')
    assert store.load(key) == {"newest": "2023-08-26T20:35:00+00:00"}
    assert os.path.exists(store.path(key) + ".json")
    store.save(key, {"newest": "2023-08-26T20:40:00+00:00"})
    again = CheckpointStore(str(tmp_path), "aws_cloudtrail_s3://prod")
    assert again.load(key) == {"newest": "2023-08-26T20:40:00+00:00"}  # the new file wins from now on
    assert old.read_bytes() == b'{"newest": "2023-08-26T20:35:00+00:00"}'  # left for a downgrade


def test_an_old_text_journal_is_copied_and_read_with_its_crlf_line_ends(tmp_path):
    store = CheckpointStore(str(tmp_path), "aws_cloudtrail_sqs://prod")
    old = tmp_path / f"{store.prefix}.seen.journal"
    old.write_bytes("a\r\nb\r\nünï\r\ntorn-by-a-ki".encode())  # text mode on Windows, cut by a kill
    seen = store.seen_ids("seen")
    assert list(seen.ids) == ["a", "b", "ünï"]
    seen.add_all(["c"])
    seen.close()
    assert list(store.seen_ids("seen").ids) == ["a", "b", "ünï", "c"]


# -- the journal is bytes -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ids", "kept"),
    [
        (["a", "b"], ["a", "b"]),
        (["x\r\ny", "z\r"], ["x  y", "z "]),  # an id's own line breaks become spaces
        (["ünï"], ["ünï"]),
    ],
)
def test_the_journal_has_one_id_and_a_bare_newline_a_line(tmp_path, ids, kept):
    path = str(tmp_path / "seen.journal")
    seen = SeenIds(path, capacity=10)
    seen.add_all(ids)
    seen.close()
    with open(path, "rb") as handle:
        assert handle.read() == "".join(item + "\n" for item in kept).encode("utf-8")
    assert list(SeenIds(path, capacity=10).ids) == kept


# -- a folder the input cannot write (a file in its place: the same as root or not) -------------
@pytest.mark.parametrize(
    ("where", "cause"),
    [("taken", "Not a directory"), ("taken/checkpoints", "Not a directory"), ("fine", None)],
)
def test_a_checkpoint_folder_that_cannot_take_a_file_is_one_line_before_anything_is_read(
    tmp_path, where, cause
):
    (tmp_path / "taken").write_text("a file where the folder should be")
    folder = str(tmp_path / where)
    if cause is None:  # made, tried and left empty
        CheckpointStore(folder, "aws_cloudtrail_sqs://q")
        assert os.listdir(folder) == []
        return
    with pytest.raises(CheckpointError) as caught:
        CheckpointStore(folder, "aws_cloudtrail_sqs://q")
    assert str(caught.value) == (
        f"checkpoint folder {folder} cannot be written ({cause}): nothing read this run; give the"
        " user splunkd runs as write access to it"
    )
    assert sorted(os.listdir(tmp_path)) == ["taken"]


def test_a_journal_that_cannot_be_opened_is_one_line_naming_it(tmp_path):
    store = CheckpointStore(str(tmp_path), "aws_cloudtrail_s3://b")
    journal = store.path("seen") + ".journal"
    os.mkdir(journal)  # a folder where the journal should be: refused as root too
    with pytest.raises(CheckpointError, match=rf"^checkpoint {journal} cannot be written \(Is a directory\)"):
        store.seen_ids("seen", 10)
