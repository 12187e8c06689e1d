"""Alert emails over SMTP (smtplib): STARTTLS, implicit TLS or plain, with optional login.

Header values built from data (the subject from case and camera names, the sender's display
name) pass ``header_text``: control characters (CR, LF and the rest), Unicode line and
paragraph separators and bidirectional overrides become spaces, so a name cannot add a header
or break the message. An email that still cannot be composed is a permanent failure with a
short reason (shown on the case page), not a retry loop.

Each email has a text and an HTML body and the sighting's snapshot attached. Its Message-ID
(``<oneeye-notification-{id}@host>``) and ``X-OneEye-Notification`` header are fixed per outbox
row, so a receiver can spot the one duplicate the at-least-once edge of the outbox allows.
"""

from __future__ import annotations

import html
import logging
import re
import smtplib
import ssl
import unicodedata
from email.errors import MessageError
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import urlsplit

from oneeye.config import NotifySettings, SmtpSettings
from oneeye.services.notify.base import (
    AddressError,
    AlertText,
    DeliveryError,
    Outgoing,
    Sender,
    SenderContext,
    describe,
    snapshot_link,
)
from oneeye.services.notify.links import LinkSigner
from oneeye.store.photos import PhotoStore, PhotoStoreError

logger = logging.getLogger(__name__)

IMAGE_TYPES = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "webp": "webp", "gif": "gif"}
MAX_HEADER_CHARS = 300
"""A subject longer than this is cut (a case name is at most 200 characters)."""
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_SPACES = re.compile(r"\s+")
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;.]+$")


def header_text(value: str, limit: int = MAX_HEADER_CHARS) -> str:
    """``value`` safe for one header line: every control character (C0, DEL, C1: CR and LF
    among them), Unicode line/paragraph separator and bidirectional override becomes a space,
    runs of spaces become one, and the result is cut to ``limit`` characters."""
    cleaned = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in _BIDI_CONTROLS else ch
        for ch in value
    )
    return _SPACES.sub(" ", cleaned).strip()[:limit]


def _has_control(value: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in value)


def closeness(text: AlertText) -> str:
    """How alike the face is, as the email says it: in words for a parent, the distance in
    brackets (``Match distance: ...`` for a row from before the words existed)."""
    if text.likeness:
        return f"Likeness: {text.likeness} (face distance {text.distance}, lower is closer)"
    return f"Match distance: {text.distance} (lower is closer)"


