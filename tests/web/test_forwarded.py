"""Forwarded headers count only when they come from a trusted proxy's address."""

from __future__ import annotations

from typing import Any

import pytest

from app.config import ConfigurationError
from app.web.forwarded import TrustedProxyGate, parse_trusted


async def headers_seen(trusted: str, client: tuple[str, int] | None) -> dict[bytes, bytes]:
    seen: dict[bytes, bytes] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(scope["headers"])

    scope = {
        "type": "http",
        "client": client,
        "headers": [(b"x-forwarded-for", b"198.51.100.7"), (b"accept", b"text/html")],
    }
    await TrustedProxyGate(app, parse_trusted(trusted))(scope, None, None)
    return seen


@pytest.mark.parametrize(
    ("trusted", "client", "believed"),
    [
        ("127.0.0.1,::1", ("127.0.0.1", 5000), True),
        ("127.0.0.1,::1", ("203.0.113.5", 5000), False),  # straight to the port: forged
        ("10.0.0.0/8", ("10.1.2.3", 5000), True),
        ("10.0.0.0/8", ("192.168.1.1", 5000), False),
        ("*", ("203.0.113.5", 5000), True),
        ("127.0.0.1", None, True),  # a Unix socket: this machine
    ],
)
async def test_forwarded_headers_are_dropped_unless_the_peer_is_trusted(
    trusted: str, client: tuple[str, int] | None, believed: bool
) -> None:
    seen = await headers_seen(trusted, client)
    assert (b"x-forwarded-for" in seen) is believed
    assert seen[b"accept"] == b"text/html"


def test_a_malformed_address_list_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="TRUST_PROXY_ADDRESSES"):
        parse_trusted("10.0.0.0/8, not-an-address")
