"""The customer directory: account details for a recognised customer.

Two backends behind ``CustomerDirectory``: OneEye's own ``customer_accounts`` table (the fields
the original's DynamoDB table had), which the API can also edit, and the bank's own HTTP API,
which OneEye only reads (with a short cache, so a branch full of customers does not hammer it),
through the outbound guard: a bank API inside the network must be named in
``ONEEYE_OUTBOUND__ALLOW_INTERNAL``.
``make_directory`` picks one from the settings; nothing else names a backend.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from oneeye.config import CustomerDirectorySettings
from oneeye.errors import Conflict, Invalid, Unavailable
from oneeye.services.outbound import OutboundGuard, OutboundRefusedError
from oneeye.store.db import Database
from oneeye.store.repos import accounts
from oneeye.store.repos.accounts import StoredAccount

logger = logging.getLogger(__name__)

PHOTOS_URL = "/api/v1/photos/"
"""Where the web API serves PhotoStore keys (a profile photo key becomes a URL under it)."""

_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_MAX_BALANCE = Decimal("1e16")
ALLOW_HINT = " (a bank API inside the network must be named in ONEEYE_OUTBOUND__ALLOW_INTERNAL)"


class DirectoryError(Unavailable):
    """The directory could not answer (the bank's API is down, slow, or answered nonsense)."""


class CustomerError(Invalid):
    """An account cannot be saved as asked (bad account id, balance or currency)."""


class ReadOnlyDirectoryError(CustomerError, Conflict):
    """The directory is the bank's own API: accounts are changed there, not through OneEye."""


@dataclass(frozen=True, slots=True)
class CustomerCard:
    """What a teller sees about a customer."""

    account_id: str
    name: str
    account_type: str
    address: str
    balance: str
    """Decimal as a string, e.g. ``"1520.40"``: money is never a float."""
    currency: str
    profile_photo_key: str | None = None
    """A PhotoStore key (built-in table) ..."""
    profile_photo_url: str | None = None
    """... or a URL (HTTP directory)."""

    def photo_url(self) -> str | None:
        """Where a browser fetches the profile photo: the bank's URL, or OneEye's photo route
        for a stored key; ``None`` when the account has no photo."""
        if self.profile_photo_url:
            return self.profile_photo_url
        if self.profile_photo_key:
            return PHOTOS_URL + self.profile_photo_key
        return None


def check_account_id(account_id: str) -> str:
    """``account_id`` if it is 1-64 letters, digits, ``.``, ``_`` or ``-`` (starting with a
    letter or digit), else a ``CustomerError`` saying so."""
    if not isinstance(account_id, str) or not _ACCOUNT_ID.match(account_id):
        raise CustomerError(
            "an account id is 1-64 letters, digits, '.', '_' or '-', starting with a letter or "
            f"digit; got {account_id!r}"
        )
    return account_id


def parse_balance(value: object) -> Decimal:
    """A balance as a ``Decimal`` from a string, int or Decimal (never a float: floats cannot
    hold cents exactly); ``CustomerError`` for anything else."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise CustomerError(f"a balance is a decimal number as text, got {value!r}")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise CustomerError(f"a balance is a decimal number, got {value!r}") from None
    if not number.is_finite() or abs(number) >= _MAX_BALANCE:
        raise CustomerError(f"a balance is a finite number below 10^16, got {value!r}")
    return number


def format_balance(amount: Decimal) -> str:
    """A balance as text with at least two decimals (``"1520.40"``; more are kept)."""
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        amount = amount.quantize(Decimal("0.01"))
    return f"{amount:f}"


class CustomerDirectory(ABC):
    """Looks up account details by account id.

    The built-in directory can also be edited (``accounts``, ``save``, ``delete``,
    ``set_profile_photo``); a read-only one answers those with ``ReadOnlyDirectoryError``.
    """

    editable: bool = False
    """Whether ``save``/``delete``/``set_profile_photo`` work on this directory."""

    @abstractmethod
    def lookup(self, account_id: str) -> CustomerCard | None:
        """The account's card, ``None`` if there is no such account; ``DirectoryError`` if
        the directory cannot answer."""

    def describe(self) -> str:
        """A short description for messages (no secrets)."""
        return type(self).__name__

    def read_only_error(self) -> ReadOnlyDirectoryError:
        """The error a read-only directory answers to a change."""
        return ReadOnlyDirectoryError(
            f"customer accounts come from {self.describe()}; change them there, not in OneEye"
        )

    def accounts(
        self, *, q: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[CustomerCard]:
        """Accounts by id, optionally only those whose id or name contains ``q``."""
        raise self.read_only_error()

    def save(
        self,
        account_id: str,
        *,
        name: str,
        account_type: str = "",
        address: str = "",
        balance: object = "0",
        currency: str = "USD",
    ) -> tuple[CustomerCard, bool]:
        """Create or replace an account (its profile photo stays); returns the card and
        whether it was created."""
        raise self.read_only_error()

    def delete(self, account_id: str) -> CustomerCard | None:
        """Remove an account; returns what it was (to delete its photo), ``None`` if absent."""
        raise self.read_only_error()

    def set_profile_photo(self, account_id: str, key: str | None) -> str | None:
        """Point the account at a stored profile photo; returns the key it had before.
        ``CustomerError`` if there is no such account."""
        raise self.read_only_error()


def _card_of(account: StoredAccount) -> CustomerCard:
    return CustomerCard(
        account_id=account.account_id,
        name=account.name,
        account_type=account.account_type,
        address=account.address,
        balance=format_balance(account.balance),
        currency=account.currency,
        profile_photo_key=account.profile_photo_key,
    )


class SqlCustomerDirectory(CustomerDirectory):
    """The built-in ``customer_accounts`` table."""

    editable = True

    def __init__(self, db: Database) -> None:
        self.db = db

    def describe(self) -> str:
        return "OneEye's customer_accounts table"

    def lookup(self, account_id: str) -> CustomerCard | None:
        with self.db.session() as session:
            account = accounts.get(session, account_id)
        return None if account is None else _card_of(account)

    def accounts(
        self, *, q: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[CustomerCard]:
        with self.db.session() as session:
            found = accounts.search(session, q=q, limit=limit, offset=offset)
        return [_card_of(account) for account in found]

    def save(
        self,
        account_id: str,
        *,
        name: str,
        account_type: str = "",
        address: str = "",
        balance: object = "0",
        currency: str = "USD",
    ) -> tuple[CustomerCard, bool]:
        check_account_id(account_id)
        if not name.strip():
            raise CustomerError("an account needs the holder's name")
        if not _CURRENCY.match(currency):
            raise CustomerError(f"a currency is a 3-letter ISO code like USD, got {currency!r}")
        amount = parse_balance(balance).quantize(Decimal("0.01"))
        with self.db.session() as session:
            account, created = accounts.save(
                session,
                account_id,
                name=name.strip(),
                account_type=account_type,
                address=address,
                balance=amount,
                currency=currency,
            )
        return _card_of(account), created

    def delete(self, account_id: str) -> CustomerCard | None:
        with self.db.session() as session:
            account = accounts.delete(session, account_id)
        return None if account is None else _card_of(account)

    def set_profile_photo(self, account_id: str, key: str | None) -> str | None:
        with self.db.session() as session:
            account = accounts.get(session, account_id)
            if account is None:
                raise CustomerError(f"no customer account {account_id!r}")
            accounts.set_profile_photo(session, account_id, key)
        return account.profile_photo_key


def safe_url(url: str) -> str:
    """``url`` without user info and query string, fit for logs and error messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def parse_auth_header(spec: str) -> tuple[str, str]:
    """``"Name: value"`` as ``(name, value)``; ``DirectoryError`` if it is not that shape."""
    name, sep, value = spec.partition(":")
    if not sep or not name.strip() or not value.strip() or " " in name.strip():
        raise DirectoryError(
            "the customer directory's auth header must look like 'Name: value' "
            "(e.g. 'Authorization: Bearer ...')"
        )
    return name.strip(), value.strip()


def _text(body: dict[str, Any], field: str, url: str, *, required: bool = False) -> str:
    value = body.get(field)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise DirectoryError(
            f"customer directory at {url} answered without a text field {field!r} "
            f"(got {type(value).__name__})"
        )
    return value


def card_from_json(body: object, account_id: str, url: str) -> CustomerCard:
    """The card in the bank's JSON (``account_id``, ``name``, ``account_type``, ``address``,
    ``balance``, optional ``currency`` and ``profile_photo_url``); ``DirectoryError`` naming
    ``url`` when a field is missing or of the wrong kind. Numbers should be parsed as
    ``Decimal`` (``json.loads(..., parse_float=Decimal)``) so no cent is lost."""
    if not isinstance(body, dict):
        raise DirectoryError(
            f"customer directory at {url} answered {type(body).__name__}, expected a JSON object"
        )
    answered_id = body.get("account_id", account_id)
    if str(answered_id) != account_id:
        raise DirectoryError(
            f"customer directory at {url} answered account {answered_id!r} "
            f"when asked for {account_id!r}"
        )
    if "balance" not in body:
        raise DirectoryError(f"customer directory at {url} answered without a 'balance'")
    try:
        balance = parse_balance(body["balance"])
    except CustomerError as exc:
        raise DirectoryError(f"customer directory at {url}: {exc}") from None
    currency = _text(body, "currency", url) or "USD"
    photo = _text(body, "profile_photo_url", url) or None
    return CustomerCard(
        account_id=account_id,
        name=_text(body, "name", url, required=True),
        account_type=_text(body, "account_type", url),
        address=_text(body, "address", url),
        balance=format_balance(balance),
        currency=currency,
        profile_photo_url=photo,
    )


MAX_DIRECTORY_ANSWER_BYTES = 64 * 1024
"""One account's JSON is a few hundred bytes; a longer answer is refused unread past this."""


def _read_bounded(response: httpx.Response, limit: int) -> bytes | None:
    """The body of a 200 answer, or ``None`` when it is longer than ``limit`` bytes (reading
    stops there). Other answers' bodies are never read: only their status is used."""
    if response.status_code != 200:
        return b""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class HttpCustomerDirectory(CustomerDirectory):
    """The bank's own API: ``GET url_template.format(account_id=...)`` answers the account as
    JSON, 404 when there is none. Answers (404s too) are cached for ``cache_seconds``."""

    def __init__(
        self, settings: CustomerDirectorySettings, outbound: OutboundGuard | None = None
    ) -> None:
        """Check the settings; no request is made yet. ``outbound`` checks the API's address
        on every connection (default: no internal host allowed)."""
        template = settings.url_template
        if not template or "{account_id}" not in template:
            raise DirectoryError(
                "the HTTP customer directory needs ONEEYE_CUSTOMERS__URL_TEMPLATE, a URL with "
                "{account_id} where the account id goes"
            )
        if urlsplit(template).scheme not in ("http", "https"):
            raise DirectoryError(
                f"the customer directory URL must start with http:// or https://, "
                f"got {safe_url(template)!r}"
            )
        self.outbound = outbound if outbound is not None else OutboundGuard()
        try:
            self.outbound.check_url(template.replace("{account_id}", "x"), resolve=False)
        except OutboundRefusedError as exc:
            raise DirectoryError(
                f"the customer directory at {safe_url(template)}: {exc}{ALLOW_HINT}"
            ) from None
        self.url_template = template
        self.timeout = settings.timeout
        self.cache_seconds = settings.cache_seconds
        headers = {"Accept": "application/json"}
        if settings.auth_header:
            name, value = parse_auth_header(settings.auth_header)
            headers[name] = value
        self._client = self.outbound.client(
            timeout=httpx.Timeout(settings.timeout), headers=headers
        )
        self._cache: dict[str, tuple[float, CustomerCard | None]] = {}
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"the bank's API at {safe_url(self.url_template)}"

    def url_for(self, account_id: str) -> str:
        """The URL of one account (the id URL-quoted, so it cannot change the path)."""
        return self.url_template.replace("{account_id}", quote(account_id, safe=""))

    def lookup(self, account_id: str) -> CustomerCard | None:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(account_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        card = self._fetch(account_id)
        if self.cache_seconds > 0:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                self._cache[account_id] = (now + self.cache_seconds, card)
        return card

    def clear_cache(self) -> None:
        """Forget every cached answer."""
        with self._lock:
            self._cache.clear()

    def _fetch(self, account_id: str) -> CustomerCard | None:
        url = self.url_for(account_id)
        shown = safe_url(url)
        started = time.monotonic()
        try:
            with self._client.stream("GET", url) as response:
                raw = _read_bounded(response, MAX_DIRECTORY_ANSWER_BYTES)
        except OutboundRefusedError as exc:
            raise DirectoryError(f"customer directory at {shown}: {exc}{ALLOW_HINT}") from None
        except httpx.TimeoutException:
            raise DirectoryError(
                f"customer directory at {shown} did not answer within {self.timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise DirectoryError(
                f"customer directory at {shown} cannot be reached ({type(exc).__name__})"
            ) from None
        if raw is None:
            raise DirectoryError(
                f"customer directory at {shown} answered more than "
                f"{MAX_DIRECTORY_ANSWER_BYTES} bytes for one account"
            )
        logger.debug(
            "customer directory: %s answered %d in %.0f ms",
            shown,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise DirectoryError(
                f"customer directory at {shown} answered HTTP {response.status_code}"
            )
        try:
            body = json.loads(raw, parse_float=Decimal)
        except ValueError:
            raise DirectoryError(
                f"customer directory at {shown} answered something not JSON"
            ) from None
        return card_from_json(body, account_id, shown)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()


def make_directory(
    settings: CustomerDirectorySettings, db: Database, outbound: OutboundGuard | None = None
) -> CustomerDirectory:
    """The directory the settings choose: the built-in table (``sql``) or the bank's API
    (``http``, its requests checked by ``outbound``)."""
    if settings.kind == "http":
        return HttpCustomerDirectory(settings, outbound)
    return SqlCustomerDirectory(db)
