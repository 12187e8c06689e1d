"""Every route refuses the wrong role: a walk over all of the server's routes, so a route added
later is checked without a line added here.

For each HTTP route: an anonymous request gets 401 (a page outside ``/api`` may instead send the
browser to ``/login``), except the few public routes below. The route's minimum role is read
from its dependencies (the ``require_<role>`` checks behind ``Viewer``/``Teller``/``Admin``...,
found anywhere in the dependency tree), and a user with the role just below it gets 403 --
before any 404, so path parameters are filled with ids that do not exist. Every ``/api`` route
other than the auth routes must declare its role that way. The WebSocket refuses an anonymous
client with close code 4401.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import APIRouter, HTTPException, routing
from fastapi.dependencies.models import Dependant
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Mount, WebSocketRoute
from starlette.websockets import WebSocketDisconnect

from oneeye.app import OneEyeApp
from oneeye.services.auth import ROLE_RANK, ROLES
from oneeye.web.deps import CurrentPrincipal, Teller
from tests.web.conftest import ClientFor

PUBLIC = {
    ("POST", "/api/v1/auth/login"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("GET", "/openapi.json"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),  # for load balancers; says which check failed, never a path or a secret
    ("GET", "/favicon.ico"),  # the site's icon, a fixed SVG: the login page shows it too
    ("GET", "/api/v1/links/snapshot"),  # a signed, expiring link: the signature is the key
}
"""(method, path) pairs anyone may use."""

ANY_LOGGED_IN = {"/api/v1/auth/me", "/api/v1/auth/logout", "/api/v1/auth/password"}
"""API routes for whoever is logged in, whatever the role: they need no ``require_<role>``."""

API = "/api/"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class HttpRoute:
    """One method of one HTTP route, as the test sees it."""

    method: str
    path: str
    dependant: Dependant | None

    @property
    def is_api(self) -> bool:
        return self.path.startswith(API)

    def url(self) -> str:
        """The path with ids that name nothing filled in (of the parameter's type)."""
        annotations = path_params(self.dependant) if self.dependant is not None else {}

        def fill(match: re.Match[str]) -> str:
            name, convertor = match.group(1), match.group(2) or ""
            if convertor == ":int" or annotations.get(name) is int:
                return "987654321"
            if convertor == ":path":
                return "no/such/thing.jpg"
            return "no-such-thing"

        return re.sub(r"\{(\w+)(:\w+)?\}", fill, self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def path_params(dependant: Dependant) -> dict[str, Any]:
    """The path parameters anywhere in a dependency tree, with their annotations."""
    found = {p.name: p.field_info.annotation for p in dependant.path_params}
    for sub in dependant.dependencies:
        found.update(path_params(sub))
    return found


def _all_routes(routes: list[BaseRoute]) -> Iterator[Any]:
    """Every route the application answers, with routers included in routers flattened (newer
    FastAPI keeps included routers as one entry; older ones copy their routes up)."""
    walk = getattr(routing, "iter_route_contexts", None)
    if walk is None:
        yield from routes
    else:
        yield from walk(routes)


def http_routes(server: OneEyeApp) -> list[HttpRoute]:
    """Every (method, path) the server answers over HTTP, static files aside."""
    found: list[HttpRoute] = []
    for route in _all_routes(server.web.routes):
        path = getattr(route, "path", None)
        methods = getattr(route, "methods", None)
        if isinstance(getattr(route, "original_route", route), Mount) or not path or not methods:
            continue
        dependant = getattr(route, "dependant", None)
        for method in sorted(methods):
            if method in METHODS:
                found.append(HttpRoute(method, path, dependant))
    return found


def websocket_paths(server: OneEyeApp) -> list[str]:
    """The paths of the server's WebSocket routes."""
    paths = []
    for route in _all_routes(server.web.routes):
        original = getattr(route, "original_route", route)
        if isinstance(original, WebSocketRoute):
            paths.append(str(route.path))
    return paths


def required_roles(dependant: Dependant | None) -> set[str]:
    """The roles named by every ``require_<role>`` anywhere in a dependency tree."""
    if dependant is None:
        return set()
    found: set[str] = set()
    name = getattr(dependant.call, "__name__", "")
    if name.startswith("require_") and name.removeprefix("require_") in ROLE_RANK:
        found.add(name.removeprefix("require_"))
    for sub in dependant.dependencies:
        found |= required_roles(sub)
    return found


def minimum_role(route: HttpRoute) -> str | None:
    """The lowest role a route lets in: the highest of the roles its checks require."""
    roles = required_roles(route.dependant)
    return max(roles, key=ROLE_RANK.__getitem__) if roles else None


def role_below(role: str) -> str | None:
    """The role just below ``role`` on the ladder (``None`` below ``viewer``)."""
    rank = ROLE_RANK[role]
    return ROLES[rank - 1] if rank > 0 else None


def is_redirect_to_login(status: int, location: str | None) -> bool:
    return status in (302, 303, 307) and (location or "").startswith("/login")


def test_the_walk_finds_the_routes_this_test_relies_on(server: OneEyeApp) -> None:
    routes = {str(r) for r in http_routes(server)}
    assert {"POST /api/v1/auth/login", "GET /api/v1/users", "DELETE /api/v1/users/{user_id}"} <= (
        routes
    )
    by_path = {str(r): minimum_role(r) for r in http_routes(server)}
    assert by_path["GET /api/v1/audit"] == "admin"
    assert by_path["GET /api/v1/auth/me"] is None


def anonymous_problems(server: OneEyeApp, anonymous: TestClient) -> list[str]:
    """The routes that do not refuse an anonymous request, each with what it answered."""
    problems = []
    for route in http_routes(server):
        if (route.method, route.path) in PUBLIC:
            continue
        response = anonymous.request(route.method, route.url(), follow_redirects=False)
        if response.status_code == 401:
            continue
        if not route.is_api and is_redirect_to_login(
            response.status_code, response.headers.get("location")
        ):
            continue
        problems.append(f"{route}: anonymous got {response.status_code} {response.text[:120]}")
    return problems


def role_problems(server: OneEyeApp, client_for: ClientFor) -> tuple[list[str], int]:
    """The routes that let in the role just below their own (or declare no role), and how
    many routes were checked."""
    clients: dict[str, TestClient] = {}
    problems = []
    checked = 0
    for route in http_routes(server):
        if (route.method, route.path) in PUBLIC:
            continue
        role = minimum_role(route)
        if role is None:
            if route.is_api and route.path not in ANY_LOGGED_IN:
                problems.append(f"{route}: no require_<role> dependency (use Viewer, Admin...)")
            continue
        below = role_below(role)
        if below is None:
            continue
        if below not in clients:
            clients[below] = client_for(below)
        response = clients[below].request(route.method, route.url(), follow_redirects=False)
        checked += 1
        if response.status_code != 403:
            problems.append(
                f"{route} needs {role}: a {below} got {response.status_code} {response.text[:120]}"
            )
    return problems, checked


def test_anonymous_requests_are_refused_everywhere_but_the_public_routes(
    server: OneEyeApp, anonymous: TestClient
) -> None:
    problems = anonymous_problems(server, anonymous)
    assert not problems, "routes that do not refuse anonymous requests:\n" + "\n".join(problems)


def test_every_route_refuses_the_role_just_below_its_own(
    server: OneEyeApp, client_for: ClientFor
) -> None:
    problems, checked = role_problems(server, client_for)
    assert not problems, "routes that let the wrong role in:\n" + "\n".join(problems)
    assert checked > 0


def test_the_checks_catch_an_open_route_and_a_route_without_a_role(
    server: OneEyeApp, anonymous: TestClient, client_for: ClientFor
) -> None:
    extra = APIRouter()

    @extra.get("/api/v1/zz-open")
    def wide_open() -> dict[str, str]:
        return {"ok": "yes"}

    @extra.get("/api/v1/zz-logged-in/{thing_id}")
    def any_user(thing_id: int, principal: CurrentPrincipal) -> dict[str, str]:
        return {"ok": principal.name}

    @extra.delete("/api/v1/zz-teller/{thing_id}")
    def teller_only(thing_id: int, principal: Teller) -> dict[str, str]:
        raise HTTPException(404, "no such thing")

    server.web.include_router(extra)
    assert anonymous_problems(server, anonymous) == [
        'GET /api/v1/zz-open: anonymous got 200 {"ok":"yes"}'
    ]
    problems, _ = role_problems(server, client_for)
    assert problems == [
        "GET /api/v1/zz-open: no require_<role> dependency (use Viewer, Admin...)",
        "GET /api/v1/zz-logged-in/{thing_id}: no require_<role> dependency (use Viewer, Admin...)",
    ]


def test_the_websocket_refuses_anonymous_clients(server: OneEyeApp, anonymous: TestClient) -> None:
    paths = websocket_paths(server)
    if not paths:
        pytest.skip("the server has no WebSocket route yet")
    for path in paths:
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            anonymous.websocket_connect(path) as socket,
        ):
            socket.receive_text()
        assert closed.value.code == 4401, f"{path}: closed with {closed.value.code}"
