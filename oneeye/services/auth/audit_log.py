"""The audit log as ``AuthService`` writes and searches it (``AuditLog``, a part of it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from oneeye.store.db import Database
from oneeye.store.repos import audit
from oneeye.store.repos.audit import AuditRecord


class AuditLog:
    """The audit log part of ``AuthService``: write a line, search the lines."""

    db: Database

    def audit(
        self,
        actor: str,
        action: str,
        subject: str = "",
        detail: dict[str, Any] | None = None,
        *,
        role: str = "",
        address: str = "",
    ) -> None:
        """Write one line to the audit log and commit it before returning.

        Blocking database work: call it from a worker thread (a sync route), never on the
        event loop. ``subject`` and ``detail`` name records by id, never by name.
        """
        with self.db.session() as session:
            audit.add(session, actor, action, subject, detail, role=role, address=address)

    def audit_entries(
        self,
        limit: int = 100,
        action: str | None = None,
        *,
        actor: str | None = None,
        subject: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before: int | None = None,
    ) -> list[AuditRecord]:
        """The newest ``limit`` audit entries that match every filter given, newest first.

        Args:
            limit: at most this many entries.
            action: only this action; one ending in ``.`` or ``*`` matches every action
                starting with it (``user.`` for every user change).
            actor: ``user:<name>`` or ``key:<name>`` exactly, or a bare name for either.
            subject: entries about this id: their subject is it, or their detail names it
                (a face search lists the people it showed there).
            since: entries at or after this time.
            until: entries before this time.
            before: entries with an id below this one (the next page after an entry).

        Returns:
            The entries, newest first.
        """
        names = []
        if actor:
            names = [actor] if ":" in actor else [f"user:{actor}", f"key:{actor}", actor]
        with self.db.session() as session:
            return audit.search(
                session,
                limit=limit,
                action=action,
                actors=names,
                subject=subject,
                since=since,
                until=until,
                before=before,
            )
