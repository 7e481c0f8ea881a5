"""A real OpenID provider for the tests (panva's oidc-provider, run by Node from
tests/oidc/provider.mjs), and a person's visit to it, driven over HTTP.

The tests that need it run when Node and the npm package are there, and must run (their
absence fails) when ISSUES_REQUIRE_OIDC=1 or ISSUES_REQUIRE_BROWSER=1, as in CI."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from tests.mailcatcher import free_port

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "oidc" / "provider.mjs"
PACKAGE = ROOT / "node_modules" / "oidc-provider" / "package.json"
CLIENT_ID = "issues-tests"
CLIENT_SECRET = "a-client-secret-for-the-tests-only"


def _required() -> bool:
    return any(
        os.environ.get(name, "").strip().lower() in {"1", "true", "yes"}
        for name in ("ISSUES_REQUIRE_OIDC", "ISSUES_REQUIRE_BROWSER")
    )


def _missing() -> str | None:
    if shutil.which("node") is None:
        return "the OpenID provider tests need Node.js (apt-get install nodejs)"
    if not PACKAGE.exists():
        return "the OpenID provider tests need oidc-provider from npm (npm ci)"
    return None


@dataclass
class OidcProvider:
    """A running provider with one client registered for `redirect_uris`."""

    issuer: str
    redirect_uris: list[str]
    process: subprocess.Popen = field(repr=False)
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET

    def app_settings(self, **more: object) -> dict[str, object]:
        """The app's configuration for signing in through this provider."""
        return {
            "OIDC_ISSUER": self.issuer,
            "OIDC_CLIENT_ID": self.client_id,
            "OIDC_CLIENT_SECRET": self.client_secret,
            "OIDC_PROVIDER_NAME": "Test ID",
            **more,
        }

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def start_provider(redirect_uris: list[str]) -> OidcProvider:
    """Start the provider on a free port and wait for its discovery document. Skips (or fails
    when required) without Node or the package."""
    if problem := _missing():
        if _required():
            pytest.fail(problem)
        pytest.skip(problem)
    port = free_port()
    environment = {
        **os.environ,
        "OIDC_PORT": str(port),
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_REDIRECT_URIS": ",".join(redirect_uris),
        "NODE_ENV": "development",
    }
    process = subprocess.Popen(  # noqa: S603 (our own script)
        ["node", str(SCRIPT)],  # noqa: S607
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    issuer = f"http://localhost:{port}"
    provider = OidcProvider(issuer, redirect_uris, process)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode(errors="replace") if process.stderr else ""
            pytest.fail(f"the OpenID provider did not start: {error[-2000:]}")
        try:
            answer = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=1)
            if answer.status_code == 200:
                return provider
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    provider.stop()
    pytest.fail("the OpenID provider did not answer within 20 seconds")


_FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')
_PROMPT = re.compile(r'name="prompt" value="([a-z]+)"')


async def visit_provider(
    authorization_url: str, login: str, *, redirect_prefix: str, consent: bool = True
) -> str:
    """Be a person at the provider: open the authorization URL, log in as `login` (any
    password works there), consent (or cancel when `consent` is False), and return the URL
    the provider sends the browser back to (the app's callback, with its query)."""
    async with httpx.AsyncClient(follow_redirects=False, timeout=10) as browser:
        url = authorization_url
        for _ in range(12):
            if url.startswith(redirect_prefix):
                return url
            answer = await browser.get(url)
            if answer.is_redirect:
                url = urljoin(url, answer.headers["location"])
                continue
            answer.raise_for_status()
            prompt = _PROMPT.search(answer.text)
            action = _FORM_ACTION.search(answer.text)
            assert prompt and action, f"no interaction form at {url}: {answer.text[:500]}"
            if prompt.group(1) == "consent" and not consent:
                url = urljoin(url, unescape(action.group(1)) + "/abort")
                continue
            fields = {"prompt": prompt.group(1)}
            if prompt.group(1) == "login":
                fields |= {"login": login, "password": "any password"}
            submitted = await browser.post(urljoin(url, unescape(action.group(1))), data=fields)
            assert submitted.is_redirect, submitted.text[:500]
            url = urljoin(url, submitted.headers["location"])
    raise AssertionError("the provider never sent the browser back")
