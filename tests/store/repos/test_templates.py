"""The people and templates repositories, and the one codec of stored embeddings, on SQLite
and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import update

from oneeye.store.db import Database
from oneeye.store.models import FaceTemplate, Watchlist
from oneeye.store.repos import people, templates
from oneeye.store.repos.templates import (
    DamagedEmbeddingError,
    embedding_from_bytes,
    embedding_to_bytes,
    embeddings_from_bytes,
)
from oneeye.types import FaceBox
from tests.store.repos.faces import random_face


def test_the_codec_round_trips_and_refuses_the_wrong_size() -> None:
    vector = np.arange(128, dtype=np.float32) / 128
    data = embedding_to_bytes(vector)
    assert len(data) == 512
    np.testing.assert_array_equal(embedding_from_bytes(data), vector)
    np.testing.assert_array_equal(embeddings_from_bytes([data, data]), np.stack([vector] * 2))
    assert embeddings_from_bytes([]).shape == (0, 128)
    with pytest.raises(ValueError, match="an embedding has 128 values, got 3"):
        embedding_to_bytes([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="has 512 bytes, got 4"):
        embedding_from_bytes(b"\0" * 4)
    with pytest.raises(DamagedEmbeddingError) as caught:
        embeddings_from_bytes([data, b"\0" * 8, data, b""])
    assert caught.value.bad == (1, 3)


def test_people_and_templates_come_back_as_values(db: Database) -> None:
    with db.session() as session:
        session.add_all([Watchlist(name="vip"), Watchlist(name="staff", threshold=0.4)])
    with db.session() as session:
        ann = people.create(session, name="Ann", account_id=None, notes="", watchlists=["vip"])
        added = templates.add(session, ann.id, "templates/a.jpg", random_face(1))
    assert ann.watchlists == ("vip",)
    assert ann.templates == 0
    assert added.box == FaceBox(top=10, right=60, bottom=60, left=10)
    unknown = pytest.raises(people.UnknownWatchlistError, match="no watchlist named 'nope'")
    with db.session() as session, unknown:
        people.create(session, name="Bo", account_id=None, notes="", watchlists=["nope"])
    with db.session() as session:
        updated = people.update(session, ann.id, watchlists=["vip", "staff"])
        assert updated is not None
        info, moved = updated
        assert moved
        assert info.watchlists == ("staff", "vip")
        assert info.templates == 1
        assert people.update(session, "missing") is None
        assert people.watchlist_thresholds(session) == {"vip": None, "staff": 0.4}
        loaded = templates.on_watchlists(session)
        vectors = templates.vectors_of_person(session, ann.id)
    assert sorted(loaded.watchlists) == ["staff", "vip"]
    assert loaded.embeddings.shape == (2, 128)
    np.testing.assert_allclose(vectors[0].embedding, random_face(1).embedding)
    with db.session() as session:
        assert templates.delete(session, added.id, person_id="someone-else") is None
        assert people.delete(session, ann.id) == ["templates/a.jpg"]
    with db.session() as session:
        assert people.get(session, ann.id) is None
        assert templates.of_person(session, ann.id) == []


def test_a_damaged_stored_embedding_is_named_when_the_gallery_loads(db: Database) -> None:
    with db.session() as session:
        session.add(Watchlist(name="vip"))
    with db.session() as session:
        ann = people.create(session, name="Ann", account_id=None, notes="", watchlists=["vip"])
        added = templates.add(session, ann.id, "templates/a.jpg", random_face(2))
    with db.session() as session:
        session.execute(
            update(FaceTemplate).where(FaceTemplate.id == added.id).values(embedding=b"\0" * 5)
        )
    with db.session() as session, pytest.raises(DamagedEmbeddingError, match=added.id):
        templates.on_watchlists(session)
