"""Failure-class table: the AccessDenied family counts; DryRun, throttling, validation do not."""

from __future__ import annotations

import pytest
from iamspike.failures import AUTHORIZATION, ErrorClasses, classify_by_name, console_login_failed


@pytest.fixture(scope="module")
def classes() -> ErrorClasses:
    return ErrorClasses.load()


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("AccessDenied", AUTHORIZATION),
        ("AccessDeniedException", AUTHORIZATION),
        ("Client.UnauthorizedOperation", AUTHORIZATION),
        ("UnauthorizedOperation", AUTHORIZATION),
        ("AuthFailure", AUTHORIZATION),
        ("VpceAccessDenied", AUTHORIZATION),
        ("OperationNotPermitted", AUTHORIZATION),
        ("OperationNotPermittedException", AUTHORIZATION),
        ("ConsoleLoginFailure", AUTHORIZATION),
        ("Client.DryRunOperation", "dryrun"),
        ("ThrottlingException", "throttling"),
        ("Client.RequestLimitExceeded", "throttling"),
        ("ValidationException", "validation"),
        ("InvalidParameterValue", "validation"),
        ("NoSuchEntity", "not_found"),
        ("NoSuchEntityException", "not_found"),
        ("InvalidClientTokenId", "authentication"),
        # not in the lookup: classified by name
        ("KMS.AccessDeniedException", AUTHORIZATION),
        ("Client.SomethingNotFound", "not_found"),
        ("WeirdError", "other"),
        ("", ""),
    ],
)
def test_classify(classes: ErrorClasses, code: str, cls: str) -> None:
    assert classes.classify(code) == cls


def test_counted_codes_follow_the_selected_classes(classes: ErrorClasses) -> None:
    counted = classes.counter([AUTHORIZATION])
    assert counted["AccessDenied"] and counted["Client.UnauthorizedOperation"]
    assert not counted["Client.DryRunOperation"]
    assert not counted["ThrottlingException"]
    assert not counted[""]
    wider = classes.counter([AUTHORIZATION, "throttling"])
    assert wider["ThrottlingException"]


def test_lookup_is_read_from_the_given_csv(tmp_path) -> None:
    path = tmp_path / "classes.csv"
    path.write_text("errorCode,class\nAccessDenied,ignored\nTeapot,authorization\n")
    classes = ErrorClasses.load(str(path))
    assert classes.classify("AccessDenied") == "ignored"
    assert classes.classify("Teapot") == AUTHORIZATION
    assert "ignored" in classes.classes()


def test_classify_by_name_prefers_dryrun() -> None:
    assert classify_by_name("Client.DryRunUnauthorized") == "dryrun"


@pytest.mark.parametrize(
    ("name", "message", "result", "failed"),
    [
        ("ConsoleLogin", "Failed authentication", "Failure", True),
        ("ConsoleLogin", "", "Failure", True),
        ("ConsoleLogin", "", "Success", False),
        ("GetUser", "Failed authentication", "", False),
    ],
)
def test_console_login_failed(name: str, message: str, result: str, failed: bool) -> None:
    assert console_login_failed(name, message, result) is failed
