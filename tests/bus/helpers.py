"""Helpers for the tests that use MQTT: an inbox that keeps what a handler is given, and a
Mosquitto process of a test's own."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ConfigDict

from oneeye.bus import Message
from oneeye.bus.messages import BusPayload, SightingPayload
from tests.conftest import free_port, service_unavailable


class Inbox:
    """A handler that keeps what it is given, thread-safely."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._lock = threading.Lock()

    def __call__(self, message: Message) -> None:
        with self._lock:
            self.messages.append(message)

    def payloads(self, key: str = "n") -> list[object]:
        with self._lock:
            return [m.payload.get(key) for m in self.messages]

    def bodies(self) -> list[dict[str, Any]]:
        """The whole payloads, in arrival order."""
        with self._lock:
            return [m.payload for m in self.messages]

    def __len__(self) -> int:
        with self._lock:
            return len(self.messages)


def drained(publish: Callable[[Note], None], inbox: Inbox, timeout: float = 30.0) -> list[Message]:
    """What ``inbox`` received before a marker published now: proof that nothing else is on
    its way, instead of a sleep. A broker delivers a subscription's retained and queued
    messages before anything published after it, so once the marker is in, whatever was
    going to arrive has. The marker is published again every half second until it arrives
    (the subscription may still be settling).

    Args:
        publish: publishes the given note on a topic ``inbox`` is subscribed to.
        inbox: the handler under test.
        timeout: how long to wait for the marker.

    Returns:
        The messages received before the marker (the markers are left out).

    Raises:
        AssertionError: the marker did not arrive in time.
    """
    marker = uuid.uuid4().hex
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        publish(Note.model_validate({"marker": marker}))
        settle = time.monotonic() + 0.5
        while time.monotonic() < settle:
            with inbox._lock:
                seen = [m.payload.get("marker") == marker for m in inbox.messages]
            if any(seen):
                first = seen.index(True)
                with inbox._lock:
                    return [m for m in inbox.messages[:first] if "marker" not in m.payload]
            time.sleep(0.01)
    raise AssertionError(f"the marker did not arrive in {timeout} s")


class PrivateBroker:
    """A Mosquitto process of this test's own on a free loopback port."""

    def __init__(self, folder: Path, extra: str = "", tls: bool = False) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            service_unavailable("the mosquitto program", "not installed")
        self.folder = folder
        self.binary = binary
        self.port = free_port()
        (folder / "data").mkdir(exist_ok=True)
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            textwrap.dedent(
                f"""\
                user {getpass.getuser()}
                listener {self.port} 127.0.0.1
                persistence true
                persistence_location {folder / "data"}/
                log_dest stderr
                """
            )
            + ("" if "allow_anonymous" in extra else "allow_anonymous true\n")
            + textwrap.dedent(extra)
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.scheme = "mqtts" if tls else "mqtt"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / "broker.log").open("ab"),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        log = (self.folder / "broker.log").read_text(errors="replace")
        raise AssertionError(f"the test broker did not start:\n{log}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # mosquitto saves its sessions on SIGTERM
            self.process.wait(10)
        self.process = None

    def url(self, credentials: str = "") -> str:
        return f"{self.scheme}://{credentials}127.0.0.1:{self.port}"


class Note(BusPayload):
    """A payload of any fields, for tests of the transport (any topic, anything a producer
    could put on the wire): what arrives is up to the consumer's model to judge."""

    model_config = ConfigDict(extra="allow", frozen=True)


def sighting(**fields: Any) -> SightingPayload:
    """A valid sighting payload seen now (unknown face, no embedding), with ``fields`` set."""
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "event": "sighting",
        "camera": "cam",
        "track": 1,
        "box": (10, 60, 60, 10),
        "seen_at": datetime.now(UTC),
    }
    values.update(fields)
    return SightingPayload.model_validate(values)


DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
"""The broker configuration the repository ships (``deploy/mosquitto/``)."""


class ShippedBroker(PrivateBroker):
    """Mosquitto run with the shipped ``mosquitto.conf`` and ``acl.conf``, on a port and in a
    folder of the test's own, with a password file made by ``mosquitto_passwd`` for ``users``
    (name -> password). Only the listener's port and the files' paths are changed (each must
    be in the shipped file exactly once), and the process runs as the test's user."""

    def __init__(self, folder: Path, users: dict[str, str]) -> None:
        super().__init__(folder)
        tool = shutil.which("mosquitto_passwd")
        if tool is None:
            service_unavailable("the mosquitto_passwd program", "not installed")
            raise AssertionError  # not reached: skipped or failed
        passwords = folder / "oneeye.passwd"
        passwords.write_text("")
        for user, password in users.items():
            subprocess.run([tool, "-b", str(passwords), user, password], check=True)
        acl = folder / "acl.conf"
        shutil.copyfile(DEPLOY / "acl.conf", acl)
        lines = (DEPLOY / "mosquitto.conf").read_text().splitlines()
        changes = {
            "listener 1883": f"listener {self.port} 127.0.0.1",
            "password_file /etc/mosquitto/oneeye.passwd": f"password_file {passwords}",
            "acl_file /etc/mosquitto/acl.conf": f"acl_file {acl}",
            "persistence_location /var/lib/mosquitto/": f"persistence_location {folder}/data/",
        }
        for shipped in changes:
            assert lines.count(shipped) == 1, f"{shipped!r} is not in the shipped mosquitto.conf"
        text = "\n".join(changes.get(line, line) for line in lines)
        self.config.write_text(f"user {getpass.getuser()}\n{text}\n")
