"""Read-only views the dashboard's pages render, as value types (no ORM row leaves here).

Each view is one repository query shaped for one page, run in a session of its own; the pages
call these instead of running SQL, so the web layer never sees the database's models.
"""

from __future__ import annotations

from oneeye.store.db import Database
from oneeye.store.repos import accounts
from oneeye.store.repos.accounts import AccountWithPeople, EnrolledPerson
from oneeye.store.repos.templates import TemplateInfo

__all__ = ["AccountWithPeople", "EnrolledPerson", "TemplateInfo", "customer_rows"]


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
