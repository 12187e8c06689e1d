"""``oneeye serve`` as a real process on a real port (the first admin's one-time password,
logging in, restarting, stopping cleanly, bad settings) and ``oneeye users``."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets.exceptions
import websockets.sync.client
from click.testing import CliRunner
from websockets.typing import Subprotocol

from oneeye.cli import cli, main
from oneeye.config import ServeSettings
from oneeye.services.auth import AuthError, AuthService
from oneeye.services.notify.links import LinkSigner, load_secret_key
from oneeye.store.db import Database
from tests.conftest import free_port

SERVE = [sys.executable, "-m", "oneeye.cli", "serve"]
START_TIMEOUT = 300.0  # waits for the server to answer; a busy CI machine can take minutes
PASSWORD = "correct horse battery"
ADMIN_PASSWORD = "the admin's own passphrase"


def clean_env() -> dict[str, str]:
    """This environment without any ONEEYE_ setting, so only the test's options count."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ONEEYE_")}


@dataclass
class Served:
    """A running ``oneeye serve`` and where its output goes."""

    process: subprocess.Popen[bytes]
    url: str
    stdout: Path
    stderr: Path

    def output(self) -> str:
        return self.stdout.read_text()

    def stop(self, how: signal.Signals = signal.SIGINT) -> int:
        """Ctrl-C (or another signal), as an operator or a service manager would; the exit
        code."""
        if self.process.poll() is None:
            self.process.send_signal(how)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # A server that ignores Ctrl-C is a bug to see, not to kill quietly.
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"oneeye serve did not stop within 30 s of {how.name}:\n"
                + self.stderr.read_text(errors="replace")[-4000:]
            ) from None


def serve(data_dir: Path, logs: Path, name: str) -> Served:
    """Start ``oneeye serve`` and wait until it answers."""
    port = free_port()
    stdout, stderr = logs / f"{name}.out", logs / f"{name}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [*SERVE, "--port", str(port), "--data-dir", str(data_dir)],
            stdout=out,
            stderr=err,
            env=clean_env(),
            cwd=logs,
        )
    served = Served(process, f"http://127.0.0.1:{port}", stdout, stderr)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"oneeye serve exited {process.returncode}: {stderr.read_text()}")
        try:
            if httpx.get(f"{served.url}/openapi.json", timeout=2).status_code == 200:
                return served
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    served.stop()
    raise AssertionError(f"oneeye serve did not answer in {START_TIMEOUT} s: {stderr.read_text()}")


def one_time_credential(output: str) -> tuple[str, str] | None:
    name = re.search(r"^\s*username: (\S+)$", output, re.MULTILINE)
    password = re.search(r"^\s*password: (\S+)$", output, re.MULTILINE)
    if name is None or password is None:
        return None
    return name.group(1), password.group(1)


@contextmanager
def log_in(url: str, username: str, password: str) -> Iterator[httpx.Client]:
    """An HTTP client logged in to the server at ``url``."""
    with httpx.Client(base_url=url, timeout=10) as client:
        response = client.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield client


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    folder = tmp_path / "logs"
    folder.mkdir()
    return folder


