"""The first page, the health checks and the refusal of a database behind the code."""

from __future__ import annotations

from pathlib import Path

import pytest
from quart.testing.app import LifespanError

from app import create_app
from app.db import create_engine, migrations
from app.db.migrations import _script_directory, code_heads


async def test_home_page_answers_with_the_layout(client) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    page = await response.get_data(as_text=True)
    assert "<title>Issues</title>" in page
    assert 'class="topbar"' in page and 'href="#content"' in page
    assert "<footer" in page


async def test_healthz_says_the_process_is_alive_without_asking_the_database() -> None:
    app = create_app("testing", DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:1/nothing")
    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/healthz")
    assert response.status_code == 200
    assert await response.get_json() == {"status": "ok"}


async def test_readyz_is_ready_on_a_current_database(client, backend: str) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert await response.get_json() == {
        "status": "ready",
        "database": "ok",
        "schema": "current",
        # Each PostgreSQL worker needs its LISTEN connection for live pages; SQLite has none.
        "live": "connected" if backend == "postgresql" else "not used",
    }


@pytest.mark.parametrize(
    "unreachable_url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/nothing",
        "sqlite+aiosqlite:////nonexistent-directory/for/issues.db",
    ],
)
async def test_readyz_is_503_when_the_database_does_not_answer(unreachable_url: str) -> None:
    # The worker still starts (an outage must not keep it down); it is just not ready.
    app = create_app("testing", DATABASE_URL=unreachable_url)
    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/readyz")
    assert response.status_code == 503
    report = await response.get_json()
    assert (report["status"], report["database"]) == ("unavailable", "unreachable")


async def test_a_database_behind_the_code_is_refused_at_start(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    previous = _script_directory().get_revision(code_heads()[0]).down_revision
    await migrations.upgrade(engine, str(previous))
    await engine.dispose()
    app = create_app("testing", DATABASE_URL=url)
    # The worker's start-up fails (hypercorn then stops the server) with the reason.
    with pytest.raises(LifespanError) as refusal:
        async with app.test_app():
            pass
    message = str(refusal.value)
    assert f"is at {previous}" in message and code_heads()[0] in message
    assert "alembic upgrade head" in message


async def test_a_migrated_database_serves_and_reports_ready(database_url: str) -> None:
    app = create_app("testing", DATABASE_URL=database_url)
    async with app.test_app() as test_app:
        assert (await test_app.test_client().get("/readyz")).status_code == 200


async def test_every_answer_carries_a_request_id_and_error_pages_show_it(client) -> None:
    response = await client.get("/no/such/page")
    request_id = response.headers["X-Request-ID"]
    assert len(request_id) >= 8
    assert f"<code>{request_id}</code>" in await response.get_data(as_text=True)
    # A proxy's id is kept when it is a plain token, replaced when it is not.
    kept = await client.get("/healthz", headers={"X-Request-ID": "edge-1234.abc"})
    assert kept.headers["X-Request-ID"] == "edge-1234.abc"
    odd = await client.get("/healthz", headers={"X-Request-ID": "<script>x</script>"})
    assert odd.headers["X-Request-ID"] != "<script>x</script>"


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
