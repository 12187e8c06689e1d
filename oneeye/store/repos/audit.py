"""The audit log: who saw or changed what, when and from where.

Functions take the caller's ``Session`` (an audit row written in the same transaction as the
change it records commits or rolls back with it) and return ``AuditRecord`` values, never rows.
Fields are cut to their columns' lengths here, so no caller can make a write fail by a long
actor name or address.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, or_, select, update
from sqlalchemy.orm import Session

from oneeye.store.models import AuditEntry
from oneeye.store.repos.oldest import delete_oldest

IN_CHUNK = 1000
"""Values per ``IN (...)`` list when many subjects are asked about."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One line of the audit log."""

    id: int
    at: datetime
    actor: str
    role: str
    action: str
    subject: str
    address: str
    detail: dict[str, Any]


def _record(row: AuditEntry) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        at=row.at,
        actor=row.actor,
        role=row.role,
        action=row.action,
        subject=row.subject,
        address=row.address,
        detail=dict(row.detail) if isinstance(row.detail, dict) else row.detail,
    )


def add(
    session: Session,
    actor: str,
    action: str,
    subject: str = "",
    detail: dict[str, Any] | None = None,
    *,
    role: str = "",
    address: str = "",
) -> None:
    """Add one line (committed with the caller's transaction)."""
    session.add(
        AuditEntry(
            actor=actor[:100],
            role=role[:16],
            action=action,
            subject=subject[:200],
            address=address[:64],
            detail=detail or {},
        )
    )


def search(
    session: Session,
    *,
    limit: int = 100,
    action: str | None = None,
    actors: Sequence[str] = (),
    subject: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: int | None = None,
) -> list[AuditRecord]:
    """The newest ``limit`` lines matching every filter given, newest first.

    Args:
        limit: at most this many lines.
        action: only this action; one ending in ``.`` or ``*`` matches every action starting
            with it.
        actors: only lines by one of these actors (exact names).
        subject: lines whose subject is this, or whose detail names it.
        since: lines at or after this time.
        until: lines before this time.
        before: lines with an id below this one.
    """
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action:
        if action.endswith(("*", ".")):
            query = query.where(AuditEntry.action.startswith(action.rstrip("*")))
        else:
            query = query.where(AuditEntry.action == action)
    if actors:
        query = query.where(AuditEntry.actor.in_(actors))
    if subject:
        query = query.where(
            or_(
                AuditEntry.subject == subject,
                cast(AuditEntry.detail, String).contains(subject, autoescape=True),
            )
        )
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    return [_record(row) for row in session.scalars(query)]


def actions_about(session: Session, subject: str) -> list[str]:
    """The actions of every line whose subject is ``subject``."""
    return list(session.scalars(select(AuditEntry.action).where(AuditEntry.subject == subject)))


def about(session: Session, subjects: Sequence[str]) -> list[AuditRecord]:
    """Every line whose subject is one of ``subjects``, oldest first."""
    records = [
        _record(row)
        for start in range(0, len(subjects), IN_CHUNK)
        for row in session.scalars(
            select(AuditEntry).where(AuditEntry.subject.in_(subjects[start : start + IN_CHUNK]))
        )
    ]
    records.sort(key=lambda record: record.id)
    return records


def redact(session: Session, subject: str, keys: Collection[str]) -> int:
    """Remove ``keys`` from the detail of every line about ``subject`` (marking it
    ``redacted``); the lines themselves stay. Returns how many changed."""
    redacted = 0
    rows = session.execute(
        select(AuditEntry.id, AuditEntry.detail).where(AuditEntry.subject == subject)
    ).all()
    for ident, detail in rows:
        if not isinstance(detail, dict) or not set(keys) & detail.keys():
            continue
        kept = {k: v for k, v in detail.items() if k not in keys}
        session.execute(
            update(AuditEntry)
            .where(AuditEntry.id == ident)
            .values(detail={**kept, "redacted": True})
            .execution_options(synchronize_session=False)
        )
        redacted += 1
    return redacted


def delete_older(session: Session, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` of the oldest lines written before ``cutoff`` (select the ids,
    then delete by id: the same statements on SQLite and PostgreSQL); returns how many."""
    return delete_oldest(session, AuditEntry.id, AuditEntry.at < cutoff, limit=limit)
