"""The customer directory: the built-in table on both databases, and the HTTP backend against a
real local HTTP server (http.server in a thread)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from oneeye.config import CustomerDirectorySettings
from oneeye.services.customers import (
    CustomerCard,
    CustomerError,
    DirectoryError,
    HttpCustomerDirectory,
    ReadOnlyDirectoryError,
    SqlCustomerDirectory,
)
from oneeye.services.outbound import OutboundGuard
from oneeye.store.db import Database
from tests.services.bank import OBAMA, BankApi

# The built-in table -------------------------------------------------------------------------


@pytest.fixture
def sql_directory(database_url: str) -> Iterator[SqlCustomerDirectory]:
    db = Database(database_url)
    db.migrate()
    try:
        yield SqlCustomerDirectory(db)
    finally:
        db.close()


def test_sql_directory_saves_looks_up_lists_and_deletes(
    sql_directory: SqlCustomerDirectory,
) -> None:
    card, created = sql_directory.save(
        "ACC-1",
        name="Barack Obama",
        account_type="checking",
        address="1600 Pennsylvania Ave",
        balance="1520.4",
    )
    assert created
    assert card == CustomerCard("ACC-1", "Barack Obama", "checking", "1600 Pennsylvania Ave",
                                "1520.40", "USD")  # fmt: skip
    assert sql_directory.lookup("ACC-1") == card
    assert sql_directory.lookup("nobody") is None

    again, created = sql_directory.save("ACC-1", name="Barack H. Obama", balance=Decimal("0.1"))
    assert not created
    assert again.balance == "0.10"
    sql_directory.save("ACC-2", name="Joe Biden", balance="99999999999.99", currency="EUR")
    assert [c.account_id for c in sql_directory.accounts()] == ["ACC-1", "ACC-2"]
    assert [c.name for c in sql_directory.accounts(q="biden")] == ["Joe Biden"]
    assert sql_directory.lookup("ACC-2") is not None
    assert sql_directory.lookup("ACC-2").balance == "99999999999.99"  # type: ignore[union-attr]

    assert sql_directory.set_profile_photo("ACC-1", "customers/ab/ab.jpg") is None
    card = sql_directory.lookup("ACC-1")  # type: ignore[assignment]
    assert card.profile_photo_key == "customers/ab/ab.jpg"
    assert card.photo_url() == "/api/v1/photos/customers/ab/ab.jpg"
    with pytest.raises(CustomerError, match="no customer account"):
        sql_directory.set_profile_photo("nobody", "customers/ab/ab.jpg")

    deleted = sql_directory.delete("ACC-1")
    assert deleted is not None
    assert deleted.profile_photo_key == "customers/ab/ab.jpg"
    assert sql_directory.delete("ACC-1") is None
    assert sql_directory.lookup("ACC-1") is None


@pytest.mark.parametrize(
    ("account_id", "fields", "error"),
    [
        ("", {"name": "A"}, "an account id is"),
        ("../etc", {"name": "A"}, "an account id is"),
        ("A1", {"name": "  "}, "holder's name"),
        ("A1", {"name": "A", "balance": 1.1}, "decimal number as text"),
        ("A1", {"name": "A", "balance": "lots"}, "decimal number"),
        ("A1", {"name": "A", "balance": "NaN"}, "finite"),
        ("A1", {"name": "A", "currency": "dollars"}, "3-letter"),
    ],
)
def test_sql_directory_refuses_bad_accounts(
    sql_directory: SqlCustomerDirectory, account_id: str, fields: dict[str, Any], error: str
) -> None:
    with pytest.raises(CustomerError, match=error):
        sql_directory.save(account_id, **fields)
    assert sql_directory.accounts() == []


# The bank's HTTP API --------------------------------------------------------------------------


def test_http_directory_maps_the_banks_json_and_sends_the_auth_header(bank: BankApi) -> None:
    bank.accounts["ACC 1/x"] = OBAMA
    directory = bank.directory(auth_header="Authorization: Bearer s3cret")
    card = directory.lookup("ACC 1/x")
    assert card == CustomerCard(
        account_id="ACC 1/x",
        name="Barack Obama",
        account_type="checking",
        address="1600 Pennsylvania Ave",
        balance="1520.40",
        currency="USD",
        profile_photo_url="https://bank.example/photos/1.jpg",
    )
    assert card.photo_url() == "https://bank.example/photos/1.jpg"
    path, headers = bank.requests[0]
    assert path == "/accounts/ACC%201%2Fx"  # quoted: an id cannot change the path
    assert headers["Authorization"] == "Bearer s3cret"


def test_http_directory_404_is_none_and_cached_too(bank: BankApi) -> None:
    bank.accounts["A1"] = {**OBAMA, "account_id": "A1", "currency": "EUR"}
    directory = bank.directory(cache_seconds=30)
    assert directory.lookup("missing") is None
    assert directory.lookup("missing") is None
    assert directory.lookup("A1") is not None
    card = directory.lookup("A1")
    assert card is not None
    assert card.currency == "EUR"
    assert len(bank.requests) == 2  # one per account: the second asks came from the cache
    directory.clear_cache()
    directory.lookup("A1")
    assert len(bank.requests) == 3


def test_http_directory_cache_expires(bank: BankApi) -> None:
    bank.accounts["A1"] = {**OBAMA, "account_id": "A1"}
    directory = bank.directory(cache_seconds=0.2)
    directory.lookup("A1")
    directory.lookup("A1")
    assert len(bank.requests) == 1
    time.sleep(0.3)
    directory.lookup("A1")
    assert len(bank.requests) == 2


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        ({"status": 500}, "answered HTTP 500"),
        ({"status": 503}, "answered HTTP 503"),
        ({"delay": 1.0}, "did not answer within 0.2 s"),
        ({"body": "<html>oops</html>"}, "not JSON"),
        ({"body": "[1, 2]"}, "expected a JSON object"),
        ({"body": '{"account_id": "A1", "balance": "1"}'}, "'name'"),
        ({"body": '{"account_id": "A1", "name": "X"}'}, "without a 'balance'"),
        ({"body": '{"account_id": "B2", "name": "X", "balance": 1}'}, "when asked for 'A1'"),
        (
            {"body": '{"account_id": "A1", "name": "' + "x" * 200_000 + '", "balance": 1}'},
            "answered more than 65536 bytes",
        ),
    ],
)
def test_http_directory_failures_are_directory_errors_naming_the_url_without_secrets(
    bank: BankApi, setup: dict[str, Any], error: str
) -> None:
    bank.status = setup.get("status", 200)
    bank.delay = setup.get("delay", 0.0)
    bank.accounts["A1"] = setup.get("body", {**OBAMA, "account_id": "A1"})
    host = bank.base.removeprefix("http://")
    directory = bank.directory(
        url_template=f"http://{host}/accounts/{{account_id}}?token=hunter2",
        timeout=0.2,
    )
    with pytest.raises(DirectoryError, match=error) as caught:
        directory.lookup("A1")
    message = str(caught.value)
    assert f"http://{host}/accounts/A1" in message
    assert "hunter2" not in message


def test_http_directory_unreachable_is_a_directory_error(bank: BankApi) -> None:
    directory = bank.directory(url_template="http://127.0.0.1:1/accounts/{account_id}")
    with pytest.raises(DirectoryError, match="cannot be reached"):
        directory.lookup("A1")


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"url_template": None}, "needs ONEEYE_CUSTOMERS__URL_TEMPLATE"),
        ({"url_template": "http://bank/accounts"}, "needs ONEEYE_CUSTOMERS__URL_TEMPLATE"),
        ({"url_template": "ftp://bank/{account_id}"}, "http:// or https://"),
        ({"url_template": "http://bank/{account_id}", "auth_header": "token"}, "Name: value"),
        (
            {"url_template": "http://user:hunter2@bank/{account_id}"},
            "must not carry a user name or password",
        ),
        ({"url_template": "http://10.0.0.5/{account_id}"}, "10.0.0.5 is a private address"),
        ({"url_template": "http://169.254.169.254/{account_id}"}, "cloud metadata"),
    ],
)
def test_http_directory_refuses_bad_settings(settings: dict[str, Any], error: str) -> None:
    with pytest.raises(DirectoryError, match=error) as caught:
        HttpCustomerDirectory(CustomerDirectorySettings(kind="http", **settings))
    assert "hunter2" not in str(caught.value)


def test_a_bank_api_inside_the_network_is_reached_only_when_allowed(bank: BankApi) -> None:
    """Loopback stands in for the bank's network: without the operator's allow-list the
    directory refuses to connect (checked after resolving the name) and the API gets nothing;
    with it, the same lookup works."""
    bank.accounts["A1"] = {**OBAMA, "account_id": "A1"}
    port = bank.base.rsplit(":", 1)[1]
    settings = CustomerDirectorySettings(
        kind="http", url_template=f"http://localhost:{port}/accounts/{{account_id}}"
    )
    refused = HttpCustomerDirectory(settings)
    with pytest.raises(DirectoryError, match=r"localhost resolves to 127.0.0.1") as caught:
        refused.lookup("A1")
    assert "ONEEYE_OUTBOUND__ALLOW_INTERNAL" in str(caught.value)
    assert bank.requests == []
    allowed = HttpCustomerDirectory(settings, OutboundGuard(["127.0.0.1"]))
    card = allowed.lookup("A1")
    assert card is not None
    assert card.name == OBAMA["name"]
    assert len(bank.requests) == 1


def test_http_directory_is_read_only(bank: BankApi) -> None:
    directory = bank.directory()
    assert not directory.editable
    with pytest.raises(ReadOnlyDirectoryError, match=r"the bank's API at http://127\.0\.0\.1"):
        directory.save("A1", name="X")
