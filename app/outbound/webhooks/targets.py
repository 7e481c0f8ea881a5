"""Where a webhook may point: public addresses only, unless the site allows private ones.

A hook URL is checked when it is saved (for a clear message) and again at every connection:
the sender connects only to an address it has just resolved and checked, so a name that
resolves to a public address when saved and to 127.0.0.1 later (DNS rebinding) is refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpcore

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
URL_MAX_LENGTH = 2000


class RefusedTarget(Exception):
    """The URL or the address it resolves to may not receive webhooks; the message says why."""


@dataclass(frozen=True)
class TargetPolicy:
    """What the site allows: `allow_private` lifts every address rule (tests, intranets);
    `own_hosts` are the server's own names (BASE_URL's host), refused like loopback."""

    allow_private: bool = False
    own_hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TargetPolicy:
        own = urlsplit(config["BASE_URL"]).hostname
        return cls(
            allow_private=bool(config["WEBHOOK_ALLOW_PRIVATE_TARGETS"]),
            own_hosts=frozenset({own.lower()} if own else ()),
        )


# IPv6 addresses that carry an IPv4 address in their last 32 bits, which a gateway turns into
# that IPv4 address: NAT64's prefixes, and the old IPv4-compatible form (::10.0.0.1).
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def _address(text: str) -> IPAddress:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
    if not isinstance(address, ipaddress.IPv6Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if address.sixtofour is not None:
        return address.sixtofour  # 2002:7f00:1:: is 127.0.0.1 behind a 6to4 relay
    embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if any(address in network for network in _NAT64):
        return embedded  # 64:ff9b::a00:1 is 10.0.0.1
    if address in _IPV4_COMPATIBLE and int(address) > 1:  # :: and ::1 are IPv6's own
        return embedded
    return address


def refusal_of(address: IPAddress) -> str | None:
    """Why an address may not receive webhooks by default, or None when it may."""
    if address.is_loopback or address.is_unspecified:
        return "points at this server"
    if address.is_link_local:
        return "is a link-local address (such as a cloud metadata service)"
    if address.is_multicast:
        return "is a multicast address"
    # RFC 1918, unique-local, carrier-grade NAT, documentation and reserved ranges: an intranet
    # is not the business of a hook unless the site says so.
    if not address.is_global:
        return "is a private or reserved address"
    return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The host's addresses (an IP literal is its own), via the loop's resolver thread."""
    try:
        return [_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise RefusedTarget(f"The host {host} cannot be resolved.") from error
    return list(dict.fromkeys(_address(str(info[4][0])) for info in infos))


def _host_and_port(url: str) -> tuple[str, int]:
    if len(url) > URL_MAX_LENGTH:
        raise RefusedTarget(f"A webhook URL has at most {URL_MAX_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise RefusedTarget("This is not a valid URL.") from error
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedTarget("A webhook URL starts with https:// or http:// and names a host.")
    if parts.username or parts.password:
        raise RefusedTarget("A webhook URL may not carry a user name or password.")
    return parts.hostname.lower().rstrip("."), port or (443 if parts.scheme == "https" else 80)


async def allowed_addresses(host: str, port: int, policy: TargetPolicy) -> list[IPAddress]:
    """The addresses of `host` that may be connected to; RefusedTarget when there are none.

    Every address must pass, not just one: a name that resolves to both a public and a
    private address could be steered to the private one."""
    if host in policy.own_hosts and not policy.allow_private:
        raise RefusedTarget(f"The host {host} points at this server.")
    addresses = await resolve(host, port)
    if policy.allow_private:
        return addresses
    for address in addresses:
        if reason := refusal_of(address):
            named = host if host == str(address) else f"{host} ({address})"
            raise RefusedTarget(f"The address {named} {reason}.")
    own_addresses: set[IPAddress] = set()
    for own in policy.own_hosts:
        try:
            own_addresses.update(await resolve(own, port))
        except RefusedTarget:
            continue  # the server's own name does not resolve here: nothing to compare
    if own_addresses.intersection(addresses):
        raise RefusedTarget(f"The host {host} points at this server.")
    return addresses


async def check_url(url: str, policy: TargetPolicy) -> str:
    """The URL, stripped, if a hook may point there; RefusedTarget with the reason if not."""
    url = url.strip()
    host, port = _host_and_port(url)
    await allowed_addresses(host, port, policy)
    return url


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network layer, checking every address it connects to against the policy and
    connecting to the checked address itself (TLS still verifies the name in the URL)."""

    def __init__(self, policy: TargetPolicy) -> None:
        self.policy = policy
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await allowed_addresses(host.lower().rstrip("."), port, self.policy)
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._backend.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as failure:
                error = failure
        assert error is not None  # resolve() returns at least one address
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedTarget("Webhooks are sent over TCP only.")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)
