"""The customer directory: account details for a recognised customer. OWNER: helper B
(stub contract; replace the bodies)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from oneeye.config import CustomerDirectorySettings
from oneeye.errors import OneEyeError
from oneeye.store.db import Database


class DirectoryError(OneEyeError):
    """The directory could not answer (the bank's API is down, slow, or answered nonsense)."""


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


class CustomerDirectory(ABC):
    """Looks up account details by account id."""

    @abstractmethod
    def lookup(self, account_id: str) -> CustomerCard | None:
        """The account's card, ``None`` if there is no such account; ``DirectoryError`` if
        the directory cannot answer."""


def make_directory(settings: CustomerDirectorySettings, db: Database) -> CustomerDirectory:
    """The directory the settings choose."""

    class _Placeholder(CustomerDirectory):
        def lookup(self, account_id: str) -> CustomerCard | None:
            raise NotImplementedError

    return _Placeholder()
