"""Read-only views the dashboard's pages render, as value types (no ORM row leaves here).

Each view is one query shaped for one page; the pages call these instead of running SQL, so
the web layer never sees the database's models.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from oneeye.store.db import Database
from oneeye.store.models import CustomerAccount, FaceTemplate, Person


@dataclass(frozen=True, slots=True)
class EnrolledPhoto:
    """An enrolled photo of a customer's face, with its quality figures."""

    id: str
    photo_key: str
    quality: float
    sharpness: float
    frontalness: float
    size_px: float


@dataclass(frozen=True, slots=True)
class CustomerPerson:
    """A person (face identity) enrolled for a customer account."""

    id: str
    name: str
    templates: tuple[EnrolledPhoto, ...]


@dataclass(frozen=True, slots=True)
class CustomerAccountView:
    """An account of the built-in customer directory as the admin page shows it."""

    account_id: str
    name: str
    account_type: str
    address: str
    balance: Decimal
    currency: str
    profile_photo_key: str | None


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """A customer account with the people (faces) enrolled for it."""

    account: CustomerAccountView
    people: tuple[CustomerPerson, ...]


def _photo(row: FaceTemplate) -> EnrolledPhoto:
    return EnrolledPhoto(
        id=row.id,
        photo_key=row.photo_key,
        quality=row.quality,
        sharpness=row.sharpness,
        frontalness=row.frontalness,
        size_px=row.size_px,
    )


def _account(row: CustomerAccount) -> CustomerAccountView:
    return CustomerAccountView(
        account_id=row.account_id,
        name=row.name,
        account_type=row.account_type,
        address=row.address,
        balance=row.balance,
        currency=row.currency,
        profile_photo_key=row.profile_photo_key,
    )


def customer_rows(db: Database) -> list[CustomerRow]:
    """Every account of the built-in customer directory by name, each with the people
    enrolled for it (by name) and their enrolled photos.

    Args:
        db: The server's database.

    Returns:
        One row per account, in name order.
    """
    with db.session() as session:
        accounts = [
            _account(a)
            for a in session.scalars(select(CustomerAccount).order_by(CustomerAccount.name))
        ]
        people = session.scalars(
            select(Person)
            .where(Person.account_id.is_not(None))
            .options(selectinload(Person.templates))
            .order_by(Person.name)
        )
        by_account: dict[str, list[CustomerPerson]] = {}
        for person in people:
            shown = CustomerPerson(
                id=person.id,
                name=person.name,
                templates=tuple(_photo(t) for t in person.templates),
            )
            by_account.setdefault(str(person.account_id), []).append(shown)
    return [CustomerRow(a, tuple(by_account.get(a.account_id, []))) for a in accounts]
