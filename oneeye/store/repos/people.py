"""People: their rows, the watchlists they are on, and how many templates they have.

Functions take the caller's ``Session`` (the caller owns the transaction) and return
``PersonInfo`` values, never rows. Names and account ids are checked by the enrolment service
before they get here; watchlists are named, and an unknown name is refused here.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from oneeye.errors import OneEyeError
from oneeye.store.models import FaceTemplate, Person, Watchlist
from oneeye.store.repos import templates


class UnknownWatchlistError(OneEyeError):
    """A person was to be put on a watchlist that does not exist."""


class Unset:
    """The type of ``UNSET``: "leave this field as it is"."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset()


@dataclass(frozen=True, slots=True)
class PersonInfo:
    """A person as the API shows it."""

    id: str
    name: str
    account_id: str | None
    notes: str
    watchlists: tuple[str, ...]
    templates: int
    created_at: datetime


def _info(person: Person, templates: int) -> PersonInfo:
    return PersonInfo(
        id=person.id,
        name=person.name,
        account_id=person.account_id,
        notes=person.notes,
        watchlists=tuple(sorted(w.name for w in person.watchlists)),
        templates=templates,
        created_at=person.created_at,
    )


def _watchlist_rows(session: Session, names: Sequence[str]) -> list[Watchlist]:
    wanted = sorted(set(names))
    rows = list(session.scalars(select(Watchlist).where(Watchlist.name.in_(wanted))))
    missing = sorted(set(wanted) - {row.name for row in rows})
    if missing:
        known = sorted(session.scalars(select(Watchlist.name)))
        raise UnknownWatchlistError(
            f"no watchlist named {', '.join(map(repr, missing))}; "
            f"the watchlists are {', '.join(known) or 'none yet'}"
        )
    return rows


def _template_count(session: Session, person_id: str) -> int:
    count = session.scalar(
        select(func.count()).select_from(FaceTemplate).where(FaceTemplate.person_id == person_id)
    )
    return int(count or 0)


def _row(session: Session, person_id: str) -> Person | None:
    return session.get(Person, person_id, options=[selectinload(Person.watchlists)])


def search(
    session: Session,
    *,
    watchlist: str | None = None,
    q: str | None = None,
    limit: int = 100,
    offset: int = 0,
    match_accounts: bool = True,
    exclude: Collection[str] = (),
) -> list[PersonInfo]:
    """People by name: only those on ``watchlist``, or whose name (or account id, with
    ``match_accounts``) contains ``q`` (any case); never those in ``exclude``."""
    counts = (
        select(FaceTemplate.person_id, func.count().label("n"))
        .group_by(FaceTemplate.person_id)
        .subquery()
    )
    query = (
        select(Person, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.person_id == Person.id)
        .options(selectinload(Person.watchlists))
        .order_by(Person.name, Person.id)
    )
    if watchlist:
        query = query.where(Person.watchlists.any(Watchlist.name == watchlist))
    if q:
        pattern = f"%{q.lower()}%"
        matches = [func.lower(Person.name).like(pattern)]
        if match_accounts:
            matches.append(func.lower(Person.account_id).like(pattern))
        query = query.where(or_(*matches))
    if exclude:
        query = query.where(Person.id.not_in(exclude))
    rows = session.execute(query.limit(limit).offset(offset)).all()
    return [_info(person, int(n)) for person, n in rows]


def get(session: Session, person_id: str) -> PersonInfo | None:
    """One person, or ``None``."""
    person = _row(session, person_id)
    return None if person is None else _info(person, _template_count(session, person_id))


def watchlists_of(session: Session, person_id: str) -> list[str] | None:
    """The names of the watchlists a person is on, sorted; ``None``: no such person."""
    person = _row(session, person_id)
    return None if person is None else sorted(w.name for w in person.watchlists)


def watchlist_thresholds(session: Session) -> dict[str, float | None]:
    """Every watchlist's stored threshold by name (``None``: the gallery's default)."""
    rows = session.execute(select(Watchlist.name, Watchlist.threshold))
    return dict(rows.all())


def names(session: Session, person_ids: Collection[str]) -> dict[str, str]:
    """The names of the people among ``person_ids`` that exist, by id."""
    rows = session.execute(select(Person.id, Person.name).where(Person.id.in_(person_ids)))
    return dict(rows.all())


def create(
    session: Session,
    *,
    name: str,
    account_id: str | None,
    notes: str,
    watchlists: Sequence[str],
) -> PersonInfo:
    """Add a person on ``watchlists`` (``UnknownWatchlistError`` if one does not exist)."""
    rows = _watchlist_rows(session, watchlists)
    person = Person(name=name, account_id=account_id, notes=notes, watchlists=rows)
    session.add(person)
    session.flush()
    return _info(person, 0)


def update(
    session: Session,
    person_id: str,
    *,
    name: str | Unset = UNSET,
    account_id: str | Unset | None = UNSET,
    notes: str | Unset = UNSET,
    watchlists: Sequence[str] | Unset = UNSET,
) -> tuple[PersonInfo, bool] | None:
    """Change the given fields; returns the person and whether their watchlists changed, or
    ``None`` if there is no such person."""
    person = _row(session, person_id)
    if person is None:
        return None
    if not isinstance(name, Unset):
        person.name = name
    if not isinstance(account_id, Unset):
        person.account_id = account_id
    if not isinstance(notes, Unset):
        person.notes = notes
    moved = False
    if not isinstance(watchlists, Unset):
        rows = _watchlist_rows(session, watchlists)
        moved = {w.name for w in rows} != {w.name for w in person.watchlists}
        person.watchlists = rows
    session.flush()
    return _info(person, _template_count(session, person_id)), moved


def delete(session: Session, person_id: str) -> list[str] | None:
    """Delete a person with their templates; returns the templates' photo keys, or ``None``
    if there is no such person."""
    person = _row(session, person_id)
    if person is None:
        return None
    keys = templates.photo_keys(session, person_id)
    session.delete(person)
    return keys


def others_with_account(session: Session, account_id: str, person_id: str) -> bool:
    """Whether anyone but ``person_id`` holds the account ``account_id``."""
    other = session.scalar(
        select(Person.id).where(Person.account_id == account_id, Person.id != person_id).limit(1)
    )
    return other is not None


def purge(session: Session, person_id: str) -> None:
    """Delete a person's templates and row by statement (no rows loaded): for an erasure,
    which may find only what an earlier deletion left."""
    session.execute(
        sql_delete(FaceTemplate)
        .where(FaceTemplate.person_id == person_id)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        sql_delete(Person)
        .where(Person.id == person_id)
        .execution_options(synchronize_session=False)
    )


def holder_of(session: Session, account_id: str) -> str | None:
    """The id of the first person (by creation) who holds ``account_id``, or ``None``."""
    return session.scalar(
        select(Person.id)
        .where(Person.account_id == account_id)
        .order_by(Person.created_at, Person.id)
        .limit(1)
    )


def holders_of(session: Session, account_id: str) -> list[str]:
    """The ids of every person who holds ``account_id``."""
    return list(session.scalars(select(Person.id).where(Person.account_id == account_id)))
