"""Service errors answer with the HTTP status of their kind (``oneeye.web.errors``), in the one
error shape, with the service's own sentence as the message."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from oneeye.errors import FaceError, ImageError, OneEyeError, TimeLimitError
from oneeye.services.alerts import (
    AlertError,
    CaseApprovedError,
    CaseClosedError,
    CaseNotFoundError,
    SubscriptionNotFoundError,
)
from oneeye.services.auth import UserError, UserExistsError, UserNotFoundError, WrongPasswordError
from oneeye.services.cameras import CameraError, CameraExistsError, CameraNotFoundError
from oneeye.services.customers import CustomerError, DirectoryError, ReadOnlyDirectoryError
from oneeye.services.edge.registry import CameraOwnedError
from oneeye.services.enrolment import EnrolmentError, NotFoundError, UploadTooLargeError
from oneeye.services.gallery import WatchlistError, WatchlistExistsError, WatchlistNotFoundError
from oneeye.services.notify.base import AddressError
from oneeye.services.notify.links import LinkError
from oneeye.services.notify.subscriptions import UnknownSubscriptionError
from oneeye.store.photos import PhotoNotFoundError
from oneeye.web.errors import install_error_handlers, status_of


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (NotFoundError, 404),
        (CaseNotFoundError, 404),
        (SubscriptionNotFoundError, 404),
        (UserNotFoundError, 404),
        (WatchlistNotFoundError, 404),
        (WatchlistExistsError, 409),
        (CameraNotFoundError, 404),
        (PhotoNotFoundError, 404),
        (UnknownSubscriptionError, 404),
        (CaseClosedError, 409),
        (CaseApprovedError, 409),
        (ReadOnlyDirectoryError, 409),
        (UserExistsError, 409),
        (CameraExistsError, 409),
        (CameraOwnedError, 409),
        (UploadTooLargeError, 413),
        (WrongPasswordError, 403),
        (LinkError, 403),
        (DirectoryError, 502),
        (FaceError, 422),
        (CameraError, 422),
        (ImageError, 400),
        (EnrolmentError, 400),
        (AlertError, 400),
        (CustomerError, 400),
        (UserError, 400),
        (WatchlistError, 400),
        (AddressError, 400),
        (TimeLimitError, None),
        (OneEyeError, None),
        (ValueError, None),
    ],
)
def test_each_service_error_has_the_status_of_its_kind(
    error: type[Exception], expected: int | None
) -> None:
    assert status_of(error("what went wrong")) == expected


def make_app() -> FastAPI:
    """An application whose routes raise service errors."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/case")
    def case() -> None:
        raise CaseClosedError("case 'c1' is resolved already")

    @app.get("/other")
    def other() -> None:
        raise TimeLimitError("not a kind")

    return app


def test_a_service_error_answers_in_the_one_shape_with_its_own_message() -> None:
    client = TestClient(make_app())
    answer = client.get("/case")
    assert answer.status_code == 409
    assert answer.json() == {"error": {"status": 409, "message": "case 'c1' is resolved already"}}


def test_an_error_of_no_kind_is_a_logged_500() -> None:
    client = TestClient(make_app(), raise_server_exceptions=False)
    answer = client.get("/other")
    assert answer.status_code == 500
    assert "logged" in answer.json()["error"]["message"]
