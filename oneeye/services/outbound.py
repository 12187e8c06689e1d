"""The one gate every outbound HTTP request of the server passes: webhooks, the SMS gateway and
the bank's customer directory.

A URL is refused unless it is ``http``/``https`` without credentials and its host name resolves
only to public addresses: loopback, private (RFC 1918, CGNAT), link-local, multicast,
unspecified, reserved, IPv6 unique-local, IPv4 addresses embedded in IPv6 (mapped, NAT64, 6to4,
Teredo) that are any of those, and cloud-metadata addresses and names are refused. The check
runs when an address is saved (``check_url``) and again on every connection (``client``): the
client resolves the name itself, checks what it got, and connects to exactly the address it
checked, so a name that answers a public address first and ``127.0.0.1`` later (DNS rebinding)
is refused at send time. The client never follows redirects. An operator lets requests reach
internal hosts that legitimately live inside (an SMS gateway, the bank's API) by naming them
in ``OutboundSettings.allow_internal``.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from oneeye.config import OutboundSettings
from oneeye.errors import OneEyeError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) -> addresses``: how names become IP addresses (``getaddrinfo`` by default;
tests hand in their own to play a rebinding DNS server)."""

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)
"""Cloud instance-metadata services: they hand out the machine's credentials to anyone who
can make it send a GET, so they stay refused even inside an allow-listed network."""

METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})
"""Host names of metadata services, refused before any lookup."""

NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
CGNAT = ipaddress.ip_network("100.64.0.0/10")
MAX_ALLOW_ENTRIES = 100


class OutboundRefusedError(OneEyeError):
    """An outbound request was refused before anything was sent.

    ``str(error)`` is a short reason fit for an error message, a log line and the case page
    (``"refused: 127.0.0.1 is a loopback address"``); it never contains credentials or a path.
    """


@dataclass(frozen=True, slots=True)
class Destination:
    """A checked URL's parts."""

    scheme: str
    host: str
    """Lower case, no trailing dot, IPv6 without brackets."""
    port: int
    addresses: tuple[str, ...]
    """What the host resolved to (all checked), or empty when it was not resolved."""


