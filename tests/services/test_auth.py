"""AuthService on a real database (SQLite and PostgreSQL): passwords, sessions, API keys,
the last admin, the first admin, login throttling and the audit trail of every change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from oneeye.services.auth import (
    AuthError,
    AuthService,
    LoginThrottle,
    ThrottledError,
    UserError,
    UserExistsError,
    UserNotFoundError,
)
from oneeye.store.db import Database
from oneeye.store.models import LoginSession, User, utcnow

PASSWORD = "correct horse battery"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def auth(db: Database) -> AuthService:
    return AuthService(db, session_hours=1.0)


def test_passwords_are_hashed_with_argon2_and_verified(auth: AuthService) -> None:
    auth.create_user("alice", PASSWORD, "teller")
    stored = auth.user_named("alice").password_hash
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    principal = auth.verify_password("alice", PASSWORD)
    assert (principal.kind, principal.name, principal.role) == ("user", "alice", "teller")
    assert principal.actor == "user:alice"


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong password!"), ("nobody", PASSWORD), ("alice", "")],
)
def test_a_wrong_name_or_password_is_one_vague_error(
    auth: AuthService, username: str, password: str
) -> None:
    auth.create_user("alice", PASSWORD, "teller")
    with pytest.raises(AuthError, match="wrong username or password"):
        auth.login(username, password)


@pytest.mark.parametrize(
    ("username", "password", "role", "error"),
    [
        ("a", PASSWORD, "viewer", "a username is 2-64"),
        ("bad name", PASSWORD, "viewer", "a username is 2-64"),
        ("bob", "short", "viewer", "at least 10 characters"),
        ("bob", PASSWORD, "superuser", "unknown role 'superuser'"),
    ],
)
def test_create_user_refuses_bad_input(
    auth: AuthService, username: str, password: str, role: str, error: str
) -> None:
    with pytest.raises(UserError, match=error):
        auth.create_user(username, password, role)


def test_a_taken_name_is_refused(auth: AuthService) -> None:
    auth.create_user("alice", PASSWORD, "viewer")
    with pytest.raises(UserExistsError, match="already exists"):
        auth.create_user("alice", PASSWORD, "admin")


def test_an_inactive_user_cannot_log_in_and_loses_their_sessions(auth: AuthService) -> None:
    user = auth.create_user("alice", PASSWORD, "viewer")
    session = auth.login("alice", PASSWORD)
    assert auth.session_principal(session.token).name == "alice"
    auth.update_user(user.id, active=False, actor="user:root")
    with pytest.raises(AuthError):
        auth.session_principal(session.token)
    with pytest.raises(AuthError, match="wrong username or password"):
        auth.login("alice", PASSWORD)
    auth.update_user(user.id, active=True)
    assert auth.login("alice", PASSWORD).principal.name == "alice"


def test_a_session_ends_when_it_expires_or_logs_out(auth: AuthService, db: Database) -> None:
    auth.create_user("alice", PASSWORD, "viewer")
    first = auth.login("alice", PASSWORD)
    second = auth.login("alice", PASSWORD)
    assert first.token != second.token
    assert first.csrf_token != second.csrf_token
    assert auth.session_principal(first.token).csrf_token == first.csrf_token
    assert first.expires_at - utcnow() <= timedelta(hours=1)
    with db.session() as s:
        s.execute(update(LoginSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    with pytest.raises(AuthError, match="session has ended"):
        auth.session_principal(first.token)
    third = auth.login("alice", PASSWORD)
    auth.logout(third.token)
    with pytest.raises(AuthError):
        auth.session_principal(third.token)
    auth.logout(third.token)  # twice is harmless


def test_only_a_hash_of_the_session_token_is_stored(auth: AuthService, db: Database) -> None:
    auth.create_user("alice", PASSWORD, "viewer")
    session = auth.login("alice", PASSWORD)
    with db.session() as s:
        stored = list(s.scalars(select(LoginSession.token_hash)))
    assert stored
    assert session.token not in stored


def test_a_new_password_ends_sessions_and_replaces_the_old(auth: AuthService) -> None:
    auth.create_user("alice", PASSWORD, "viewer")
    session = auth.login("alice", PASSWORD)
    auth.set_password("alice", "another good password", actor="user:root")
    with pytest.raises(AuthError):
        auth.session_principal(session.token)
    with pytest.raises(AuthError):
        auth.verify_password("alice", PASSWORD)
    assert auth.verify_password("alice", "another good password").name == "alice"
    entry = auth.audit_entries(action="user.update")[0]
    assert (entry.actor, entry.subject, entry.detail) == (
        "user:root",
        "alice",
        {"password": "reset"},
    )
    assert PASSWORD not in str(entry.detail)


def test_api_keys_work_until_revoked(auth: AuthService) -> None:
    row, key = auth.create_api_key("edge-1", "reporter", actor="user:root")
    assert key.startswith("oek_")
    assert key not in {k.key_hash for k in auth.api_keys()}
    principal = auth.key_principal(key)
    assert (principal.kind, principal.name, principal.role) == ("key", "edge-1", "reporter")
    assert principal.csrf_token is None
    auth.revoke_api_key(row.id, actor="user:root")
    with pytest.raises(AuthError, match="not valid"):
        auth.key_principal(key)
    with pytest.raises(AuthError):
        auth.key_principal(key + "x")
    with pytest.raises(UserNotFoundError):
        auth.revoke_api_key(row.id + 100)
    actions = [e.action for e in auth.audit_entries(action="api_key.")]
    assert actions == ["api_key.revoke", "api_key.create"]


def test_the_last_active_admin_cannot_be_demoted_deactivated_or_deleted(
    auth: AuthService,
) -> None:
    root = auth.create_user("root", PASSWORD, "admin")
    for change in ({"role": "teller"}, {"active": False}):
        with pytest.raises(UserError, match="last active admin"):
            auth.update_user(root.id, **change)
    with pytest.raises(UserError, match="last active admin"):
        auth.delete_user(root.id)
    second = auth.create_user("second", PASSWORD, "admin")
    auth.update_user(root.id, role="viewer")
    with pytest.raises(UserError, match="last active admin"):
        auth.delete_user(second.id)
    auth.delete_user(root.id)
    assert [u.username for u in auth.users()] == ["second"]
    with pytest.raises(UserNotFoundError):
        auth.update_user(root.id, role="admin")


def test_ensure_admin_creates_one_admin_once_with_a_random_password(auth: AuthService) -> None:
    first = auth.ensure_admin()
    assert first is not None
    name, password = first.split(":", 1)
    assert name == "admin"
    assert len(password) >= 16
    assert auth.verify_password(name, password).role == "admin"
    assert auth.ensure_admin() is None
    assert [u.username for u in auth.users()] == ["admin"]
    other = AuthService(auth.db).ensure_admin()
    assert other is None
    assert auth.audit_entries(action="user.first_admin")[0].subject == "admin"


def test_ensure_admin_gives_different_passwords_on_different_databases(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    passwords = set()
    for _ in range(2):
        db = Database(f"sqlite:///{tmp_path_factory.mktemp('db') / 'oneeye.db'}")
        db.migrate()
        credential = AuthService(db).ensure_admin()
        assert credential is not None
        passwords.add(credential.split(":", 1)[1])
        db.close()
    assert len(passwords) == 2


def test_ensure_admin_picks_another_name_when_admin_is_a_viewer(auth: AuthService) -> None:
    auth.create_user("admin", PASSWORD, "viewer")
    credential = auth.ensure_admin()
    assert credential is not None
    assert credential.startswith("admin-")
    assert auth.user_named("admin").role == "viewer"


def test_every_user_change_is_audited_with_its_actor(auth: AuthService, db: Database) -> None:
    user = auth.create_user("alice", PASSWORD, "viewer", actor="user:root")
    auth.update_user(user.id, role="teller", actor="user:root")
    auth.update_user(user.id, role="teller", actor="user:root")  # no change, no line
    auth.delete_user(user.id, actor="key:ops")
    entries = auth.audit_entries(action="user.*")
    assert [(e.actor, e.action, e.subject) for e in entries] == [
        ("key:ops", "user.delete", "alice"),
        ("key:ops", "user.update", "alice"),
        ("user:root", "user.update", "alice"),
        ("user:root", "user.create", "alice"),
    ]
    assert entries[2].detail == {"role": ["viewer", "teller"]}
    with db.session() as s:
        assert s.scalar(select(User).where(User.username == "alice")) is None


def test_login_throttle_pauses_an_address_after_five_failures() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(attempts=5, window=300.0, clock=clock)
    for _ in range(5):
        throttle.check("203.0.113.7")
        throttle.failed("203.0.113.7")
        clock.now += 10
    with pytest.raises(ThrottledError) as caught:
        throttle.check("203.0.113.7")
    assert caught.value.retry_after == 250
    throttle.check("203.0.113.8")  # another address is not slowed
    clock.now += 251
    throttle.check("203.0.113.7")  # the oldest failure aged out
    throttle.failed("203.0.113.7")
    with pytest.raises(ThrottledError):
        throttle.check("203.0.113.7")
    throttle.succeeded("203.0.113.7")
    throttle.check("203.0.113.7")


def test_a_flood_of_refused_logins_is_a_few_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    """4,320 refusals in 15 s (issue 11, #33) were 4,320 WARNING lines: now one when the
    pause starts, a count at most once a minute, and one count when the pause ends."""
    clock = FakeClock()
    throttle = LoginThrottle(attempts=5, window=300.0, clock=clock)
    for _ in range(5):
        throttle.failed("203.0.113.7")
    caplog.set_level("INFO", logger="oneeye.services.auth")
    for _ in range(4320):  # the review's flood: 15 s of refusals
        with pytest.raises(ThrottledError):
            throttle.check("203.0.113.7")
        clock.now += 15 / 4320
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines
    assert "203.0.113.7" in lines[0]
    assert "paused" in lines[0]
    clock.now += 50  # past a minute since the first line: the next refusal logs the count
    with pytest.raises(ThrottledError):
        throttle.check("203.0.113.7")
    assert len(caplog.records) == 2
    assert caplog.records[1].getMessage().startswith("4320 more logins from client 203.0.113.7")
    with pytest.raises(ThrottledError):
        throttle.check("203.0.113.7")
    clock.now += 300  # the failures aged out: the pause ends, its last count is logged
    throttle.check("203.0.113.7")
    assert len(caplog.records) == 3
    assert caplog.records[2].getMessage().startswith("1 more logins from client 203.0.113.7")
    throttle.check("203.0.113.7")
    assert len(caplog.records) == 3


def test_an_ipv6_host_is_counted_by_its_slash_64() -> None:
    throttle = LoginThrottle(attempts=2, clock=FakeClock())
    throttle.failed("2001:db8:1:2::1")
    throttle.failed("2001:db8:1:2:ffff::9")  # the same /64: one host rotating addresses
    with pytest.raises(ThrottledError):
        throttle.check("2001:db8:1:2::77")
    throttle.check("2001:db8:1:3::1")
    throttle.failed("::ffff:198.51.100.4")
    throttle.failed("198.51.100.4")  # an IPv4-mapped address is its IPv4 address
    with pytest.raises(ThrottledError):
        throttle.check("198.51.100.4")


def test_many_addresses_guessing_are_bounded_but_a_clean_address_gets_in() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(attempts=5, window=300.0, clock=clock, global_attempts=10)
    for n in range(10):
        throttle.failed(f"198.51.100.{n}")
        clock.now += 1
    with pytest.raises(ThrottledError) as caught:  # one failure each, but the flood is on
        throttle.check("198.51.100.3")
    assert caught.value.retry_after == 290  # when the flood's oldest failure ages out
    throttle.check("192.0.2.1")  # the real user's address has not failed: let through
    clock.now += 300
    throttle.check("198.51.100.3")


def test_a_flood_of_addresses_does_not_grow_the_throttle_without_bound() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(attempts=2, window=300.0, clock=clock, max_tracked=100)
    for n in range(150):
        throttle.failed(f"10.0.0.{n}")
        clock.now += 0.01
    assert len(throttle._failures) == 100
    throttle.failed("10.0.0.149")
    with pytest.raises(ThrottledError):  # the newest addresses are the ones kept
        throttle.check("10.0.0.149")
    clock.now += 301
    for n in range(101):
        throttle.failed(f"10.1.0.{n}")
    assert len(throttle._failures) == 100
    assert not any(name.startswith("10.0.") for name in throttle._failures)


def test_the_right_password_works_from_another_address_during_a_flood(db: Database) -> None:
    clock = FakeClock()
    auth = AuthService(db, throttle=LoginThrottle(clock=clock))
    auth.create_user("alice", PASSWORD, "viewer")
    for _ in range(5):
        with pytest.raises(AuthError, match="wrong"):
            auth.login("alice", "not the password", client="203.0.113.66")
    with pytest.raises(ThrottledError, match="try again in 300 seconds"):
        auth.login("alice", PASSWORD, client="203.0.113.66")
    assert len(auth.audit_entries(action="login.failed")) == 5
    assert auth.login("alice", PASSWORD, client="192.0.2.10").principal.name == "alice"
    clock.now += 301
    assert auth.login("alice", PASSWORD, client="203.0.113.66").principal.name == "alice"


def test_audit_entries_filter_by_actor_target_time_and_page_on_both_databases(
    auth: AuthService,
) -> None:
    """The audit log's filters run as SQL on SQLite and PostgreSQL alike (the target filter
    also finds an id inside the JSON detail)."""
    auth.audit("user:ann", "face.search", "sha256:ab", {"shown": ["p-1", "p-2"]}, role="teller")
    auth.audit("key:ann", "photo.view", "snapshots/x_y.jpg", address="10.0.0.1", role="viewer")
    auth.audit("user:bo", "case.view", "p-1%", {"via": "api"}, role="viewer")
    assert [e.action for e in auth.audit_entries(actor="ann")] == ["photo.view", "face.search"]
    assert [e.action for e in auth.audit_entries(actor="user:ann")] == ["face.search"]
    assert [e.action for e in auth.audit_entries(subject="p-1")] == ["face.search"]
    # LIKE wildcards in a target are plain characters.
    assert [e.subject for e in auth.audit_entries(subject="p-1%")] == ["p-1%"]
    assert [e.subject for e in auth.audit_entries(subject="snapshots/x_y.jpg")] == [
        "snapshots/x_y.jpg"
    ]
    newest = auth.audit_entries(limit=1)[0]
    assert (newest.role, newest.address) == ("viewer", "")
    assert [e.action for e in auth.audit_entries(limit=2, before=newest.id)] == [
        "photo.view",
        "face.search",
    ]
    later = newest.at + timedelta(seconds=1)
    assert auth.audit_entries(since=later) == []
    assert len(auth.audit_entries(until=later)) >= 3
