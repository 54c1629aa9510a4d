"""The ok / fail / info rule that the consistency check depends on."""

from __future__ import annotations

import socket

import pytest

from loadtests.outcome import outcome_of


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "ok"), (204, "ok"),
        (400, "fail"), (404, "fail"), (405, "fail"), (429, "fail"), (503, "fail"),
        (500, "info"), (502, "info"), (504, "info"), (599, "info"), (302, "info"),
    ],
)  # fmt: skip
def test_status_codes(status: int, expected: str) -> None:
    assert outcome_of(status) == expected


def _refused_error() -> ConnectionRefusedError:
    """A real refusal: connect to a loopback port that nothing listens on."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError as exc:
        return exc
    pytest.skip("something answered on a port that was just freed")


def test_connection_refused_is_a_definite_failure() -> None:
    assert outcome_of(0, _refused_error()) == "fail"


def test_refusal_wrapped_by_a_client_library_is_still_found() -> None:
    try:
        try:
            raise _refused_error()
        except ConnectionRefusedError as inner:
            raise RuntimeError("request failed") from inner
    except RuntimeError as outer:
        assert outcome_of(0, outer) == "fail"


def test_refusal_kept_as_the_original_error_is_found() -> None:
    from geventhttpclient.useragent import RetriesExceeded

    assert outcome_of(0, RetriesExceeded("http://127.0.0.1:1/", 0, original=_refused_error())) == "fail"


@pytest.mark.parametrize("error", [TimeoutError("timed out"), ConnectionResetError(104, "reset"), None])
def test_no_response_without_refusal_is_unknown(error: BaseException | None) -> None:
    assert outcome_of(0, error) == "info"
