"""``/api/v1/customers``: the built-in directory through the API (tellers read, every read
audited; admins change; profile photos validated), and a server whose directory is the bank's
HTTP API (a real local server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from oneeye.app import OneEyeApp
from oneeye.config import CustomerDirectorySettings, OutboundSettings, ServeSettings
from oneeye.store.models import AuditEntry
from oneeye.vision.engine import FaceEngine
from tests.services.bank import OBAMA, BankApi
from tests.web.conftest import ClientFor
from tests.web.helpers import key_client, upload

CUSTOMERS = "/api/v1/customers"
ACCOUNT = {
    "account_id": "ACC-1",
    "name": "Barack Obama",
    "account_type": "checking",
    "address": "1600 Pennsylvania Ave",
    "balance": "1520.4",
    "currency": "USD",
}


def audit_rows(app: OneEyeApp, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    with app.services.db.session() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
        return [(r.actor, r.subject, r.detail) for r in rows]


def photo_files(app: OneEyeApp) -> int:
    return sum(1 for p in app.settings.resolved_photos_dir().rglob("*") if p.is_file())


def test_accounts_are_created_read_changed_and_deleted(
    server: OneEyeApp, client_for: ClientFor
) -> None:
    admin = client_for("admin")
    teller = client_for("teller")
    created = admin.post(CUSTOMERS, json=ACCOUNT)
    assert created.status_code == 201, created.text
    card = created.json()
    assert card["balance"] == "1520.40"
    assert card["profile_photo_url"] is None
    again = admin.post(CUSTOMERS, json=ACCOUNT)
    assert again.status_code == 409
    assert "already exists" in again.json()["error"]["message"]

    read = teller.get(f"{CUSTOMERS}/ACC-1")
    assert read.status_code == 200
    assert read.json() == card
    assert audit_rows(server, "account.view")[-1][:2] == ("user:teller-1", "ACC-1")

    listed = teller.get(CUSTOMERS, params={"q": "obama"})
    assert [c["account_id"] for c in listed.json()] == ["ACC-1"]
    assert audit_rows(server, "account.view")[-1] == (
        "user:teller-1",
        "list",
        {"accounts": ["ACC-1"]},
    )

    put = admin.put(
        f"{CUSTOMERS}/ACC-1", json={"name": "Barack H. Obama", "balance": 7, "currency": "EUR"}
    )
    assert put.status_code == 200, put.text
    assert (put.json()["name"], put.json()["balance"], put.json()["currency"]) == (
        "Barack H. Obama",
        "7.00",
        "EUR",
    )
    assert admin.put(f"{CUSTOMERS}/ACC-2", json={"name": "Joe Biden"}).status_code == 200
    assert len(teller.get(CUSTOMERS).json()) == 2

    assert admin.delete(f"{CUSTOMERS}/ACC-2").status_code == 204
    missing = teller.get(f"{CUSTOMERS}/ACC-2")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "no customer account 'ACC-2'"
    assert admin.delete(f"{CUSTOMERS}/ACC-2").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({**ACCOUNT, "balance": "lots"}, 400, "a balance is a decimal number"),
        ({**ACCOUNT, "balance": 15.2}, 422, "balance"),
        ({**ACCOUNT, "currency": "usd"}, 400, "3-letter ISO code"),
        ({**ACCOUNT, "account_id": "a b"}, 400, "an account id is"),
        ({"account_id": "A"}, 422, "name"),
    ],
)
def test_bad_accounts_are_refused_with_the_reason(
    client_for: ClientFor, body: dict[str, Any], status: int, message: str
) -> None:
    admin = client_for("admin")
    response = admin.post(CUSTOMERS, json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]
    assert admin.get(CUSTOMERS).json() == []


@pytest.mark.parametrize("role", ["viewer", "reporter"])
def test_account_details_need_a_teller(client_for: ClientFor, role: str) -> None:
    client_for("admin").post(CUSTOMERS, json=ACCOUNT)
    other = client_for(role)
    for url in (CUSTOMERS, f"{CUSTOMERS}/ACC-1"):
        response = other.get(url)
        assert response.status_code == 403
        assert "teller role" in response.json()["error"]["message"]


def test_only_admins_change_accounts(client_for: ClientFor) -> None:
    client_for("admin").post(CUSTOMERS, json=ACCOUNT)
    teller = client_for("teller")
    attempts: list[tuple[str, str, Any]] = [
        ("POST", CUSTOMERS, {"json": {**ACCOUNT, "account_id": "ACC-9"}}),
        ("PUT", f"{CUSTOMERS}/ACC-1", {"json": {"name": "X"}}),
        ("DELETE", f"{CUSTOMERS}/ACC-1", {}),
        ("POST", f"{CUSTOMERS}/ACC-1/photo", {"files": upload("x.jpg", b"x")}),
    ]
    for method, url, kwargs in attempts:
        assert teller.request(method, url, **kwargs).status_code == 403, (method, url)
    assert teller.get(f"{CUSTOMERS}/ACC-1").json()["name"] == "Barack Obama"


def test_profile_photos_are_validated_stored_replaced_and_deleted(
    server: OneEyeApp, client_for: ClientFor, face_photos: Path
) -> None:
    admin = client_for("admin")
    teller = client_for("teller")
    admin.post(CUSTOMERS, json=ACCOUNT)
    before = photo_files(server)

    bad = admin.post(f"{CUSTOMERS}/ACC-1/photo", files=upload("cv.pdf", b"%PDF-1.4 not a photo"))
    assert bad.status_code == 400
    assert "cv.pdf: not an image" in bad.json()["error"]["message"]
    nobody = admin.post(
        f"{CUSTOMERS}/NOPE/photo", files=upload("o.jpg", (face_photos / "obama.jpg").read_bytes())
    )
    assert nobody.status_code == 404
    assert photo_files(server) == before

    first = admin.post(
        f"{CUSTOMERS}/ACC-1/photo", files=upload("o.jpg", (face_photos / "obama.jpg").read_bytes())
    )
    assert first.status_code == 200, first.text
    url = first.json()["profile_photo_url"]
    assert url.startswith("/api/v1/photos/customers/")
    fetched = teller.get(url)
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "image/jpeg"
    assert fetched.content.startswith(b"\xff\xd8")
    assert teller.get(f"{CUSTOMERS}/ACC-1").json()["profile_photo_url"] == url

    second = admin.post(
        f"{CUSTOMERS}/ACC-1/photo", files=upload("o.jpg", (face_photos / "obama2.jpg").read_bytes())
    )
    assert second.json()["profile_photo_url"] != url
    assert teller.get(url).status_code == 404  # the old photo is gone
    assert photo_files(server) == before + 1

    assert admin.delete(f"{CUSTOMERS}/ACC-1").status_code == 204
    assert photo_files(server) == before


@pytest.fixture
def bank_server(tmp_path: Path, face_engine: FaceEngine, bank: BankApi) -> Iterator[OneEyeApp]:
    """A server whose customer directory is the bank's API."""
    settings = ServeSettings(
        data_dir=tmp_path / "data",
        customers=CustomerDirectorySettings(
            kind="http",
            url_template=bank.base + "/accounts/{account_id}",
            auth_header="X-Api-Key: k3y",
            timeout=0.5,
        ),
        outbound=OutboundSettings(allow_internal=["127.0.0.1"]),
    )
    app = OneEyeApp(settings, engine=face_engine)
    app.start()
    try:
        yield app
    finally:
        app.stop()


def test_a_bank_api_directory_is_read_through_and_not_edited(
    bank_server: OneEyeApp, bank: BankApi
) -> None:
    bank.accounts["A1"] = {**OBAMA, "account_id": "A1"}
    teller: TestClient = key_client(bank_server, "teller")
    admin: TestClient = key_client(bank_server, "admin")

    card = teller.get(f"{CUSTOMERS}/A1")
    assert card.status_code == 200, card.text
    assert card.json()["balance"] == "1520.40"
    assert card.json()["profile_photo_url"] == OBAMA["profile_photo_url"]
    assert bank.requests[-1][1]["X-Api-Key"] == "k3y"
    assert teller.get(f"{CUSTOMERS}/nobody").status_code == 404
    assert audit_rows(bank_server, "account.view")[-1][1] == "A1"

    refused = admin.put(f"{CUSTOMERS}/A1", json={"name": "X"})
    assert refused.status_code == 409
    assert "change them there" in refused.json()["error"]["message"]
    assert teller.get(CUSTOMERS).status_code == 409

    bank.status = 500
    down = teller.get(f"{CUSTOMERS}/B2")
    assert down.status_code == 502
    assert "answered HTTP 500" in down.json()["error"]["message"]
    assert "k3y" not in down.text
