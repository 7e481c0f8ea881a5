"""The one rule for a project key (models.project.key_pattern), kept by every place that reads
keys: creating a project (the API and the form alike), URLs, references in text, presence."""

from __future__ import annotations

import re

import pytest
from werkzeug.exceptions import HTTPException

from app import create_app
from app.errors import Invalid
from app.live.stream import VIEW_ISSUE_KEY
from app.models.project import KEY_PATTERN
from app.rendering.markdown import find_references
from app.services.projects import normalise_key

KEYS = {
    "WEB": True,
    "W1": True,
    "ABCDEFGHIJ": True,
    "W": False,  # one letter: too short
    "ABCDEFGHIJK": False,  # eleven: too long
    "1W": False,
    "WE_B": False,
    "WÉB": False,
    "": False,
}


def endpoint_of(path: str) -> str | None:
    try:
        endpoint, _ = create_app("testing").url_map.bind("issues.test").match(path)
    except HTTPException:
        return None
    return endpoint


def is_created(key: str) -> bool:
    try:
        normalise_key(key)
    except Invalid:
        return False
    return True


@pytest.mark.parametrize(("key", "valid"), KEYS.items(), ids=[key or "empty" for key in KEYS])
def test_every_reader_of_project_keys_keeps_the_one_rule(key: str, valid: bool) -> None:
    assert (re.fullmatch(KEY_PATTERN, key) is not None) is valid
    assert is_created(key) is valid
    for spelling in (key, key.lower()):  # a URL may name a project in any case
        assert (endpoint_of(f"/p/{spelling}") == "issues.project_issues") is valid
        assert (endpoint_of(f"/{spelling}-12") == "issues.show") is valid
    assert (find_references(f"See {key}-12.") == {f"{key}-12"}) is valid
    assert (VIEW_ISSUE_KEY.fullmatch(f"{key}-12") is not None) is valid