class EmailSender(Sender):
    """Sends alert emails through one SMTP server."""

    channel = "email"

    def __init__(
        self,
        settings: SmtpSettings,
        photos: PhotoStore,
        links: LinkSigner,
        *,
        link_lifetime: float = 86400.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        """Send through the server in ``settings``; attach snapshots from ``photos``.

        Args:
            settings: host, port, security (``starttls``, ``ssl``, ``none``), login, sender.
            photos: where the snapshots are.
            links: signs the snapshot link in the body (for mail clients that hide
                attachments).
            link_lifetime: seconds the link in the body stays valid.
            tls_context: the TLS context for STARTTLS/SSL; default: the system's trusted
                certificates with host name checking.
        """
        self.settings = settings
        self.photos = photos
        self.links = links
        self.link_lifetime = link_lifetime
        self.tls_context = tls_context if tls_context is not None else ssl.create_default_context()
        self._domain = urlsplit(links.public_url).hostname or "oneeye.local"

    @classmethod
    def from_context(cls, context: SenderContext) -> EmailSender:
        """The sender for ``context.settings.smtp``."""
        return cls(
            context.settings.smtp,
            context.photos,
            context.links,
            link_lifetime=context.link_lifetime,
        )

    @classmethod
    def unconfigured(cls, settings: NotifySettings) -> str | None:
        """Email needs an SMTP server (``ONEEYE_NOTIFY__SMTP__HOST``)."""
        if settings.smtp.host is None:
            return (
                "email is not set up on this server, so nobody can be told by email yet "
                "(an administrator sets ONEEYE_NOTIFY__SMTP__HOST)"
            )
        return None

    @classmethod
    def check_address(cls, address: str) -> str:
        """An email address like ``name@example.org`` (at most 254 characters)."""
        if len(address) > 254 or not _EMAIL.match(address):
            raise AddressError(
                f"an email subscription needs an address like name@example.org, got {address!r}"
            )
        return address

    @classmethod
    def mask(cls, address: str) -> str:
        """``a***@example.org``."""
        local, at, domain = address.rpartition("@")
        return f"{local[:1]}***@{domain}" if at else "***"

    def compose(self, message: Outgoing) -> EmailMessage:
        """The email for ``message``: subject, text and HTML bodies, snapshot attached."""
        text = describe(message.payload)
        snapshot_key = message.payload.snapshot_key
        link = snapshot_link(self.links, message.payload, self.link_lifetime)
        retro = text.kind == "retro"
        verb = "was seen earlier" if retro else "seen"
        if _has_control(message.address):
            # Addresses are checked when subscribed; a row from before that check is refused
            # rather than altered, since a changed address would be someone else's.
            raise ValueError("the recipient address contains control characters")
        email = EmailMessage()
        email["Subject"] = header_text(f"OneEye alert: {text.person} {verb} at {text.camera}")
        email["From"] = header_text(self.settings.sender)
        email["To"] = message.address
        email["Date"] = formatdate(localtime=False)
        email["Message-ID"] = f"<oneeye-notification-{message.id}@{self._domain}>"
        email["X-OneEye-Notification"] = str(message.id)
        email["X-OneEye-Case"] = message.case_id
        lines = [
            f"{text.person} {verb} at {text.camera} ({text.location}) at {text.time}.",
            "",
            f"Case: {text.person}",
        ]
        if text.description:
            lines.append(f"Description: {text.description}")
        lines += [
            f"Camera: {text.camera}",
            f"Location: {text.location}",
            f"Time: {text.time}",
            closeness(text),
        ]
        if retro:
            lines.append("Found by searching recent unknown faces when the case was filed.")
        if text.case_url:
            lines.append(f"Case page: {text.case_url}")
        if link:
            lines.append(f"Snapshot: {link}")
        email.set_content("\n".join(lines) + "\n")
        e = html.escape
        rows = [
            ("Case", text.person),
            ("Description", text.description),
            ("Camera", text.camera),
            ("Location", text.location),
            ("Time", text.time),
            ("Likeness", closeness(text).removeprefix("Likeness: "))
            if text.likeness
            else ("Match distance", f"{text.distance} (lower is closer)"),
        ]
        table = "".join(
            f"<tr><th align='left'>{e(name)}</th><td>{e(value)}</td></tr>"
            for name, value in rows
            if value
        )
        extra = ""
        if retro:
            extra += "<p>Found by searching recent unknown faces when the case was filed.</p>"
        if text.case_url:
            extra += f"<p><a href='{e(text.case_url)}'>Open the case</a></p>"
        if link:
            extra += f"<p><a href='{e(link)}'>View the snapshot</a></p>"
        email.add_alternative(
            "<!doctype html><html><body>"
            f"<h2>{e(text.person)} {e(verb)} at {e(text.camera)}</h2>"
            f"<p>{e(text.location)}, {e(text.time)}</p>"
            f"<table>{table}</table>{extra}</body></html>",
            subtype="html",
        )
        if isinstance(snapshot_key, str):
            self._attach(email, snapshot_key, message)
        return email

    def _attach(self, email: EmailMessage, key: str, message: Outgoing) -> None:
        suffix = key.rsplit(".", 1)[-1].lower()
        try:
            data = self.photos.get(key)
        except PhotoStoreError as exc:
            logger.warning(
                "notification %d: snapshot %s cannot be attached (%s)",
                message.id,
                key,
                type(exc).__name__,
            )
            return
        email.add_attachment(
            data,
            maintype="image",
            subtype=IMAGE_TYPES.get(suffix, "jpeg"),
            filename=f"snapshot-{message.sighting_id}.{suffix}",
        )

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        assert s.host is not None
        if s.security == "ssl":
            return smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self.tls_context)
        client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        if s.security == "starttls":
            try:
                client.starttls(context=self.tls_context)
            except BaseException:
                client.close()
                raise
        return client

    def send(self, message: Outgoing) -> None:
        """Send the alert email; return once the SMTP server has accepted it."""
        s = self.settings
        if s.host is None:
            raise DeliveryError("email is not configured (set ONEEYE_NOTIFY__SMTP__HOST)")
        try:
            email = self.compose(message)
            # Serialising is where the email package finds most header problems; doing it
            # here keeps them apart from the server's answers.
            email.as_bytes()
        except (ValueError, TypeError, UnicodeError, MessageError) as exc:
            reason = f"{type(exc).__name__}: {header_text(str(exc), 120)}"
            raise DeliveryError(
                f"the email cannot be composed ({reason})", permanent=True
            ) from None
        where = f"{s.host}:{s.port}"
        try:
            with self._connect() as client:
                if s.username:
                    password = s.password.get_secret_value() if s.password else ""
                    client.login(s.username, password)
                client.send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(
                f"SMTP server {where} refused the recipient ({', '.join(map(str, codes))})",
                permanent=all(500 <= code < 600 for code in codes),
            ) from None
        except smtplib.SMTPResponseException as exc:
            # The code only: the server's text is remote content and may echo the address.
            raise DeliveryError(
                f"SMTP server {where} answered {exc.smtp_code}",
                provider_down=exc.smtp_code == 421,  # "service not available"
            ) from None
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"SMTP server {where} ({s.security}) failed ({_local_reason(exc)})",
                provider_down=True,
            ) from None
        logger.info(
            "notification %d: email to %s accepted by %s",
            message.id,
            self.mask(message.address),
            where,
        )


def _local_reason(exc: BaseException) -> str:
    """A short reason for a failure on this side of the connection (refused, timed out, a
    certificate that does not verify): the exception's type and its reason code, never a
    text the server sent."""
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None)
    if isinstance(exc, smtplib.SMTPException) and not reason:
        reason = str(exc)  # smtplib's own words ("Connection unexpectedly closed")
    name = type(exc).__name__
    return f"{name}: {header_text(str(reason), 120)}" if reason else name
