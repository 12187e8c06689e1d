"""Read-only views the dashboard's pages render, as value types (no ORM row leaves here).

Each view is one repository query shaped for one page, run in a session of its own; the pages
call these instead of running SQL, so the web layer never sees the database's models.
"""

from __future__ import annotations

from oneeye.store.db import Database
from oneeye.store.repos import accounts
from oneeye.store.repos.accounts import AccountPage, AccountWithPeople, EnrolledPerson
from oneeye.store.repos.templates import TemplateInfo

__all__ = [
    "AccountPage",
    "AccountWithPeople",
    "EnrolledPerson",
    "TemplateInfo",
    "customer_page",
    "customer_rows",
    "customer_with_people",
]


def customer_rows(db: Database) -> list[AccountWithPeople]:
    """Every account of the built-in customer directory by name, each with the people
    enrolled for it (by name) and their enrolled photos.

    Args:
        db: The server's database.

    Returns:
        One row per account, in name order.
    """
    with db.session() as session:
        return accounts.with_people(session)


def customer_page(db: Database, *, q: str | None, limit: int, offset: int) -> AccountPage:
    """One page of the built-in directory's accounts in name order (only those whose id or
    name contains ``q``, any case, when given), each with its people and their photos.

    Args:
        db: The server's database.
        q: Part of an account id or name; ``None`` or empty: every account.
        limit: Accounts on the page.
        offset: Accounts skipped before it.

    Returns:
        The page's rows and how many accounts match in all.
    """
    with db.session() as session:
        return accounts.page(session, q=q, limit=limit, offset=offset)


def customer_with_people(db: Database, account_id: str) -> AccountWithPeople | None:
    """One account of the built-in directory with its people and their photos; ``None``
    when there is no such account."""
    with db.session() as session:
        return accounts.one_with_people(session, account_id)