def test_serve_prints_a_one_time_admin_password_once_it_survives_a_restart_and_stops_cleanly(
    tmp_path: Path, logs: Path
) -> None:
    data = tmp_path / "data"
    first = serve(data, logs, "first")
    try:
        credential = one_time_credential(first.output())
        assert credential is not None, first.output()
        username, password = credential
        assert username == "admin"
        assert len(password) >= 16
        assert "one-time password" in first.output()
        assert password not in first.stderr.read_text()  # logs never carry it
        docs = httpx.get(f"{first.url}/docs", timeout=10)
        assert docs.status_code == 200
        assert "swagger" in docs.text.lower()
        with log_in(first.url, username, password) as admin:
            me = admin.get("/api/v1/auth/me").json()
            assert (me["username"], me["role"]) == ("admin", "admin")
            # One-time for real: nothing but changing it works until it is changed.
            assert me["must_change_password"] is True
            assert admin.get("/api/v1/users").status_code == 403
            changed = admin.post(
                "/api/v1/auth/password",
                json={"current_password": password, "new_password": ADMIN_PASSWORD},
            )
            assert changed.status_code == 204, changed.text
            made = admin.post(
                "/api/v1/users",
                json={"username": "tess", "password": PASSWORD, "role": "teller"},
            )
            assert made.status_code == 201, made.text
        assert httpx.get(f"{first.url}/api/v1/users", timeout=10).status_code == 401
    finally:
        assert first.stop() == 0, first.stderr.read_text()
    assert (data / "oneeye.db").is_file()

    second = serve(data, logs, "second")
    try:
        assert one_time_credential(second.output()) is None
        assert "password" not in second.output()
        with httpx.Client(base_url=second.url, timeout=10) as stale:
            once = {"username": username, "password": password}
            assert stale.post("/api/v1/auth/login", json=once).status_code == 401
        with log_in(second.url, username, ADMIN_PASSWORD) as admin:
            users = {u["username"]: u["role"] for u in admin.get("/api/v1/users").json()}
            assert users == {"admin": "admin", "tess": "teller"}
        with log_in(second.url, "tess", PASSWORD) as teller:
            assert teller.get("/api/v1/auth/me").json()["role"] == "teller"
    finally:
        assert second.stop(signal.SIGTERM) == 0, second.stderr.read_text()
    for served in (first, second):
        assert "Traceback" not in served.stderr.read_text()
        assert "Finished server process" in served.stderr.read_text()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ONEEYE_DATABASE_URL": "not a url"}, "not a database URL"),
        ({"ONEEYE_DATABASE_URL": "nosuchdb://x/y"}, "cannot start"),
        ({"ONEEYE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"}, "cannot migrate"),
        ({"ONEEYE_SERVER__PORT": "eighty"}, "ONEEYE_SERVER__PORT"),
        ({"ONEEYE_BUS": "carrier-pigeon"}, "unknown bus 'carrier-pigeon'"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_code_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["serve", "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("oneeye: error: ")
    assert message in err
    assert err.count("\n") == 1


# oneeye users ---------------------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    """``oneeye users`` works on SQLite (the data folder's) and on PostgreSQL (the URL)."""
    monkeypatch.delenv("ONEEYE_DATABASE_URL", raising=False)
    if not database_url.startswith("sqlite"):
        monkeypatch.setenv("ONEEYE_DATABASE_URL", database_url)
    return tmp_path / "data"


def auth_of(data_dir: Path) -> AuthService:
    url = os.environ.get("ONEEYE_DATABASE_URL") or f"sqlite:///{data_dir / 'oneeye.db'}"
    return AuthService(Database(url))


def run_users(data_dir: Path, *args: str, stdin: str = "", monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["users", "--data-dir", str(data_dir), *args])


def test_users_add_list_reset_and_api_key(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run_users(
            data_dir,
            "add",
            "tess",
            "--role",
            "teller",
            "--password-stdin",
            stdin=f"{PASSWORD}\n",
            monkeypatch=monkeypatch,
        )
        == 0
    )
    assert "added teller tess" in capsys.readouterr().out
    auth = auth_of(data_dir)
    assert auth.verify_password("tess", PASSWORD).role == "teller"
    assert auth.audit_entries(action="user.create")[0].actor == "system:cli"

    assert run_users(data_dir, "list", monkeypatch=monkeypatch) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:3] for line in listed] == [["tess", "teller", "active"]]

    session = auth.login("tess", PASSWORD)
    assert (
        run_users(
            data_dir,
            "reset-password",
            "tess",
            "--password-stdin",
            stdin="a different password\n",
            monkeypatch=monkeypatch,
        )
        == 0
    )
    assert "sessions have ended" in capsys.readouterr().out
    assert auth.verify_password("tess", "a different password").name == "tess"
    with pytest.raises(AuthError, match="session has ended"):
        auth.session_principal(session.token)


