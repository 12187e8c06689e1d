"""``/history``: every stored sighting, newest first, filtered by person, camera, watchlist,
unknown faces and days, a page at a time, with its snapshot and decision trail, and the same as
CSV; ``/people/{id}``: a person and their visits. Teller and above (the history says who was
where and when); every page shown is written to the audit log.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from oneeye.errors import NotFound
from oneeye.services.context import Services
from oneeye.services.history import PAGE_SIZE, HistoryPage, page
from oneeye.services.sighting_queries import SightingView
from oneeye.services.sightings import photo_url
from oneeye.web.deps import ServicesDep, TellerPage, audit_access
from oneeye.web.pages.render import iso_time, render
from oneeye.web.routes.sightings import HistoryFilter, cursor_text, verdicts_of

router = APIRouter(include_in_schema=False)

FILTERS = ("person", "camera", "watchlist", "unknown", "since", "until")
"""The filters the page offers (and keeps in its paging and CSV links)."""
PERSON_CHOICES = 500
"""People offered in the person filter's list (by name); anyone else is one click away from a
history row, by their link."""


def _filters(request: Request, fixed: dict[str, str] | None = None) -> dict[str, str]:
    """The filled-in filters of the query string (a blank field means "any")."""
    sent = {k: v.strip() for k, v in request.query_params.items() if k in FILTERS}
    values = {k: v for k, v in sent.items() if v and not (k == "unknown" and v != "true")}
    return {**values, **(fixed or {})}


def _error(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


def _row(view: SightingView, verdicts: dict[str, str]) -> dict[str, Any]:
    row = view.sighting
    return {
        "verdict": verdicts.get(row.id, "none"),
        "id": row.id,
        "first_seen": iso_time(row.first_seen),
        "left_at": iso_time(row.left_at),
        "camera_id": row.camera_id,
        "person_id": row.person_id,
        "person_name": view.person_name,
        "watchlist": row.watchlist,
        "distance": row.distance,
        "snapshot_url": photo_url(row.snapshot_key),
        "revised": view.revised,
        "decisions": [
            {
                "person_id": d.person_id,
                "person_name": d.person_name,
                "watchlist": d.watchlist,
                "distance": d.distance,
                "decided_at": iso_time(d.decided_at),
            }
            for d in view.decisions
        ],
    }


def _rows(services: Services, found: HistoryPage | None) -> list[dict[str, Any]]:
    """The page's rows, each with its verdict (a rejected match stays, marked)."""
    if found is None:
        return []
    verdicts = verdicts_of(services, found.sightings)
    return [_row(v, verdicts) for v in found.sightings]


def _history(
    request: Request,
    services: Services,
    values: dict[str, str],
    path: str,
) -> tuple[HistoryPage | None, str | None, dict[str, Any]]:
    """The page of sightings the filters and ``after`` select, or the error that stops it,
    with the links the template needs."""
    after = request.query_params.get("after", "") or None
    try:
        filters = HistoryFilter.model_validate({**values, "after": after})
    except ValidationError as exc:
        return None, _error(exc), {}
    found = page(services.sighting_queries, filters.query(), after=filters.cursor())
    links: dict[str, Any] = {
        "csv_url": "/api/v1/sightings/export.csv?" + urlencode(values),
        "newest_url": f"{path}?{urlencode(values)}" if after else None,
        "older_url": None,
    }
    if found.next_after is not None:
        links["older_url"] = f"{path}?" + urlencode(
            {**values, "after": cursor_text(found.next_after)}
        )
    return found, None, links


def _audit(
    services: Services,
    principal: Any,
    request: Request,
    subject: str,
    values: dict[str, str],
    found: HistoryPage | None,
) -> None:
    if found is not None and found.sightings:
        detail = {"filters": values, "sighting_ids": [v.sighting.id for v in found.sightings]}
        audit_access(services, principal, request, "sighting.history", subject, detail)


@router.get("/history", response_class=HTMLResponse)
def history_page(request: Request, services: ServicesDep, principal: TellerPage) -> Response:
    """Sightings, newest first, filtered, a page at a time, with snapshots and the decision
    trail; a CSV link with the same filters."""
    values = _filters(request)
    found, error, links = _history(request, services, values, "/history")
    _audit(services, principal, request, values.get("person", "*"), values, found)
    return render(
        request,
        "history.html",
        principal,
        {
            "rows": _rows(services, found),
            "filters": values,
            "error": error,
            "people": services.enrolment.people(limit=PERSON_CHOICES, match_accounts=False),
            "cameras": services.cameras.configs(),
            "watchlists": services.gallery_service.watchlists(),
            "page_size": PAGE_SIZE,
            "person": None,
            **links,
        },
        status_code=status.HTTP_400_BAD_REQUEST if error else status.HTTP_200_OK,
    )


@router.get("/people/{person_id}", response_class=HTMLResponse)
def person_page(
    person_id: str, request: Request, services: ServicesDep, principal: TellerPage
) -> Response:
    """A person (name, watchlists) and their visits: the sightings decided to be them, also
    those revised since, newest first."""
    try:
        person = services.enrolment.person(person_id) if len(person_id) == 32 else None
    except NotFound:
        person = None
    if person is None:
        return render(
            request,
            "message.html",
            principal,
            {"title": "Not found", "message": "There is no such person."},
            status_code=status.HTTP_404_NOT_FOUND,
        )
    values = {**_filters(request), "person": person.id}
    path = f"/people/{person.id}"
    found, error, links = _history(request, services, values, path)
    _audit(services, principal, request, person.id, values, found)
    return render(
        request,
        "history.html",
        principal,
        {
            "rows": _rows(services, found),
            "filters": values,
            "error": error,
            "people": [],
            "cameras": services.cameras.configs(),
            "watchlists": services.gallery_service.watchlists(),
            "page_size": PAGE_SIZE,
            "person": person,
            **links,
        },
        status_code=status.HTTP_400_BAD_REQUEST if error else status.HTTP_200_OK,
    )
