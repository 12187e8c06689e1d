"""The dashboard pages: server-rendered HTML (Jinja2) with a little JavaScript, one module
per area: ``auth`` (login, password), ``dashboard``, ``cameras``, ``customers``, ``admin``
(users, audit log), ``cases`` (Amber Alert) and ``history`` (sightings, a person's visits);
``render`` holds what they share.

Every page but login needs a logged-in browser session with a role (the page dependencies of
``oneeye.web.deps``: ``ViewerPage``, ``ReporterPage``, ``TellerPage``, ``AdminPage``); a
refused page answers ``answer_refused``'s way: an anonymous request is sent to ``/login`` with
``next`` set to where it was going, a user with a one-time password to the password page, a
lower role gets the 403 page. The pages render their first content from the services (recent
arrivals, cameras, customers, users) and then change only through the JSON API and the ``/ws``
WebSocket, so a page shows exactly what the API would.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from oneeye.web.deps import PageRefusedError
from oneeye.web.pages import (
    admin,
    auth,
    cameras,
    cases,
    customers,
    dashboard,
    history,
    watchlists,
)
from oneeye.web.pages.render import answer_refused

router = APIRouter(include_in_schema=False)
for _area in (auth, dashboard, cameras, customers, admin, cases, history, watchlists):
    router.include_router(_area.router)


def install_pages(app: FastAPI) -> None:
    """Serve the pages on ``app``, with the answer to a page a page dependency refused."""
    app.add_exception_handler(PageRefusedError, answer_refused)
    app.include_router(router)