def test_users_api_key_prints_the_key_once(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_users(data_dir, "api-key", "edge-1", "--role", "reporter", monkeypatch=monkeypatch)
    assert code == 0
    captured = capsys.readouterr()
    key = captured.out.strip()
    assert key.startswith("oek_")
    assert "shown only this once" in captured.err
    principal = auth_of(data_dir).key_principal(key)
    assert (principal.name, principal.role) == ("edge-1", "reporter")


def test_an_edge_s_api_key_names_its_edge(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("api-key", "branch 12", "--role", "edge", "--edge", "branch-12")
    assert run_users(data_dir, *args, monkeypatch=monkeypatch) == 0
    principal = auth_of(data_dir).key_principal(capsys.readouterr().out.strip())
    assert (principal.role, principal.edge) == ("edge", "branch-12")
    assert run_users(data_dir, "api-key", "x", "--role", "edge", monkeypatch=monkeypatch) == 1
    assert "needs the edge's id" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (("add", "tess", "--role", "teller", "--password-stdin"), "short\n", 1, "at least 10"),
        (("add", "tess", "--role", "king", "--password-stdin"), f"{PASSWORD}\n", 2, "king"),
        (("add", "tess", "--role", "teller", "--password-stdin"), "", 2, "no password"),
        (("reset-password", "nobody", "--password-stdin"), f"{PASSWORD}\n", 1, "no user"),
    ],
)
def test_users_errors_are_one_line(
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    stdin: str,
    code: int,
    message: str,
) -> None:
    assert run_users(data_dir, *args, stdin=stdin, monkeypatch=monkeypatch) == code
    err = capsys.readouterr().err
    assert err.startswith("oneeye: error: ")
    assert message in err


def test_users_add_asks_for_the_password_twice(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = CliRunner().invoke(
        cli,
        ["users", "--data-dir", str(data), "add", "vic", "--role", "viewer"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
        env={"ONEEYE_DATABASE_URL": ""},
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert auth_of(data).verify_password("vic", PASSWORD).role == "viewer"


def test_a_duplicate_user_is_refused(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("add", "tess", "--role", "teller", "--password-stdin")
    assert run_users(data_dir, *args, stdin=f"{PASSWORD}\n", monkeypatch=monkeypatch) == 0
    assert run_users(data_dir, *args, stdin=f"{PASSWORD}\n", monkeypatch=monkeypatch) == 1
    assert "already exists" in capsys.readouterr().err


# Secrets in logs and files (issue 11, finding 9) ------------------------------------------------


def mode_of(path: Path) -> int:
    """The permission bits of ``path``."""
    return path.stat().st_mode & 0o777


def test_no_key_or_link_signature_reaches_the_log_and_data_files_are_owner_only(
    tmp_path: Path, logs: Path
) -> None:
    data = tmp_path / "data"
    served = serve(data, logs, "secrets")
    try:
        key = auth_of(data).create_api_key("wall display", "teller")[1]
        ws_url = served.url.replace("http://", "ws://") + "/ws?since=0"
        # An old client's key in the URL: refused, and the URL is logged without it.
        with websockets.sync.client.connect(f"{ws_url}&api_key={key}") as old:
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                old.recv(timeout=10)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4401
        # The key as a subprotocol works; the server answers "oneeye", not the key.
        with websockets.sync.client.connect(
            ws_url,
            subprotocols=[Subprotocol("oneeye"), Subprotocol(f"oneeye.key.{key}")],
        ) as socket:
            assert socket.subprotocol == "oneeye"
        # A signed snapshot link's signature is a credential too.
        settings = ServeSettings(data_dir=data)
        link = LinkSigner(load_secret_key(settings), served.url).sign("snapshots/x.jpg", 600)
        answer = httpx.get(
            f"{served.url}/api/v1/links/snapshot",
            params={"key": link.key, "exp": link.exp, "sig": link.sig},
            timeout=10,
        )
        assert answer.status_code == 404  # a valid link to a snapshot that is not there
        assert mode_of(data) == 0o700
        for name in ("oneeye.db", "oneeye.db-wal", "oneeye.db-shm", "secret.key"):
            assert mode_of(data / name) == 0o600, name
        assert mode_of(data / "photos") == 0o700
    finally:
        assert served.stop() == 0, served.stderr.read_text()
    log = served.output() + served.stderr.read_text()
    assert '"WebSocket /ws?[redacted]"' in log  # the lines are there, without their query
    assert "/api/v1/links/snapshot?[redacted]" in log
    assert key not in log
    assert key.split("_", 2)[2] not in log  # not even the secret part of the key
    assert link.sig not in log


def test_users_add_takes_the_coordinator_role(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("add", "cora", "--role", "coordinator", "--password-stdin")
    assert run_users(data_dir, *args, stdin=f"{PASSWORD}\n", monkeypatch=monkeypatch) == 0
    assert "added coordinator cora" in capsys.readouterr().out
    assert auth_of(data_dir).verify_password("cora", PASSWORD).role == "coordinator"
