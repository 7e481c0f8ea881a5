"""What every request passes: CSRF and cross-site refusals, safe redirects, headers, cookies."""

from __future__ import annotations

import re

import pytest
from quart import Quart

from app import create_app
from app.blueprints.guards import CONTENT_SECURITY_POLICY, safe_next
from tests.pages import csrf_token, log_in, sign_up, submit, text_of

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def unsafe_routes(app: Quart) -> list[tuple[str, str]]:
    """Every (method, concrete path) the app accepts that changes something."""
    routes = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods & UNSAFE):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", "x", rule.rule)
            routes.append((method, path))
    return routes


def test_the_walk_finds_the_unsafe_routes() -> None:
    routes = unsafe_routes(create_app("testing"))
    assert ("POST", "/auth/login") in routes
    assert ("POST", "/account/password") in routes
    assert len(routes) >= 10


async def test_every_unsafe_route_refuses_a_request_without_the_csrf_token(
    app: Quart, client
) -> None:
    await sign_up(client, "ann@example.com")  # logged in: the token is the only thing missing
    for method, path in unsafe_routes(app):
        response = await client.open(path, method=method, form={"email": "x@example.com"})
        assert response.status_code == 403, (method, path, response.status_code)


async def test_every_unsafe_route_refuses_a_wrong_token(app: Quart, client) -> None:
    await sign_up(client, "ann@example.com")
    for method, path in unsafe_routes(app):
        response = await client.open(path, method=method, form={"csrf_token": "forged"})
        assert response.status_code == 403, (method, path)


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ],
)
async def test_every_unsafe_route_refuses_cross_site_requests_even_with_the_token(
    app: Quart, client, headers: dict[str, str]
) -> None:
    await sign_up(client, "ann@example.com")
    token = await csrf_token(client)
    for method, path in unsafe_routes(app):
        response = await client.open(
            path, method=method, form={"csrf_token": token}, headers=headers
        )
        assert response.status_code == 403, (method, path, headers)


async def test_same_origin_requests_with_the_token_pass(app: Quart, client) -> None:
    response = await submit(
        client,
        "/auth/signup",
        {"email": "ann@example.com", "display_name": "Ann", "password": "correct horse battery"},
        headers={"Origin": "http://issues.test", "Sec-Fetch-Site": "same-origin"},
    )
    assert response.status_code == 302


async def test_a_refused_form_says_what_to_do(app: Quart, client) -> None:
    response = await client.post("/auth/login", form={"email": "a@example.com"})
    assert response.status_code == 403
    assert "reload the page" in await text_of(response)


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "https://evil.example/",
        "http:evil.example",
        "javascript:alert(1)",
        "/\t/evil.example",
        "/\n/evil.example",
        " //evil.example",
        "evil.example",
        "data:text/html,hi",
        "/%09/evil.example\x00",
    ],
)
def test_next_never_leaves_the_site(target: str) -> None:
    assert safe_next(target) == "/"


@pytest.mark.parametrize("target", ["/account/", "/WEB-12?tab=history", "/p/WEB/board#todo"])
def test_next_keeps_paths_on_this_site(target: str) -> None:
    assert safe_next(target) == target


async def test_login_does_not_redirect_off_site(app: Quart, client) -> None:
    await sign_up(client, "ann@example.com")
    await submit(client, "/auth/logout")
    response = await log_in(client, "ann@example.com", next="//evil.example/steal")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


async def test_every_answer_carries_the_security_headers(app: Quart, client) -> None:
    for path in ("/", "/auth/login", "/no/such/page"):
        headers = (await client.get(path)).headers
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "unsafe-inline" not in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["X-Frame-Options"] == "DENY"


async def test_authenticated_pages_are_not_cached(app: Quart, client) -> None:
    assert "no-store" not in (await client.get("/")).headers.get("Cache-Control", "")
    await sign_up(client, "ann@example.com")
    for path in ("/", "/account/"):
        assert (await client.get(path)).headers["Cache-Control"] == "no-store"


async def test_production_cookies_are_secure_httponly_and_lax(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("SECRET_KEY", "p" * 48)
    monkeypatch.setenv("DATABASE_URL", database_url)
    app = create_app("production", PASSWORD_HASH_PROFILE="cheapest")
    async with app.test_app() as test_app:
        client = test_app.test_client()
        response = await client.get("/auth/login")
        cookie = response.headers["Set-Cookie"]
        assert "issues_session=" in cookie
        for attribute in ("Secure", "HttpOnly", "SameSite=Lax"):
            assert attribute in cookie


async def test_a_request_body_that_is_too_large_is_refused(app: Quart, client) -> None:
    response = await client.post(
        "/auth/login",
        data=b"email=" + b"x" * (3 * 1024 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413


async def test_numbers_too_large_for_an_id_are_a_clear_400_not_a_500(app: Quart, client) -> None:
    await sign_up(client, "ann@example.com")
    huge = str(2**70)
    token = await csrf_token(client)
    response = await client.post("/p/NOPE/board/moves", form={"csrf_token": token, "issue": huge})
    assert response.status_code in (400, 404)
    response = await client.post(f"/searches/{huge}/delete", form={"csrf_token": token})
    assert response.status_code == 404
    response = await client.get("/p/NOPE/events?last_event_id=%C2%B2")
    assert response.status_code == 404


def test_production_refuses_to_log_mail(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.config import ConfigurationError

    monkeypatch.setenv("SECRET_KEY", "p" * 48)
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/issues")
    monkeypatch.setenv("MAIL_BACKEND", "log")
    with pytest.raises(ConfigurationError, match="MAIL_BACKEND=log"):
        create_app("production")
