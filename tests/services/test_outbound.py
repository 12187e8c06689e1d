"""The outbound-request guard against real listeners on loopback standing in for internal
services: internal addresses are refused after resolution, when a URL is checked and again on
every connection (DNS rebinding), redirects are not followed, and the operator's allow-list
opens exactly what it names."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import httpx
import pytest
from pydantic import ValidationError

from oneeye.config import OutboundSettings, ServeSettings
from oneeye.services.outbound import OutboundGuard, OutboundRefusedError
from tests.services.internal import SECRET_REPLY, InternalService

PUBLIC = "93.184.215.14"
"""A public address (never connected to: the tests only check URLs that resolve to it)."""


@pytest.fixture
def internal() -> Iterator[InternalService]:
    """The internal service: it must receive nothing."""
    service = InternalService()
    yield service
    service.close()


class RebindingResolver:
    """Plays a DNS server under an attacker's control: the first lookups of a name answer
    ``first``, every later one ``then``."""

    def __init__(self, first: Sequence[str], then: Sequence[str], flips_after: int = 1) -> None:
        self.first, self.then, self.flips_after = list(first), list(then), flips_after
        self.lookups: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, host: str, port: int) -> list[str]:
        with self.lock:
            self.lookups.append(host)
            return self.first if len(self.lookups) <= self.flips_after else self.then


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8080/internal-admin", "127.0.0.1 is a loopback address"),
        ("http://127.9.9.9/", "127.9.9.9 is a loopback address"),
        ("http://[::1]/", "::1 is a loopback address"),
        ("http://10.1.2.3/", "10.1.2.3 is a private address"),
        ("http://172.16.0.1/", "172.16.0.1 is a private address"),
        ("https://192.168.1.1/", "192.168.1.1 is a private address"),
        ("http://100.64.0.1/", "100.64.0.1 is a CGNAT address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata"),
        ("http://169.254.10.10/", "169.254.10.10 is a link-local address"),
        ("http://[fe80::1]/", "fe80::1 is a link-local address"),
        ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
        ("http://[ff02::1]/", "ff02::1 is a multicast address"),
        ("http://0.0.0.0:8080/", "0.0.0.0 is an unspecified address"),
        ("http://[::]/", ":: is an unspecified address"),
        ("http://240.0.0.1/", "240.0.0.1 is a reserved address"),
        ("http://255.255.255.255/", "is a reserved address"),
        ("http://[fd12:3456::1]/", "fd12:3456::1 is a unique-local address"),
        ("http://[fd00:ec2::254]/", "fd00:ec2::254 is a cloud metadata address"),
        ("http://[::ffff:127.0.0.1]/", "a loopback address (127.0.0.1 inside IPv6)"),
        ("http://[::ffff:10.0.0.1]/", "a private address (10.0.0.1 inside IPv6)"),
        ("http://[::ffff:169.254.169.254]/", "a cloud metadata address (169.254.169.254 inside"),
        ("http://[64:ff9b::a00:1]/", "a private address (10.0.0.1 inside IPv6)"),
        ("http://[2002:7f00:1::]/", "a loopback address (127.0.0.1 inside IPv6)"),
        ("http://metadata.google.internal/computeMetadata/v1/", "a cloud metadata service"),
        # Names and odd spellings are checked after the system resolver reads them.
        ("http://localhost:8080/", "localhost resolves to 127.0.0.1, a loopback address"),
        ("http://2130706433/", "resolves to 127.0.0.1, a loopback address"),
        ("http://0x7f.1/", "resolves to 127.0.0.1, a loopback address"),
        # The URL's form.
        ("ftp://files.example.org/", "only http:// and https://"),
        ("file:///etc/passwd", "only http:// and https://"),
        ("http://admin:pw@hooks.example.org/", "must not carry a user name or password"),
        ("http:///nohost", "has no host"),
        ("http://[::1/", "not a valid URL"),
        # Allowed.
        (f"https://{PUBLIC}/hook", None),
        (f"http://{PUBLIC}:8443/hook?token=x", None),
    ],
)
def test_internal_destinations_are_refused(url: str, expected: str | None) -> None:
    guard = OutboundGuard()
    if expected is None:
        assert guard.check_url(url).addresses == (PUBLIC,)
    else:
        with pytest.raises(OutboundRefusedError, match=r"^refused: ") as refused:
            guard.check_url(url)
        assert expected in str(refused.value)


def test_a_name_is_refused_when_any_of_its_addresses_is_internal() -> None:
    guard = OutboundGuard(resolve=lambda host, port: [PUBLIC, "10.0.0.7"])
    with pytest.raises(OutboundRefusedError, match=r"mixed.example.org resolves to 10.0.0.7"):
        guard.check_url("https://mixed.example.org/hook")


def test_a_name_that_does_not_resolve_now_is_left_to_the_send_time_check() -> None:
    guard = OutboundGuard()
    assert guard.check_url("https://hooks.invalid/x").addresses == ()


def test_the_allow_list_opens_exactly_what_it_names() -> None:
    guard = OutboundGuard(["10.1.2.0/24", "sms-gw.internal", "169.254.0.0/16"])
    assert guard.check_url("http://10.1.2.99/").host == "10.1.2.99"
    with pytest.raises(OutboundRefusedError, match=r"10.1.3.1 is a private address"):
        guard.check_url("http://10.1.3.1/")
    named = OutboundGuard(["SMS-GW.internal."], resolve=lambda host, port: ["10.9.9.9"])
    assert named.check_url("https://sms-gw.internal/send").addresses == ("10.9.9.9",)
    with pytest.raises(OutboundRefusedError, match=r"other.internal resolves to 10.9.9.9"):
        named.check_url("https://other.internal/send")
    # A metadata address stays refused inside an allowed range; only an exact entry opens it.
    assert guard.check_url("http://169.254.1.1/").host == "169.254.1.1"
    with pytest.raises(OutboundRefusedError, match="cloud metadata"):
        guard.check_url("http://169.254.169.254/")
    assert OutboundGuard(["169.254.169.254"]).check_url("http://169.254.169.254/").addresses


def test_a_connection_to_an_internal_service_is_refused_and_it_receives_nothing(
    internal: InternalService,
) -> None:
    """The send-time check with the real system resolver: ``localhost`` resolves to
    127.0.0.1, so the guarded client never connects."""
    url = f"http://localhost:{internal.port}/internal-admin"
    with OutboundGuard().client(timeout=2.0) as client:
        with pytest.raises(OutboundRefusedError, match=r"localhost resolves to 127.0.0.1"):
            client.post(url, content=b"{}")
        with pytest.raises(OutboundRefusedError, match=r"127.0.0.1 is a loopback address"):
            client.get(f"{internal.url}/internal-admin")
    assert internal.received() == []
    # The same request, allowed by the operator, does arrive: the listener is real.
    with OutboundGuard(["127.0.0.1"]).client(timeout=2.0) as client:
        assert client.post(url, content=b"{}").content == SECRET_REPLY
    assert [(m, p) for m, p, _ in internal.received()] == [("POST", "/internal-admin")]


def test_dns_rebinding_is_refused_at_send_time(internal: InternalService) -> None:
    """A name that answered a public address when it was checked and 127.0.0.1 when the
    request is sent: the client resolves it itself and refuses what it got."""
    resolver = RebindingResolver([PUBLIC], ["127.0.0.1"])
    guard = OutboundGuard(resolve=resolver)
    url = f"http://rebind.example.org:{internal.port}/internal-admin"
    assert guard.check_url(url).addresses == (PUBLIC,)  # at subscription time
    refused = pytest.raises(OutboundRefusedError, match=r"rebind.example.org resolves to 127.0")
    with guard.client(timeout=2.0) as client, refused:
        client.post(url, content=b"{}")
    assert resolver.lookups == ["rebind.example.org", "rebind.example.org"]
    assert internal.received() == []


def test_the_client_connects_to_the_address_it_checked(internal: InternalService) -> None:
    """The socket goes to the address the guard checked (the system resolver never sees the
    name, which does not exist) and the request still names the host."""
    lookups = RebindingResolver(["127.0.0.1"], ["127.0.0.1"])
    guard = OutboundGuard(["127.0.0.1/32"], resolve=lookups)
    with guard.client(timeout=2.0) as client:
        answer = client.get(f"http://bank-api.invalid:{internal.port}/accounts/1")
    assert answer.status_code == 200
    [(_, path, headers)] = internal.received()
    assert path == "/accounts/1"
    assert headers["host"] == f"bank-api.invalid:{internal.port}"
    assert lookups.lookups == ["bank-api.invalid"]


def test_a_redirect_to_an_internal_service_is_not_followed(internal: InternalService) -> None:
    """An allowed server (127.0.0.2 stands in for a public one) answers with a redirect to
    the internal service: the client hands back the 302 and goes nowhere else."""
    outside = InternalService("127.0.0.2", redirect_to=f"{internal.url}/internal-admin")
    try:
        with OutboundGuard(["127.0.0.2"]).client(timeout=2.0) as client:
            answer = client.post(f"{outside.url}/hook", content=b"{}")
        assert answer.status_code == 302
        assert len(outside.received()) == 1
        assert internal.received() == []
    finally:
        outside.close()


def test_the_allow_list_setting_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ONEEYE_OUTBOUND__ALLOW_INTERNAL", '["10.1.2.0/24", "SMS-GW.internal."]')
    assert ServeSettings().outbound.allow_internal == ["10.1.2.0/24", "sms-gw.internal"]
    with pytest.raises(ValidationError, match="a host name, an IP address or a network"):
        OutboundSettings(allow_internal=["http://sms-gw/"])


def test_a_failed_lookup_at_send_time_is_a_connection_error_to_retry() -> None:
    """DNS that fails now may work later: the request fails as unreachable (the senders
    retry that), not as refused (which they never retry)."""

    def broken_dns(host: str, port: int) -> list[str]:
        raise OSError("temporary failure in name resolution")

    unreachable = pytest.raises(httpx.ConnectError, match="does not resolve")
    with OutboundGuard(resolve=broken_dns).client(timeout=2.0) as client, unreachable:
        client.get("https://hooks.example.org/x")
