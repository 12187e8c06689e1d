"""Two central servers and two edges, all real processes on the test PostgreSQL and Mosquitto.

People are enrolled through either server in turn (and one person and one photo deleted); one
server is killed with -9 while sightings stream in and enrolments go on through the other, then
started again. Every sighting the edges published is stored once, and every edge and server ends
at the database's gallery version with the database's entries.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import httpx
import pytest

from oneeye.bus.base import EDGE_SIGHTINGS
from oneeye.services.edge.registry import CameraRegistry
from oneeye.services.gallery_log import gallery_id
from oneeye.store.models import new_id
from oneeye.store.repos import gallery_log, templates
from tests.conftest import free_port
from tests.edge_site import (
    START_TIMEOUT,
    Site,
    edge_sighting,
    start_second_server,
    wait_for,
)
from tests.services.helpers import LabelledClip

pytestmark = [pytest.mark.mqtt, pytest.mark.postgres, pytest.mark.slow]

PHOTOS = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")
LOAD_EDGE = "e-load"
"""The edge id the test's own stream of sightings is published under (4 cameras)."""
METRIC_VERSION = re.compile(r"^oneeye_gallery_version\{[^}]*\} (-?[0-9.e+]+)$", re.MULTILINE)


def enrol(site: Site, server: str, name: str, photo: Path) -> tuple[str, str]:
    """A person with one photo, through the server at ``server``: (person id, template id).
    The photos repeat across people, so the same-face check is overridden."""
    with site.admin(server) as admin:
        person = admin.post("/api/v1/people", json={"name": name})
        assert person.status_code == 201, person.text
        person_id = str(person.json()["id"])
        enrolled = admin.post(
            f"/api/v1/people/{person_id}/photos",
            params={"force": "true"},
            files={"file": (photo.name, photo.read_bytes(), "image/jpeg")},
        )
        assert enrolled.status_code == 201, enrolled.text
        return person_id, str(enrolled.json()["id"])


def database_gallery(site: Site) -> tuple[int, set[str]]:
    """The database's gallery version and the entry ids its tables make."""
    with site.db.session() as session:
        state = gallery_log.state(session)
        rows = templates.on_watchlists(session)
    assert state is not None, "no gallery_state row: no server started"
    ids = {gallery_id(t, w) for t, w in zip(rows.template_ids, rows.watchlists, strict=True)}
    return state.version, ids


def server_version(site: Site, url: str) -> int | None:
    """The gallery version in force in the server at ``url``, from its /metrics (which does
    not catch up with the database first, unlike GET /api/v1/gallery)."""
    try:
        with site.admin(url) as admin:
            exposition = admin.get("/metrics").text
    except (httpx.TransportError, AssertionError):
        return None
    found = METRIC_VERSION.search(exposition)
    return None if found is None else int(float(found.group(1)))


def edge_gallery(site: Site, edge_id: str) -> tuple[int, set[str]] | None:
    """The version and entry ids of the gallery an edge cached on its disk (it rewrites the
    cache after each version it applies)."""
    cache = site.tmp / edge_id / "gallery.json"
    try:
        held = json.loads(cache.read_text())
    except (OSError, ValueError):
        return None
    return int(held["version"]), {str(e["id"]) for e in held["entries"]}