def _default_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in seen:
            seen.append(address)
    return seen


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4, Teredo), if any: what a
    translator on the path would really connect to."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def classify(address: IPAddress) -> str | None:
    """Why ``address`` is not a public destination (``"a loopback address"``), or ``None``
    when it is one."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "a scoped (link-local) address"
        inner = _embedded_ipv4(address)
        if inner is not None:
            why = classify(inner)
            if why is not None:
                return f"{why} ({inner} inside IPv6)"
            return None
    checks: tuple[tuple[bool, str], ...] = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (isinstance(address, ipaddress.IPv4Address) and address in CGNAT, "a CGNAT address"),
        (
            isinstance(address, ipaddress.IPv6Address) and address in _UNIQUE_LOCAL,
            "a unique-local address",
        ),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (not address.is_global, "not a public address"),
    )
    for hit, why in checks:
        if hit:
            return why
    return None


_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


def _host_entry(entry: str) -> str:
    return entry.strip().lower().rstrip(".")


class OutboundGuard:
    """Refuses URLs and connections that would reach an internal address (see the module)."""

    def __init__(self, allow_internal: Iterable[str] = (), *, resolve: Resolver | None = None):
        """Args:
        allow_internal: host names and networks (``"10.1.2.0/24"``, ``"10.1.2.3"``,
            ``"sms-gw.internal"``) that may be reached although they are internal.
        resolve: name lookup; default ``socket.getaddrinfo``.
        """
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in allow_internal:
            entry = _host_entry(raw)
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry)
        self.allowed_networks: tuple[IPNetwork, ...] = tuple(networks)
        self.allowed_hosts: frozenset[str] = frozenset(hosts)
        self._resolve: Resolver = resolve if resolve is not None else _default_resolve

    @classmethod
    def from_settings(
        cls, settings: OutboundSettings, *, resolve: Resolver | None = None
    ) -> OutboundGuard:
        """The guard the operator's ``ONEEYE_OUTBOUND__ALLOW_INTERNAL`` describes."""
        return cls(settings.allow_internal, resolve=resolve)

    # Checks ---------------------------------------------------------------------------------

    def check_url(self, url: str, *, resolve: bool = True) -> Destination:
        """Check ``url`` before saving or using it.

        Args:
            url: an absolute ``http``/``https`` URL.
            resolve: also look the host up and check every address it has; when the name
                does not resolve now, the URL is accepted (it cannot reach anything now, and
                every connection is checked again when it is made).

        Returns:
            The URL's scheme, host, port and checked addresses.

        Raises:
            OutboundRefusedError: the URL is malformed or would reach an internal address.
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise OutboundRefusedError("refused: not a valid URL") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise OutboundRefusedError("refused: only http:// and https:// URLs are allowed")
        if parts.username is not None or parts.password is not None:
            raise OutboundRefusedError("refused: a URL must not carry a user name or password")
        host = _host_entry(parts.hostname or "")
        if not host:
            raise OutboundRefusedError("refused: the URL has no host")
        port = port if port is not None else (443 if scheme == "https" else 80)
        addresses: tuple[str, ...] = ()
        literal = _literal(host)
        if literal is not None:
            self._check_address(host, literal)
            addresses = (str(literal),)
        else:
            self._check_name(host)
            if resolve:
                try:
                    addresses = tuple(self.addresses(host, port))
                except _UnresolvableError:
                    addresses = ()
        return Destination(scheme, host, port, addresses)

    def addresses(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` and check every address it has.

        Returns:
            The addresses, in the resolver's order, all allowed.

        Raises:
            OutboundRefusedError: the name is refused or any address is internal (one internal
                answer is enough: a rebinding server mixes them).
        """
        name = _host_entry(host)
        literal = _literal(name)
        if literal is not None:
            self._check_address(name, literal)
            return [str(literal)]
        self._check_name(name)
        try:
            found = list(self._resolve(name, port))
        except (OSError, UnicodeError) as exc:
            raise _UnresolvableError(
                f"refused: {name} does not resolve ({type(exc).__name__})"
            ) from None
        if not found:
            raise _UnresolvableError(f"refused: {name} does not resolve")
        checked = []
        for text in found:
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                raise OutboundRefusedError(
                    f"refused: {name} resolved to something not an IP"
                ) from None
            self._check_address(name, address)
            checked.append(str(address))
        return checked

    def _check_name(self, host: str) -> None:
        if host in METADATA_NAMES and host not in self.allowed_hosts:
            raise OutboundRefusedError(f"refused: {host} is a cloud metadata service")

    def _check_address(self, host: str, address: IPAddress) -> None:
        why = classify(address)
        if why is None:
            return
        if address in METADATA_ADDRESSES:
            # Only an exact entry lets a metadata address through, never a wider network.
            if any(n.num_addresses == 1 and address in n for n in self.allowed_networks):
                return
        elif host in self.allowed_hosts or any(
            address.version == n.version and address in n for n in self.allowed_networks
        ):
            return
        if _literal(host) == address:
            raise OutboundRefusedError(f"refused: {address} is {why}")
        raise OutboundRefusedError(f"refused: {host} resolves to {address}, {why}")

    # Sending --------------------------------------------------------------------------------

    def client(
        self,
        *,
        timeout: float | httpx.Timeout,
        headers: dict[str, str] | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> httpx.Client:
        """An HTTP client whose every connection goes through this guard and which never
        follows redirects (a 3xx comes back as the answer).

        Raises (from its requests):
            OutboundRefusedError: the request would reach an internal address.
        """
        return httpx.Client(
            transport=GuardedTransport(self, verify=verify),
            timeout=timeout,
            headers=headers,
            follow_redirects=False,
            trust_env=False,
        )


class _UnresolvableError(OutboundRefusedError):
    """The host name does not resolve (now)."""


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class _GuardedBackend(httpcore.NetworkBackend):
    """httpcore's network layer with the guard in front: the name is resolved here, every
    address checked, and the socket opened to one of the checked addresses. The TLS layer
    above still checks the certificate against the URL's host name (SNI), and the connection
    pool still keys connections by host name."""

    def __init__(self, guard: OutboundGuard) -> None:
        self._guard = guard
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self._guard.addresses(host, port)
        except _UnresolvableError as exc:
            # A lookup that fails now may work later: a connection error, retried, not a
            # refusal.
            raise httpcore.ConnectError(str(exc)) from None
        failure: Exception | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # addresses() never returns an empty list
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise OutboundRefusedError("refused: unix sockets are not an outbound destination")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport (its error mapping, pooling and TLS) over ``_GuardedBackend``."""

    def __init__(self, guard: OutboundGuard, *, verify: ssl.SSLContext | bool = True) -> None:
        """Connections are checked by ``guard``; ``verify`` as in httpx."""
        super().__init__(verify=verify, trust_env=False)
        # httpx offers no parameter for httpcore's network backend, so the pool it built is
        # replaced by the same pool over the guarded backend (no proxy: trust_env is off).
        limits = httpx.Limits()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(guard),
        )
