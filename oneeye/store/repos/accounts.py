"""The built-in customer directory's table: account details a teller is shown.

Functions take the caller's ``Session`` and return ``StoredAccount`` values (or, for the
customers page, ``AccountWithPeople``), never rows. Account ids, names, currencies and balances
are checked by ``services.customers`` first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session, selectinload

from oneeye.store.models import CustomerAccount, Person
from oneeye.store.repos import templates
from oneeye.store.repos.templates import TemplateInfo


@dataclass(frozen=True, slots=True)
class StoredAccount:
    """One row of ``customer_accounts``."""

    account_id: str
    name: str
    account_type: str
    address: str
    balance: Decimal
    currency: str
    profile_photo_key: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class EnrolledPerson:
    """A person (face identity) enrolled for an account, with their enrolled photos."""

    id: str
    name: str
    templates: tuple[TemplateInfo, ...]
    """Oldest first."""


@dataclass(frozen=True, slots=True)
class AccountWithPeople:
    """An account with the people enrolled for it: one row of the admin customers page."""

    account: StoredAccount
    people: tuple[EnrolledPerson, ...]
    """By name."""


def _account(row: CustomerAccount) -> StoredAccount:
    return StoredAccount(
        account_id=row.account_id,
        name=row.name,
        account_type=row.account_type,
        address=row.address,
        balance=Decimal(row.balance),
        currency=row.currency,
        profile_photo_key=row.profile_photo_key,
        updated_at=row.updated_at,
    )


def get(session: Session, account_id: str) -> StoredAccount | None:
    """The account, or ``None``."""
    row = session.get(CustomerAccount, account_id)
    return None if row is None else _account(row)


def search(
    session: Session, *, q: str | None = None, limit: int = 100, offset: int = 0
) -> list[StoredAccount]:
    """Accounts by id, only those whose id or name contains ``q`` (any case) if given."""
    query = select(CustomerAccount).order_by(CustomerAccount.account_id)
    if q:
        pattern = f"%{q.lower()}%"
        query = query.where(
            or_(
                func.lower(CustomerAccount.account_id).like(pattern),
                func.lower(CustomerAccount.name).like(pattern),
            )
        )
    return [_account(row) for row in session.scalars(query.limit(limit).offset(offset))]


def save(
    session: Session,
    account_id: str,
    *,
    name: str,
    account_type: str,
    address: str,
    balance: Decimal,
    currency: str,
) -> tuple[StoredAccount, bool]:
    """Create or replace an account (its profile photo stays); returns it and whether it was
    created."""
    row = session.get(CustomerAccount, account_id)
    created = row is None
    if row is None:
        row = CustomerAccount(account_id=account_id)
        session.add(row)
    row.name = name
    row.account_type = account_type
    row.address = address
    row.balance = balance
    row.currency = currency
    session.flush()
    return _account(row), created


def delete(session: Session, account_id: str) -> StoredAccount | None:
    """Delete an account; returns what it was, ``None`` if there was none."""
    row = session.get(CustomerAccount, account_id)
    if row is None:
        return None
    account = _account(row)
    session.delete(row)
    return account


def set_profile_photo(session: Session, account_id: str, key: str | None) -> None:
    """Point an existing account at a profile photo key (``None``: no photo)."""
    row = session.get(CustomerAccount, account_id)
    if row is None:
        raise LookupError(f"no customer account {account_id!r}")
    row.profile_photo_key = key


@dataclass(frozen=True, slots=True)
class AccountPage:
    """One page of the customers page: its accounts and how many match in all."""

    rows: tuple[AccountWithPeople, ...]
    total: int
    """Accounts matching the search, on every page."""


def _matching(q: str | None) -> list[ColumnElement[bool]]:
    if not q:
        return []
    pattern = f"%{escape_like(q.lower())}%"
    return [
        or_(
            func.lower(CustomerAccount.account_id).like(pattern, escape="\\"),
            func.lower(CustomerAccount.name).like(pattern, escape="\\"),
        )
    ]


def escape_like(text: str) -> str:
    """``text`` with ``%``, ``_`` and ``\\`` escaped for a ``LIKE ... ESCAPE '\\'`` pattern, so
    a search for ``ACC_1`` finds that id, not every ``ACC?1``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _with_people(session: Session, accounts: list[StoredAccount]) -> list[AccountWithPeople]:
    """``accounts``, each with the people enrolled for it (by name) and their photos."""
    if not accounts:
        return []
    rows = session.scalars(
        select(Person)
        .where(Person.account_id.in_([a.account_id for a in accounts]))
        .options(selectinload(Person.templates))
        .order_by(Person.name, Person.id)
    )
    by_account: dict[str, list[EnrolledPerson]] = {}
    for person in rows:
        photos = sorted(person.templates, key=lambda t: (t.created_at, t.id))
        enrolled = EnrolledPerson(
            id=person.id,
            name=person.name,
            templates=tuple(templates.info_of(t) for t in photos),
        )
        by_account.setdefault(str(person.account_id), []).append(enrolled)
    return [AccountWithPeople(a, tuple(by_account.get(a.account_id, []))) for a in accounts]


def page(session: Session, *, q: str | None = None, limit: int, offset: int) -> AccountPage:
    """Accounts by name (then id), ``limit`` of them from ``offset``, only those whose id or
    name contains ``q`` (any case) if given, each with its people and their photos; and how
    many match in all. Two queries on the name index, whatever the table's size."""
    where = _matching(q)
    total = session.scalar(select(func.count()).select_from(CustomerAccount).where(*where))
    found = session.scalars(
        select(CustomerAccount)
        .where(*where)
        .order_by(CustomerAccount.name, CustomerAccount.account_id)
        .limit(limit)
        .offset(offset)
    )
    return AccountPage(
        rows=tuple(_with_people(session, [_account(row) for row in found])),
        total=int(total or 0),
    )


def one_with_people(session: Session, account_id: str) -> AccountWithPeople | None:
    """One account with the people enrolled for it and their photos, or ``None``."""
    account = get(session, account_id)
    return None if account is None else _with_people(session, [account])[0]


def with_people(session: Session) -> list[AccountWithPeople]:
    """Every account by name, each with the people enrolled for it (by name) and their
    enrolled photos (oldest first)."""
    accounts = [
        _account(row)
        for row in session.scalars(select(CustomerAccount).order_by(CustomerAccount.name))
    ]
    return _with_people(session, accounts)