def test_two_servers_two_edges_enrolling_through_both_with_one_killed_under_load(
    site: Site, clip: LabelledClip, face_photos: Path
) -> None:
    # The stream's cameras are registered before the servers start, as an edge's would be
    # through a server: registered behind a running server's back, they can be refused for up
    # to a second (its registry reloads on an unknown camera at most once a second).
    CameraRegistry(site.db).register(LOAD_EDGE, [(f"load-{n}", f"Load {n}") for n in range(4)])
    site.start_server()
    server_a = site.url
    port_b = free_port()
    start_second_server(site, "server-b", port_b)
    server_b = f"http://127.0.0.1:{port_b}"
    door = site.start_edge("door", clip.path)  # fetches from A
    lobby = site.start_edge("lobby", clip.path, server_b)
    for edge in (door, lobby):
        wait_for(
            lambda: site.gallery_version(edge) is not None,  # noqa: B023 (waited for at once)
            START_TIMEOUT,
            f"edge {edge} online with the gallery",
        )

    # A stream of sightings besides the edges' own, so the kill lands under load.
    sent: list[str] = []
    stop = threading.Event()

    def stream() -> None:
        number = 0
        while not stop.is_set() and number < 3000:
            ident = new_id()
            camera = f"load-{number % 4}"
            site.bus.publish(
                EDGE_SIGHTINGS.format(edge=LOAD_EDGE, camera=camera),
                edge_sighting(ident, number, camera),
            )
            sent.append(ident)
            number += 1
            time.sleep(0.01)

    streamer = threading.Thread(target=stream, daemon=True)
    streamer.start()
    people: list[tuple[str, str]] = []
    through = {server_a: 0, server_b: 0}

    def enrol_next(server: str) -> None:
        number = len(people)
        photo = face_photos / PHOTOS[number % len(PHOTOS)]
        people.append(enrol(site, server, f"Person {number}", photo))
        through[server] += 1

    try:
        for number in range(4):
            enrol_next(server_a if number % 2 == 0 else server_b)
        assert site.server is not None
        site.server.process.kill()
        site.server.process.wait(10)
        killed_at = len(sent)
        # A is gone: enrolments and a deletion go on through B.
        enrol_next(server_b)
        enrol_next(server_b)
        with site.admin(server_b) as admin:
            deleted = admin.delete(f"/api/v1/people/{people[0][0]}")
            assert deleted.status_code == 204, deleted.text
        wait_for(lambda: len(sent) >= killed_at + 300, 60, "sightings streamed after the kill")
    finally:
        stop.set()
        streamer.join(10)
    assert site.bus.flush(10)
    site.start_server()  # A again, resuming its broker session
    enrol_next(server_a)
    enrol_next(server_b)
    with site.admin(server_a) as admin:
        person, template = people[1]
        removed = admin.delete(f"/api/v1/people/{person}/templates/{template}")
        assert removed.status_code == 204, removed.text
    assert through == {server_a: 3, server_b: 5}

    # Sightings: all the edges published so far (theirs and the stream's), each stored once.
    published = set(sent) | {
        str(p["id"])
        for p in site.sightings.bodies()
        if p.get("event") == "sighting" and re.fullmatch(r"[0-9a-f]{32}", str(p.get("id")))
    }

    def stored() -> list[str]:
        return [r[0] for r in site.stored("SELECT id FROM sightings")]

    def lost() -> str:
        missing = published - set(stored())
        stream = [i for i in sent if i in missing]
        after_kill = [i for i in sent[killed_at:] if i in missing]
        return (
            f"{len(missing)} of {len(published)} published not stored ({len(stream)} of the "
            f"stream's, {len(after_kill)} of them sent after the kill; "
            f"{len(missing) - len(stream)} of the edges'): {sorted(missing)[:20]}"
        )

    wait_for(lambda: published <= set(stored()), 90, "every published sighting stored", lost)
    ids = stored()
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    assert not repeated, f"stored more than once: {repeated[:20]}"

    # Actions the killed server left unfinished: as if their lease (60 s) had run out, for a
    # sweeper (every 5 s) to take them over.
    left = site.take_over_unfinished_actions()
    wait_for(
        lambda: published <= set(site.announced()),
        30,
        "a dashboard event for every sighting",
        lambda: f"never announced: {sorted(published - set(site.announced()))[:20]}",
    )
    events = site.announced()
    twice = sorted({i for i in events if events.count(i) > 1})
    assert len(twice) <= left, f"announced twice, more than the kill cut short ({left}): {twice}"

    # Galleries: every edge and both servers at the database's version, with its entries.
    version, entries = database_gallery(site)
    assert len(entries) == len(people) - 2, "8 enrolled, one person and one photo deleted"

    def edge_behind() -> str:
        return "; ".join(
            f"{e}: status {site.gallery_version(e)}, cache {edge_gallery(site, e)}"
            for e in (door, lobby)
        )

    def edges_final() -> bool:
        return all(
            site.gallery_version(e) == version and edge_gallery(site, e) == (version, entries)
            for e in (door, lobby)
        )

    wait_for(
        edges_final,
        60,
        f"both edges at the database's version {version} with its {len(entries)} entries",
        edge_behind,
    )
    for server in (server_a, server_b):
        wait_for(
            lambda: server_version(site, server) == version,  # noqa: B023
            30,
            f"server {server} at the database's version {version}",
            lambda: f"it holds {server_version(site, server)}",  # noqa: B023
        )
    print(
        f"published {len(published)} (stream {len(sent)}), stored {len(set(ids))}, "
        f"lost 0, duplicated 0; actions left by the kill {left}, announced twice {len(twice)}; "
        f"gallery version {version}, {len(entries)} entries"
    )
