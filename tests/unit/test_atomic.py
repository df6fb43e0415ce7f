"""A file written whole or not at all: the temporary file beside it, the rename, what is left
when a step fails."""

from __future__ import annotations

import os
import stat
import time

import pytest
from iamspike import atomic


def test_write_replaces_the_file_whole_and_leaves_nothing_beside_it(tmp_path):
    path = str(tmp_path / "state.json")
    atomic.write(path, b"old")
    atomic.write(path, b"new", durable=False)
    with open(path, "rb") as handle:
        assert handle.read() == b"new"
    assert os.listdir(tmp_path) == ["state.json"]


def test_the_file_gets_the_mode_open_would_give_it(tmp_path):
    umask = os.umask(0o027)
    try:
        atomic.write(str(tmp_path / "page.html"), b"<p>")
        with open(tmp_path / "plain.html", "wb"):
            pass
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "page.html").st_mode) == stat.S_IMODE(
        os.stat(tmp_path / "plain.html").st_mode
    )


def test_reserve_creates_the_temporary_file_beside_the_target_before_any_data(tmp_path):
    path = str(tmp_path / "report.html")
    part = atomic.reserve(path)
    assert os.path.dirname(part) == str(tmp_path) and os.path.getsize(part) == 0
    assert os.path.basename(part).startswith(".report.html.") and part.endswith(".part")
    assert atomic.reserve(path) != part
    atomic.finish(part, path, b"page")
    assert not os.path.exists(part)
    with open(path, "rb") as handle:
        assert handle.read() == b"page"


@pytest.mark.parametrize(
    ("where", "error"),
    [
        ("missing/report.html", FileNotFoundError),  # no such folder: not made
        (".", IsADirectoryError),  # the target is a folder
        ("file/report.html", NotADirectoryError),  # a regular file where the folder should be
    ],
)
def test_reserve_fails_where_the_folder_cannot_take_the_file(tmp_path, where, error):
    (tmp_path / "file").write_text("a file, not a folder")
    with pytest.raises(error):
        atomic.reserve(str(tmp_path / where))
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path, monkeypatch):
    path = str(tmp_path / "state.json")
    atomic.write(path, b"old")

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        atomic.write(path, b"new")
    with open(path, "rb") as handle:
        assert handle.read() == b"old"
    assert os.listdir(tmp_path) == ["state.json"]


# -- os.replace while Windows holds the target --------------------------------------------------
@pytest.mark.parametrize(
    ("refusals", "written"), [(0, True), (2, True), (atomic.REPLACE_TRIES - 1, True), (99, False)]
)
def test_a_replace_refused_while_the_target_is_open_is_tried_again_a_few_times(
    tmp_path, monkeypatch, refusals, written
):
    path = str(tmp_path / "state.json")
    atomic.write(path, b"old")
    real_replace, calls, naps = os.replace, [], []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) <= refusals:
            raise PermissionError(13, "The process cannot access the file because it is being used")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(time, "sleep", naps.append)
    if written:
        atomic.write(path, b"new")
    else:
        with pytest.raises(PermissionError):
            atomic.write(path, b"new")
    assert len(calls) == min(refusals + 1, atomic.REPLACE_TRIES) and len(naps) == len(calls) - 1
    with open(path, "rb") as handle:
        assert handle.read() == (b"new" if written else b"old")
    assert os.listdir(tmp_path) == ["state.json"]  # no temporary file left either way
