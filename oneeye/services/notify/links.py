"""Signed, expiring links to snapshots, and the key that signs them.

An SMS or a webhook cannot carry a photo, so it carries a link to
``GET /api/v1/links/snapshot?key=&exp=&sig=`` instead. The link needs no login: its
HMAC-SHA256 signature (over the photo key and the expiry time, with the server's secret key) is
the credential, and it stops working at ``exp``. Only camera snapshots can be linked this way,
never enrolment photos or customers' profile photos.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from oneeye.config import ServeSettings
from oneeye.errors import Forbidden

logger = logging.getLogger(__name__)

SNAPSHOT_PATH = "/api/v1/links/snapshot"
LINKABLE_KIND = "snapshots"
"""The only photo kind a signed link may point at."""
SECRET_FILE = "secret.key"
MIN_SECRET_BYTES = 16


class LinkError(Forbidden):
    """A signed link is malformed, forged, or expired."""


def load_secret_key(settings: ServeSettings) -> bytes:
    """The key that signs links: ``settings.secret_key`` when set, else the random key kept in
    ``{data_dir}/secret.key`` (made at first start, readable by the owner only).

    Raises:
        LinkError: the configured key or the key file is too short to be safe.
    """
    if settings.secret_key is not None:
        key = settings.secret_key.get_secret_value().encode()
        if len(key) < MIN_SECRET_BYTES:
            raise LinkError(
                f"ONEEYE_SECRET_KEY must be at least {MIN_SECRET_BYTES} characters, got {len(key)}"
            )
        return key
    return _key_file(settings.data_dir / SECRET_FILE)


def _key_file(path: Path) -> bytes:
    """Read ``path``, or create it atomically (mode 0600) with a fresh random key."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret-")  # mode 0600
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, path)  # fails if another process made the file first
                logger.info("made a new link-signing key in %s", path)
            except FileExistsError:
                pass
        finally:
            Path(tmp).unlink(missing_ok=True)
    key = path.read_bytes().strip()
    if len(key) < MIN_SECRET_BYTES:
        raise LinkError(
            f"{path} holds a {len(key)}-byte key, expected at least {MIN_SECRET_BYTES}; "
            "delete it to have a new one made"
        )
    if path.stat().st_mode & 0o077:
        logger.warning("%s can be read by other users; chmod 600 it", path)
    return key


@dataclass(frozen=True, slots=True)
class SignedLink:
    """The query parameters of a signed link."""

    key: str
    exp: int
    sig: str


class LinkSigner:
    """Makes and checks signed, expiring snapshot links."""

    def __init__(self, secret_key: bytes, public_url: str) -> None:
        """Sign with ``secret_key``; links point at ``public_url`` (the server's address)."""
        if len(secret_key) < MIN_SECRET_BYTES:
            raise LinkError(
                f"a link-signing key has at least {MIN_SECRET_BYTES} bytes, got {len(secret_key)}"
            )
        self._secret = secret_key
        self.public_url = public_url.rstrip("/")

    def _signature(self, key: str, exp: int) -> str:
        message = f"snapshot\n{key}\n{exp}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, key: str, lifetime: float, *, now: float | None = None) -> SignedLink:
        """A link to snapshot ``key`` that works for ``lifetime`` seconds from ``now``.

        Raises:
            LinkError: ``key`` is not a camera snapshot.
        """
        if not key.startswith(LINKABLE_KIND + "/"):
            raise LinkError(f"only snapshots can be linked, not {key!r}")
        exp = int((time.time() if now is None else now) + lifetime)
        return SignedLink(key=key, exp=exp, sig=self._signature(key, exp))

    def url(self, key: str, lifetime: float, *, now: float | None = None) -> str:
        """The full URL of a signed link to snapshot ``key`` (see ``sign``)."""
        link = self.sign(key, lifetime, now=now)
        query = urlencode({"key": link.key, "exp": link.exp, "sig": link.sig})
        return f"{self.public_url}{SNAPSHOT_PATH}?{query}"

    def verify(self, key: str, exp: int, sig: str, *, now: float | None = None) -> None:
        """Check a link's parameters; return nothing when it is good.

        Raises:
            LinkError: the key is not a snapshot, the signature does not match, or the link
                has expired.
        """
        if not key.startswith(LINKABLE_KIND + "/"):
            raise LinkError("this link does not point at a snapshot")
        if not hmac.compare_digest(self._signature(key, exp).encode(), sig.encode()):
            raise LinkError("this link's signature is not valid")
        if (time.time() if now is None else now) > exp:
            raise LinkError("this link has expired")
