"""The one error table: every code has an HTTP status, and errors have the seed's shape."""

from __future__ import annotations

import pytest

from chalicelib.core.errors import HTTP_STATUS, ErrorCode, InstanceManagerError, error_body, invalid, not_found


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_code_has_an_http_error_status(code):
    assert 400 <= HTTP_STATUS[code] <= 599
    assert code.value == code.name, "codes travel as UPPER_SNAKE strings"


def test_the_table_holds_no_stale_codes():
    assert set(HTTP_STATUS) == set(ErrorCode)


@pytest.mark.parametrize(
    ("code", "status"),
    [("VALIDATION_ERROR", 400), ("UNAUTHORIZED", 401), ("INSTANCE_NOT_FOUND", 404), ("ROUTE_NOT_FOUND", 404),
     ("INTERNAL_ERROR", 500)],
)
def test_the_statuses_the_design_fixes(code, status):
    assert HTTP_STATUS[ErrorCode(code)] == status


def test_error_body_is_the_seed_shape():
    body = error_body(ErrorCode.INSTANCE_NOT_FOUND, "Instance not found")
    assert body == {"success": False, "error": "Instance not found", "code": "INSTANCE_NOT_FOUND"}
    assert type(body["code"]) is str


def test_an_error_carries_its_code_status_and_body():
    error = InstanceManagerError(ErrorCode.INSTANCE_LIMIT_REACHED, "Company acme already has 10 instances")
    assert (error.code, error.http_status, str(error)) == (
        ErrorCode.INSTANCE_LIMIT_REACHED, 409, "Company acme already has 10 instances")
    assert error.body() == {"success": False, "error": "Company acme already has 10 instances",
                            "code": "INSTANCE_LIMIT_REACHED"}


def test_shortcuts_pick_their_codes():
    missing = not_found("abc")
    assert (missing.code, missing.http_status) == (ErrorCode.INSTANCE_NOT_FOUND, 404)
    assert "abc" in missing.message
    bad = invalid("tail must be positive")
    assert (bad.code, bad.http_status, bad.message) == (ErrorCode.VALIDATION_ERROR, 400, "tail must be positive")
