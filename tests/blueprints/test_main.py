"""The first page and the health check."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import create_app


async def test_home_page_answers_with_the_layout(client) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    page = await response.get_data(as_text=True)
    assert "<title>Issues</title>" in page
    assert 'class="topbar"' in page and 'href="#content"' in page
    assert "<footer" in page


async def test_healthz_reports_the_database(client, backend: str) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert await response.get_json() == {"status": "ok", "database": backend}


@pytest.mark.parametrize(
    "unreachable_url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/nothing",
        "sqlite+aiosqlite:////nonexistent-directory/for/issues.db",
    ],
)
async def test_healthz_is_503_when_the_database_does_not_answer(unreachable_url: str) -> None:
    app = create_app("testing", DATABASE_URL=unreachable_url)
    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/healthz")
    assert response.status_code == 503
    assert (await response.get_json())["status"] == "unavailable"


async def test_an_unknown_page_is_a_404_page(client) -> None:
    response = await client.get("/no/such/page")
    assert response.status_code == 404
    assert "<h1>404</h1>" in await response.get_data(as_text=True)


async def test_an_api_client_gets_json_errors(client) -> None:
    response = await client.get("/no/such/page", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "not_found"


def test_the_static_stylesheet_exists() -> None:
    assert (Path(__file__).parents[2] / "app/static/css/app.css").is_file()
