"""Codes an authenticator app would show, for the two-factor tests."""

from __future__ import annotations

import time

import pyotp


def steady_step() -> None:
    """Wait out the last second and a half of a 30-second step, so that a code made now is
    checked in the same step (a test must not fail because the clock ticked between lines)."""
    if time.time() % 30 > 28.5:
        time.sleep(30 - time.time() % 30 + 0.05)


def code_at(secret: str, offset_steps: int = 0) -> str:
    """The code of the step `offset_steps` away from now."""
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)
