"""Real receivers for the notification tests: an aiosmtpd SMTP server (plain, STARTTLS or
implicit TLS, with AUTH), a local HTTP server that records SMS and webhook posts, a
self-signed certificate, and helpers that write outbox rows."""

from __future__ import annotations

import base64
import email
import email.policy
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from pydantic import SecretStr

from oneeye.config import NotifySettings, SmsSettings, SmtpSettings
from oneeye.services.notify import NotifyService
from oneeye.services.outbound import OutboundGuard
from oneeye.store.db import Database
from oneeye.store.models import Notification, Subscription, new_id, utcnow
from oneeye.store.photos import LocalPhotoStore

SECRET_KEY = b"0123456789abcdef0123456789abcdef"
PUBLIC_URL = "http://oneeye.test:8080"
SMTP_USER = "alerts"
SMTP_PASSWORD = "s3cret-pass"
LOOPBACK_ALLOWED = OutboundGuard(["127.0.0.1"])
"""The receivers listen on loopback, which the outbound guard refuses unless told otherwise."""


def deliver_until(service: NotifyService, count: int, timeout: float = 10.0) -> int:
    """Call ``deliver_due`` until ``count`` rows went out (retries wait their backoff) or
    ``timeout`` passes; returns how many went out."""
    deadline = time.monotonic() + timeout
    delivered = service.deliver_due()
    while delivered < count and time.monotonic() < deadline:
        time.sleep(0.01)
        delivered += service.deliver_due()
    return delivered


# SMTP ---------------------------------------------------------------------------------------


class MailHandler:
    """Keeps every message the SMTP server accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse: set[str] = set()
        self.lock = threading.Lock()

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
            self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def per_notification(self) -> Counter[int]:
        """How many emails arrived for each outbox row id."""
        with self.lock:
            return Counter(int(str(m["X-OneEye-Notification"])) for m in self.messages)


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    """Accept only SMTP_USER / SMTP_PASSWORD."""
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)  # unhandled: aiosmtpd answers 535 itself


@dataclass
class MailServer:
    """An aiosmtpd server on a fixed port that can be stopped and started again (outages)."""

    port: int
    handler: MailHandler = field(default_factory=MailHandler)
    kwargs: dict[str, Any] = field(default_factory=dict)
    controller: Controller | None = None
    mechanisms: list[str] = field(default_factory=list)

    def start(self) -> None:
        """Listen (again) on ``port``."""
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, **self.kwargs
        )
        self.controller.start()

    def stop(self) -> None:
        """Stop listening (an outage)."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1 and its key."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """A server-side TLS context with this certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts exactly this certificate (host names checked)."""
        return ssl.create_default_context(cafile=str(self.cert))


# HTTP ---------------------------------------------------------------------------------------


@dataclass
class Received:
    """One request the HTTP receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


class HttpReceiver:
    """A real HTTP server on 127.0.0.1 that records POSTs and answers with queued statuses
    (then 200)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    if status < 300:
                        receiver.requests.append(
                            Received(
                                self.path, {k.lower(): v for k, v in self.headers.items()}, body
                            )
                        )
                reply = b'{"sid":"SM123"}' if status < 300 else b'{"message":"nope"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop the server."""
        self.server.shutdown()
        self.server.server_close()


def basic_auth(header: str) -> tuple[str, str]:
    """The user and password of an ``Authorization: Basic`` header."""
    scheme, _, value = header.partition(" ")
    assert scheme == "Basic"
    user, _, password = base64.b64decode(value).decode().partition(":")
    return user, password


# Database and outbox rows -------------------------------------------------------------------


def settings_for(
    *,
    smtp_port: int | None = None,
    sms_url: str | None = None,
    **overrides: Any,
) -> NotifySettings:
    """Notification settings with fast retries, pointing at the test receivers."""
    values: dict[str, Any] = {
        "smtp": SmtpSettings(
            host="127.0.0.1" if smtp_port else None,
            port=smtp_port or 25,
            security="none",
            sender="OneEye <alerts@oneeye.test>",
            timeout=5.0,
        ),
        "sms": SmsSettings(
            url=sms_url,
            username="AC123",
            password=SecretStr("tw-token"),
            sender="+15550001111",
            timeout=5.0,
        ),
        "webhook_timeout": 5.0,
        "max_attempts": 50,
        "backoff_initial": 0.05,
        "backoff_max": 0.2,
    }
    values.update(overrides)
    return NotifySettings(**values)


def make_service(
    db: Database, photos: LocalPhotoStore, settings: NotifySettings, **kwargs: Any
) -> NotifyService:
    """A notifier over the test database with the test key and public URL."""
    kwargs.setdefault("seed", 7)
    kwargs.setdefault("poll_interval", 0.2)
    kwargs.setdefault("outbound", LOOPBACK_ALLOWED)
    return NotifyService(db, photos, settings, PUBLIC_URL, SECRET_KEY, **kwargs)


def payload(snapshot_key: str | None = None, **overrides: Any) -> dict[str, Any]:
    """An alert payload in the shape the alert service writes."""
    data: dict[str, Any] = {
        "case_id": "c" * 32,
        "case_name": "Ana Example",
        "description": "8 years old, red coat",
        "person_id": "p" * 32,
        "camera_id": "lobby",
        "camera_name": "Lobby",
        "location": "Main St branch",
        "seen_at": "2026-11-26T08:30:00+00:00",
        "distance": 0.412,
        "likeness": "a possible likeness",
        "sighting_id": new_id(),
        "snapshot_key": snapshot_key,
        "kind": "live",
        "case_url": PUBLIC_URL + "/cases/" + "c" * 32,
    }
    data.update(overrides)
    return data


def add_subscription(db: Database, channel: str, address: str, secret: str | None = None) -> int:
    """An all-cases subscription; returns its id."""
    with db.session() as session:
        row = Subscription(case_id=None, channel=channel, address=address, secret=secret)
        session.add(row)
        session.flush()
        return row.id


def add_notifications(
    db: Database,
    subscription_id: int,
    channel: str,
    address: str,
    count: int = 1,
    snapshot_key: str | None = None,
) -> list[int]:
    """``count`` pending outbox rows (one sighting each); returns their ids."""
    ids = []
    with db.session() as session:
        for _ in range(count):
            data = payload(snapshot_key)
            row = Notification(
                case_id=data["case_id"],
                sighting_id=data["sighting_id"],
                subscription_id=subscription_id,
                channel=channel,
                address=address,
                payload=data,
                status="pending",
                next_attempt_at=utcnow(),
            )
            session.add(row)
            session.flush()
            ids.append(row.id)
    return ids


def rows(db: Database) -> dict[int, Notification]:
    """Every outbox row by id."""
    with db.session() as session:
        return {row.id: row for row in session.query(Notification).all()}
