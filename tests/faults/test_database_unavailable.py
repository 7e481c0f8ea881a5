"""A database that cannot be reached: 503 with Retry-After (a page, or JSON under /api/),
one warning line, never a 500; a refused query is still a real error."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import IntegrityError

from app import create_app
from app.blueprints.errors import is_database_outage
from tests.pages import sign_up
from tests.servers import free_port


@pytest.fixture
def unreachable_database() -> str:
    # Nothing listens there: every connection attempt is refused, as during a restart.
    return f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/issues"


async def test_a_write_without_a_database_answers_503_with_a_page_and_a_retry_hint(
    unreachable_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app("testing", DATABASE_URL=unreachable_database, RATE_LIMIT_ENABLED=False)
    caplog.set_level(logging.WARNING)
    response = await sign_up(app.test_client(), "ann@example.com")
    page = await response.get_data(as_text=True)
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert "briefly unavailable" in page
    assert "Request id:" in page
    [warning] = [record for record in caplog.records if record.name == "issues.errors"]
    assert warning.levelno == logging.WARNING and warning.exc_info is None
    assert "POST /auth/signup answered 503" in warning.getMessage()


async def test_an_api_read_without_a_database_answers_503_in_json(
    unreachable_database: str,
) -> None:
    app = create_app("testing", DATABASE_URL=unreachable_database)
    response = await app.test_client().get("/api/v1/projects/WEB/issues")
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    error = (await response.get_json())["error"]
    assert error["code"] == "unavailable"


def test_a_refused_query_or_a_missing_file_is_no_outage() -> None:
    refused = IntegrityError("INSERT ...", {}, Exception("duplicate key"))
    assert not is_database_outage(refused)
    assert not is_database_outage(FileNotFoundError(2, "No such file"))
    # A network error of the app's own (not raised by the database's driver) is no outage
    # either: the real refused connection is the two tests above.
    assert not is_database_outage(ConnectionRefusedError(111, "Connect call failed"))
    assert not is_database_outage(TimeoutError())
