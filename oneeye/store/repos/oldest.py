"""Retention's one delete shape, shared by the repositories whose rows age out (audit lines,
dashboard events, finished notifications): not an aggregate of its own."""

from __future__ import annotations

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import InstrumentedAttribute, Session


def delete_oldest(
    session: Session, id_column: InstrumentedAttribute[int], *where: ColumnElement[bool], limit: int
) -> int:
    """Delete up to ``limit`` of the lowest-id rows of ``id_column``'s table matching every
    ``where`` (select the ids, then delete by id: the same statements on SQLite and
    PostgreSQL); returns how many."""
    ids = list(session.scalars(select(id_column).where(*where).order_by(id_column).limit(limit)))
    if ids:
        session.execute(
            delete(id_column.class_)
            .where(id_column.in_(ids))
            .execution_options(synchronize_session=False)
        )
    return len(ids)
