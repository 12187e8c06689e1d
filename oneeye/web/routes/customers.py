"""Customer accounts: ``/customers``.

Account details (address, balance) reach only ``teller`` and ``admin``, and every time they
are shown is written to the audit log (``account.view``). Adding, changing and deleting
accounts needs ``admin`` and works on the built-in directory; when the directory is the bank's
own API, those routes answer 409 and say where to change accounts instead.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from oneeye.services.customers import (
    CustomerCard,
    CustomerError,
)
from oneeye.services.enrolment import encode_jpeg
from oneeye.store.photos import PhotoStoreError
from oneeye.web.deps import Admin, ServicesDep, Teller, audit_access
from oneeye.web.limits import UPLOAD_BODY, accepts
from oneeye.web.routes.people import ErasurePublic, UploadDep, erasure_public, read_upload

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/customers", tags=["customers"])

Balance = Annotated[
    str | int,
    Field(
        description="A decimal amount as text (never a float: cents must stay exact)",
        examples=["1520.40"],
    ),
]


class CustomerUpdate(BaseModel):
    """An account's details (a PUT replaces them all; the profile photo stays)."""

    name: str = Field(min_length=1, max_length=200, examples=["Barack Obama"])
    account_type: str = Field(default="", max_length=64, examples=["checking"])
    address: str = Field(default="", max_length=2000)
    balance: Balance = "0.00"
    currency: str = Field(default="USD", min_length=3, max_length=3, examples=["USD"])


class CustomerCreate(CustomerUpdate):
    """A new account."""

    account_id: str = Field(min_length=1, max_length=64, examples=["ACC-1001"])


class CustomerPublic(BaseModel):
    """An account card, as tellers see it."""

    account_id: str
    name: str
    account_type: str
    address: str
    balance: str
    currency: str
    profile_photo_url: str | None


def customer_public(card: CustomerCard) -> CustomerPublic:
    """A card as its JSON schema."""
    return CustomerPublic(
        account_id=card.account_id,
        name=card.name,
        account_type=card.account_type,
        address=card.address,
        balance=card.balance,
        currency=card.currency,
        profile_photo_url=card.photo_url(),
    )


def _save(
    services: ServicesDep, account_id: str, body: CustomerUpdate
) -> tuple[CustomerCard, bool]:
    return services.directory.save(
        account_id,
        name=body.name,
        account_type=body.account_type,
        address=body.address,
        balance=body.balance,
        currency=body.currency,
    )


@router.get("", response_model=list[CustomerPublic], summary="List accounts")
def list_customers(
    request: Request,
    services: ServicesDep,
    teller: Teller,
    q: Annotated[str | None, Query(max_length=200, description="Part of an id or name")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[CustomerPublic]:
    """Accounts by id (built-in directory only). The accounts shown are audited."""
    cards = services.directory.accounts(q=q, limit=limit, offset=offset)
    if cards:
        audit_access(
            services,
            teller,
            request,
            "account.view",
            "list",
            {"accounts": [c.account_id for c in cards]},
        )
    return [customer_public(c) for c in cards]


@router.post(
    "",
    response_model=CustomerPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Add an account",
)
def create_customer(body: CustomerCreate, services: ServicesDep, admin: Admin) -> CustomerPublic:
    """Add an account to the built-in directory; 409 if the id is taken."""
    exists = services.directory.editable and services.directory.lookup(body.account_id)
    if exists:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"account {body.account_id!r} already exists; PUT /customers/{body.account_id} "
            "replaces it",
        )
    card, _ = _save(services, body.account_id, body)
    services.auth.audit(admin.actor, "account.create", card.account_id)
    return customer_public(card)


@router.put("/{account_id}", response_model=CustomerPublic, summary="Add or replace an account")
def put_customer(
    account_id: str, body: CustomerUpdate, services: ServicesDep, admin: Admin
) -> CustomerPublic:
    """Create the account, or replace its details (its profile photo stays)."""
    card, created = _save(services, account_id, body)
    services.auth.audit(
        admin.actor, "account.create" if created else "account.update", card.account_id
    )
    return customer_public(card)


@router.get("/{account_id}", response_model=CustomerPublic, summary="One account")
def get_customer(
    account_id: str, request: Request, services: ServicesDep, teller: Teller
) -> CustomerPublic:
    """The account's card from the customer directory (built-in or the bank's API). Each
    view is written to the audit log."""
    card = services.directory.lookup(account_id)
    if card is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer account {account_id!r}")
    audit_access(services, teller, request, "account.view", account_id)
    return customer_public(card)


@router.delete(
    "/{account_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an account",
)
def delete_customer(account_id: str, services: ServicesDep, admin: Admin) -> Response:
    """Delete an account and its profile photo (people holding it keep their photos)."""
    card = services.directory.delete(account_id)
    if card is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer account {account_id!r}")
    if card.profile_photo_key:
        services.photos.delete(card.profile_photo_key)
    services.auth.audit(admin.actor, "account.delete", account_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class AccountErasurePublic(BaseModel):
    """What erasing a customer removed."""

    account_id: str
    account_deleted: bool = Field(description="Whether OneEye's own directory held it.")
    people: list[ErasurePublic] = Field(description="Each person who held the account.")
    photos: int
    audit_redacted: int


@router.post(
    "/{account_id}/erase",
    response_model=AccountErasurePublic,
    summary="Erase a customer",
    responses={404: {"description": "No such account, and nobody holds it"}},
)
def erase_customer(
    account_id: Annotated[str, PathParam(max_length=64)], services: ServicesDep, admin: Admin
) -> AccountErasurePublic:
    """Delete a customer and everything held about them: each person who holds the account
    is erased (templates, photos, sightings, snapshots, dashboard events, every edge's copy
    of their faces; see ``POST /people/{id}/erase``), then the account and its profile photo.
    Audited (``account.erase``, ids and counts only)."""
    try:
        erased = services.privacy.erase_account(account_id, actor=admin.actor)
    except PhotoStoreError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the photo store could not delete the photos; try again ({exc})",
        ) from None
    return AccountErasurePublic(
        account_id=erased.account_id,
        account_deleted=erased.account_deleted,
        people=[erasure_public(r) for r in erased.people],
        photos=erased.photos,
        audit_redacted=erased.audit_redacted,
    )


@router.post(
    "/{account_id}/photo",
    response_model=CustomerPublic,
    summary="Set the profile photo",
    responses={
        400: {"description": "Not an image, or a damaged one"},
        413: {"description": "The upload is too large"},
    },
)
@accepts(UPLOAD_BODY)
def set_customer_photo(
    account_id: str, file: UploadDep, services: ServicesDep, admin: Admin
) -> CustomerPublic:
    """Store the account's profile photo (any image; it is shown on the teller's card, shrunk
    to ``ONEEYE_LIMITS__PHOTO_MAX_SIDE`` pixels on its longer side)."""
    if not services.directory.editable:
        raise services.directory.read_only_error()
    data = read_upload(file, services.enrolment.max_upload_bytes)
    image = services.enrolment.decode_upload(
        data, file.filename or "", max_side=services.enrolment.photo_max_side
    )
    jpeg = encode_jpeg(image)
    key = services.photos.add("customers", jpeg, "jpg")
    try:
        previous = services.directory.set_profile_photo(account_id, key)
    except CustomerError:
        services.photos.delete(key)
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no customer account {account_id!r}"
        ) from None
    if previous and previous != key:
        services.photos.delete(previous)
    services.auth.audit(admin.actor, "account.photo", account_id)
    card = services.directory.lookup(account_id)
    if card is None:  # deleted in between
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer account {account_id!r}")
    return customer_public(card)
