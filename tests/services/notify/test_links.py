"""Signed snapshot links and the key file that signs them."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from oneeye.config import ServeSettings
from oneeye.services.notify import LinkError, LinkSigner, load_secret_key
from tests.services.notify.receivers import PUBLIC_URL, SECRET_KEY

KEY = "snapshots/ab/ab12cd.jpg"


def test_a_signed_link_verifies_until_it_expires() -> None:
    signer = LinkSigner(SECRET_KEY, PUBLIC_URL + "/")
    link = signer.sign(KEY, 60, now=1000.0)
    assert link.exp == 1060
    signer.verify(link.key, link.exp, link.sig, now=1060.0)
    with pytest.raises(LinkError, match="expired"):
        signer.verify(link.key, link.exp, link.sig, now=1061.0)
    url = signer.url(KEY, 60)
    assert url.startswith(f"{PUBLIC_URL}/api/v1/links/snapshot?key=snapshots%2Fab%2Fab12cd.jpg&")


@pytest.mark.parametrize(
    ("key", "exp_delta", "sig", "error"),
    [
        ("snapshots/ab/other.jpg", 0, None, "signature"),
        (KEY, 3600, None, "signature"),  # a later expiry written in by hand
        (KEY, 0, "AAAA", "signature"),
        (KEY, 0, "", "signature"),
        ("templates/ab/ab12cd.jpg", 0, None, "snapshot"),
    ],
)
def test_altered_links_are_refused(key: str, exp_delta: int, sig: str | None, error: str) -> None:
    signer = LinkSigner(SECRET_KEY, PUBLIC_URL)
    link = signer.sign(KEY, 60, now=1000.0)
    with pytest.raises(LinkError, match=error):
        signer.verify(key, link.exp + exp_delta, link.sig if sig is None else sig, now=1000.0)


def test_another_servers_key_does_not_verify() -> None:
    link = LinkSigner(b"another-key-of-32-bytes-or-so...", PUBLIC_URL).sign(KEY, 60)
    with pytest.raises(LinkError, match="signature"):
        LinkSigner(SECRET_KEY, PUBLIC_URL).verify(link.key, link.exp, link.sig)


def test_only_snapshots_can_be_signed() -> None:
    with pytest.raises(LinkError, match="only snapshots"):
        LinkSigner(SECRET_KEY, PUBLIC_URL).sign("customers/ab/ab.jpg", 60)


def test_the_key_file_is_made_once_owner_only(tmp_path: Path) -> None:
    settings = ServeSettings(data_dir=tmp_path / "data")
    key = load_secret_key(settings)
    path = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) == 64
    assert load_secret_key(settings) == key  # kept across restarts
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"]  # no temporary left


def test_a_configured_key_wins_and_must_be_long_enough(tmp_path: Path) -> None:
    settings = ServeSettings(data_dir=tmp_path, secret_key=SecretStr("k" * 40))
    assert load_secret_key(settings) == b"k" * 40
    assert not (tmp_path / "secret.key").exists()
    with pytest.raises(LinkError, match="at least 16"):
        load_secret_key(ServeSettings(data_dir=tmp_path, secret_key=SecretStr("short")))


def test_an_emptied_key_file_is_an_error_not_a_weak_key(tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_text("\n")
    with pytest.raises(LinkError, match="delete it"):
        load_secret_key(ServeSettings(data_dir=tmp_path))
