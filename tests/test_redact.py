"""Query strings are cut from the URLs web loggers write (keys and link signatures)."""

from __future__ import annotations

import logging

import pytest

from oneeye.redact import QueryStringRedactor, redact_query


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/ws?since=0&api_key=oek_ab_cd", "/ws?[redacted]"),
        ("/api/v1/links/snapshot?key=s/x.jpg&exp=1&sig=AbC-_", "/api/v1/links/snapshot?[redacted]"),
        ('GET "http://h/x?sig=1" 200', 'GET "http://h/x?[redacted]" 200'),
        ("/api/v1/people", "/api/v1/people"),
        ("is it? yes", "is it? yes"),
    ],
)
def test_redact_query(line: str, expected: str) -> None:
    assert redact_query(line) == expected


def test_an_access_record_keeps_its_shape() -> None:
    """uvicorn's access formatter unpacks the five arguments: they stay five."""
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/ws?api_key=oek_x_y", "1.1", 101),
        None,
    )
    assert QueryStringRedactor().filter(record)
    assert record.args == ("127.0.0.1:5", "GET", "/ws?[redacted]", "1.1", 101)
    assert "oek_" not in record.getMessage()
