"""Forwarded headers are believed only from our own proxies' addresses (TRUST_PROXY_ADDRESSES);
how many of them there are (TRUST_PROXY_COUNT) is the guards' business (client_address)."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable
from quart import Quart

from app.config import ConfigurationError

log = logging.getLogger("issues.forwarded")

FORWARDED_HEADERS = frozenset(
    {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port"}
    | {b"x-real-ip", b"forwarded"}
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted(value: str) -> list[Network] | None:
    """The networks of TRUST_PROXY_ADDRESSES; None for "*" (any peer)."""
    if value.strip() == "*":
        return None
    try:
        return [
            ipaddress.ip_network(part.strip(), strict=False)
            for part in value.split(",")
            if part.strip()
        ]
    except ValueError as error:
        raise ConfigurationError(f"TRUST_PROXY_ADDRESSES: {error}") from error


class TrustedProxyGate:
    """Drops forwarded headers sent by a peer outside the trusted networks, so that a client
    who reaches the server directly cannot choose the address the rate limits see. A request
    without a peer address (a Unix socket, the test client) comes from this machine: trusted."""

    def __init__(self, app: Any, trusted: list[Network] | None) -> None:
        self.app, self.trusted = app, trusted

    def _trusts(self, scope: dict[str, Any]) -> bool:
        client = scope.get("client")
        if self.trusted is None or not client:
            return True
        try:
            peer = ipaddress.ip_address(client[0])
        except ValueError:
            return True  # not an IP address: a Unix socket's name
        return any(peer in network for network in self.trusted)

    async def __call__(
        self, scope: dict[str, Any], receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] in ("http", "websocket") and not self._trusts(scope):
            headers = scope.get("headers", [])
            kept = [pair for pair in headers if pair[0].lower() not in FORWARDED_HEADERS]
            if len(kept) != len(headers):
                scope = {**scope, "headers": kept}
        return await self.app(scope, receive, send)


def init_app(app: Quart) -> None:
    trusted = parse_trusted(app.config["TRUST_PROXY_ADDRESSES"])
    app.asgi_app = TrustedProxyGate(app.asgi_app, trusted)  # type: ignore[method-assign]
