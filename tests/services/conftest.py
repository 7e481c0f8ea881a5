"""Fixtures of the service tests: the account settings the app under test was made with."""

from __future__ import annotations

import pytest
from quart import Quart

from app.services.accounts import AccountSettings


@pytest.fixture
def account_settings(app: Quart) -> AccountSettings:
    return app.extensions["account_settings"]
