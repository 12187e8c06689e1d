"""The customer accounts repository, on SQLite and PostgreSQL: accounts come back as values,
and the customers page's rows carry each account's people and their enrolled photos."""

from __future__ import annotations

from decimal import Decimal

from oneeye.store.db import Database
from oneeye.store.repos import accounts, people, templates
from tests.store.repos.faces import random_face


def _save(db: Database, account_id: str, name: str) -> None:
    with db.session() as session:
        accounts.save(
            session,
            account_id,
            name=name,
            account_type="Checking",
            address="1 Main St",
            balance=Decimal("12.50"),
            currency="USD",
        )


def test_accounts_are_saved_found_and_deleted_as_values(db: Database) -> None:
    _save(db, "A-2", "Zed")
    _save(db, "A-1", "Amy")
    with db.session() as session:
        saved, created = accounts.save(
            session,
            "A-1",
            name="Amy B",
            account_type="Savings",
            address="",
            balance=Decimal("3"),
            currency="EUR",
        )
        assert not created
        assert saved.balance == Decimal("3")
        assert [a.account_id for a in accounts.search(session)] == ["A-1", "A-2"]
        assert [a.name for a in accounts.search(session, q="zE")] == ["Zed"]
        accounts.set_profile_photo(session, "A-1", "profiles/a.jpg")
    with db.session() as session:
        got = accounts.get(session, "A-1")
        assert got is not None
        assert got.profile_photo_key == "profiles/a.jpg"
        deleted = accounts.delete(session, "A-2")
        assert deleted is not None
        assert deleted.name == "Zed"
    with db.session() as session:
        assert accounts.get(session, "A-2") is None
        assert accounts.delete(session, "A-2") is None


def test_the_customers_page_rows_carry_people_and_their_photos(db: Database) -> None:
    _save(db, "A-2", "Zed")
    _save(db, "A-1", "Amy")
    with db.session() as session:
        bo = people.create(session, name="Bo", account_id="A-1", notes="", watchlists=[])
        al = people.create(session, name="Al", account_id="A-1", notes="", watchlists=[])
        people.create(session, name="Nobody", account_id=None, notes="", watchlists=[])
        first = templates.add(session, bo.id, "templates/b1.jpg", random_face(1))
    with db.session() as session:
        second = templates.add(session, bo.id, "templates/b2.jpg", random_face(2))
    with db.session() as session:
        rows = accounts.with_people(session)
    assert [(r.account.account_id, r.account.name) for r in rows] == [
        ("A-1", "Amy"),
        ("A-2", "Zed"),
    ]
    amy, zed = rows
    assert amy.account.balance == Decimal("12.50")
    assert [(p.id, p.name) for p in amy.people] == [(al.id, "Al"), (bo.id, "Bo")]
    assert amy.people[0].templates == ()
    assert [t.id for t in amy.people[1].templates] == [first.id, second.id]
    assert amy.people[1].templates[0].photo_key == "templates/b1.jpg"
    assert amy.people[1].templates[0].quality == first.quality
    assert zed.people == ()
