"""iamspike_splunk.vendor: which vendored folders go first on sys.path, for which interpreter."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from iamspike_splunk import vendor


@pytest.fixture
def restore_sys_path() -> Iterator[None]:
    saved = list(sys.path)
    yield
    sys.path[:] = saved


def make_lib(root: str, *tags: str) -> str:
    lib = os.path.join(root, "lib")
    for tag in tags:
        os.makedirs(os.path.join(lib, tag))
    return lib


@pytest.mark.parametrize(
    ("version_info", "tag"),
    [((3, 9), "cp39"), ((3, 13), "cp313"), ((3, 13, 0, "final", 0), "cp313"), ((3, 10), "cp310")],
)
def test_interpreter_tag(version_info: tuple[int, ...], tag: str) -> None:
    assert vendor.interpreter_tag(version_info) == tag


def test_lib_dir_is_the_app_lib_next_to_bin() -> None:
    bin_dir = os.path.dirname(os.path.dirname(os.path.abspath(vendor.__file__)))
    assert os.path.join(os.path.dirname(bin_dir), "lib") == vendor.LIB_DIR


@pytest.mark.parametrize(("version_info", "tag"), [((3, 9), "cp39"), ((3, 13), "cp313")])
def test_interpreter_tree_comes_before_common(tmp_path, version_info, tag) -> None:
    lib = make_lib(str(tmp_path), "common", "cp39", "cp313")
    assert vendor.vendored_paths(lib, version_info) == [os.path.join(lib, tag), os.path.join(lib, "common")]


def test_add_prepends_once_in_order(tmp_path, restore_sys_path) -> None:
    lib = make_lib(str(tmp_path), "common", "cp39", "cp313")
    first = vendor.add_vendored_paths(lib, (3, 13))
    assert first == [os.path.join(lib, "cp313"), os.path.join(lib, "common")]
    assert sys.path[:2] == first
    assert vendor.add_vendored_paths(lib, (3, 13)) == []
    assert sys.path.count(os.path.join(lib, "common")) == 1


def test_checkout_without_build_adds_nothing(tmp_path, restore_sys_path) -> None:
    before = list(sys.path)
    assert vendor.add_vendored_paths(os.path.join(str(tmp_path), "lib"), (3, 9)) == []
    assert sys.path == before


def test_build_without_common_still_adds_interpreter_tree(tmp_path) -> None:
    lib = make_lib(str(tmp_path), "cp39")
    assert vendor.vendored_paths(lib, (3, 9)) == [os.path.join(lib, "cp39")]


def test_unsupported_interpreter_is_a_one_line_error(tmp_path) -> None:
    lib = make_lib(str(tmp_path), "common", "cp39", "cp313")
    with pytest.raises(ImportError) as caught:
        vendor.vendored_paths(lib, (3, 12))
    message = str(caught.value)
    assert "\n" not in message
    assert "cp313, cp39" in message and "3.12" in message
