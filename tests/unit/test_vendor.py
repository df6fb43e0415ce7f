"""iamspike_splunk.vendor: which vendored folders go first on sys.path, for which interpreter."""

from __future__ import annotations

import os
import sys
import sysconfig
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


SHIPPED = ("common", "cp39", "cp313", "cp39-linux_x86_64", "cp39-win_amd64", "cp313-linux_x86_64",
           "cp313-win_amd64")  # fmt: skip


@pytest.mark.parametrize(
    ("platform", "tag"),
    [("linux-x86_64", "linux_x86_64"), ("win-amd64", "win_amd64"), ("macosx-11.0-arm64", "macosx_11_0_arm64"),
     ("linux-aarch64", "linux_aarch64")],
)  # fmt: skip
def test_platform_tag_is_the_wheel_tag_of_sysconfig_platform(platform: str, tag: str) -> None:
    assert vendor.platform_tag(platform) == tag


def test_platform_tag_of_this_interpreter_names_its_tree() -> None:
    assert vendor.platform_tag() == sysconfig.get_platform().replace("-", "_").replace(".", "_")


@pytest.mark.parametrize(
    ("version_info", "platform", "trees"),
    [((3, 9), "linux-x86_64", ["cp39-linux_x86_64", "cp39", "common"]),
     ((3, 9), "win-amd64", ["cp39-win_amd64", "cp39", "common"]),
     ((3, 13), "linux-x86_64", ["cp313-linux_x86_64", "cp313", "common"]),
     ((3, 13), "win-amd64", ["cp313-win_amd64", "cp313", "common"]),
     ((3, 13), "linux-aarch64", ["cp313", "common"])],
)  # fmt: skip
def test_the_loader_picks_the_tree_of_interpreter_and_platform(
    tmp_path, version_info, platform, trees
) -> None:
    lib = make_lib(str(tmp_path), *SHIPPED)
    assert vendor.vendored_paths(lib, version_info, platform) == [os.path.join(lib, t) for t in trees]


def test_the_loader_picks_a_numpy_that_loads_on_this_platform(tmp_path) -> None:
    # Each tree holds a module naming its platform: the one this interpreter imports must be its own.
    lib = make_lib(str(tmp_path), *SHIPPED)
    for tree in SHIPPED:
        with open(os.path.join(lib, tree, "probe_tree.py"), "w", encoding="utf-8") as handle:
            handle.write(f"TREE = {tree!r}\n")
    paths = vendor.vendored_paths(lib, (3, 13), "win-amd64")
    found = next(p for p in paths if os.path.isfile(os.path.join(p, "probe_tree.py")))
    assert os.path.basename(found) == "cp313-win_amd64"


def test_add_prepends_once_in_order(tmp_path, restore_sys_path) -> None:
    lib = make_lib(str(tmp_path), *SHIPPED)
    first = vendor.add_vendored_paths(lib, (3, 13), "linux-x86_64")
    assert first == [os.path.join(lib, t) for t in ("cp313-linux_x86_64", "cp313", "common")]
    assert sys.path[:3] == first
    assert vendor.add_vendored_paths(lib, (3, 13), "linux-x86_64") == []
    assert sys.path.count(os.path.join(lib, "common")) == 1


def test_checkout_without_build_adds_nothing(tmp_path, restore_sys_path) -> None:
    before = list(sys.path)
    assert vendor.add_vendored_paths(os.path.join(str(tmp_path), "lib"), (3, 9)) == []
    assert sys.path == before


def test_build_without_common_still_adds_interpreter_tree(tmp_path) -> None:
    lib = make_lib(str(tmp_path), "cp39")
    assert vendor.vendored_paths(lib, (3, 9), "linux-x86_64") == [os.path.join(lib, "cp39")]


def test_unsupported_interpreter_is_a_one_line_error(tmp_path) -> None:
    lib = make_lib(str(tmp_path), *SHIPPED)
    with pytest.raises(ImportError) as caught:
        vendor.vendored_paths(lib, (3, 12), "win-amd64")
    message = str(caught.value)
    assert "\n" not in message
    assert "cp313, cp39" in message and "3.12" in message
