"""``deploy/mosquitto/make-users.sh`` run as root, as the README says to run it, leaves a
password file that a real Mosquitto running as its own ``mosquitto`` user can read (issue 11,
#68: the file was root's, mode 0600, and Mosquitto stopped with "Unable to open pwfile")."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from oneeye.bus.mqtt import MqttBus
from tests.bus.helpers import DEPLOY, ShippedBroker

pytestmark = pytest.mark.mqtt

BROKER_USER = "mosquitto"


@pytest.fixture
def world_reachable() -> Iterator[Path]:
    """A folder the ``mosquitto`` user can reach (pytest's own tmp folders are root's 0700)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the script's chown to the broker's user is what is tested")
    try:
        pwd.getpwnam(BROKER_USER)
    except KeyError:
        pytest.skip(f"no {BROKER_USER!r} user on this machine (Debian's mosquitto package adds it)")
    folder = Path(tempfile.mkdtemp(prefix="oneeye-pwfile-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_password_file_made_as_root_is_readable_by_mosquitto(world_reachable: Path) -> None:
    folder = world_reachable / "broker"
    folder.mkdir()
    broker = ShippedBroker(folder, {})  # an empty password file, made by root as an admin would
    passwords = folder / "oneeye.passwd"
    env = {**os.environ, "ONEEYE_BROKER_PASSWORD": "edge a pass"}
    script = str(DEPLOY / "make-users.sh")
    subprocess.run(["sh", script, str(passwords), "edge", "edge-a"], env=env, check=True)
    owner = pwd.getpwnam(BROKER_USER)
    info = passwords.stat()
    assert info.st_uid == owner.pw_uid
    assert stat.S_IMODE(info.st_mode) == 0o600
    subprocess.run(["sh", script, str(passwords), "edge", "edge-b"], env=env, check=True)
    passwords.chmod(0o644)  # as if edited by hand since; a removal puts the mode back
    subprocess.run(["sh", script, str(passwords), "remove", "edge-b"], check=True)
    info = passwords.stat()
    assert info.st_uid == owner.pw_uid
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert "edge-b" not in passwords.read_text()

    # The broker as deployed: started by root, running as the mosquitto user.
    config = broker.config.read_text().splitlines()
    assert config[0].startswith("user ")
    broker.config.write_text("\n".join([f"user {BROKER_USER}", *config[1:]]) + "\n")
    shutil.chown(folder / "data", BROKER_USER)
    broker.start()
    try:
        bus = MqttBus(
            broker.url(),
            username="edge-a",
            password="edge a pass",
            client_id="test-edge-a",
            connect_timeout=5,
        )
        bus.start()
        try:
            assert bus.connected
        finally:
            bus.stop()
    finally:
        broker.stop()
