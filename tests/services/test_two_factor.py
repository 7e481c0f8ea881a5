"""Two-factor with TOTP: enrolment, codes accepted once each (also by parallel workers),
recovery codes spent once, attempts throttled per account, disabling, the admin's reset."""

from __future__ import annotations

import asyncio
import re

import pytest
from quart import Quart
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, Invalid, TooManyRequests
from app.models import AuditEvent, RateLimitBucket, RecoveryCode, TotpCredential, User
from app.security import token_digest
from app.services import audit, two_factor
from app.services.accounts import AccountSettings
from app.services.two_factor import TwoFactorSettings
from tests.factories import make_user
from tests.services.rows import count, rows_of
from tests.totp import code_at, steady_step

ORIGIN = audit.Origin("203.0.113.9", "Firefox")
PASSWORD = "correct horse battery"


@pytest.fixture
def settings(app: Quart) -> TwoFactorSettings:
    return app.extensions["two_factor"]


async def enrolled(
    session: AsyncSession, settings: TwoFactorSettings, account_settings: AccountSettings
) -> tuple[User, str, list[str]]:
    """Ann with two-factor on, confirmed with the previous step's code (so the current and
    next steps' codes are still to be accepted): her, the secret, her recovery codes."""
    ann = await make_user(
        session, email="ann@example.com", password_hash=await account_settings.hasher.hash(PASSWORD)
    )
    enrolment = await two_factor.begin_enrolment(session, settings, ann)
    steady_step()
    codes = await two_factor.confirm_enrolment(
        session, settings, ann, code_at(enrolment.secret, -1), origin=ORIGIN
    )
    return ann, enrolment.secret, codes


async def actions(session: AsyncSession) -> list[tuple[str, dict]]:
    return [(event.action, event.detail) for event in await rows_of(session, AuditEvent)]


async def test_a_pending_enrolment_does_not_switch_two_factor_on(
    session: AsyncSession, settings: TwoFactorSettings
) -> None:
    ann = await make_user(session)
    enrolment = await two_factor.begin_enrolment(session, settings, ann)
    assert enrolment.provisioning_uri.startswith("otpauth://totp/Issues:")
    assert "issuer=Issues" in enrolment.provisioning_uri
    assert ann.email.split("@")[0] in enrolment.provisioning_uri
    assert await two_factor.second_factors(session, ann) == []
    assert not (await two_factor.status(session, ann.id)).enabled
    with pytest.raises(Invalid):
        await two_factor.verify_code(session, settings, ann, code_at(enrolment.secret))
    # Beginning again replaces the abandoned secret.
    again = await two_factor.begin_enrolment(session, settings, ann)
    assert again.secret != enrolment.secret
    assert (await two_factor.pending_enrolment(session, settings, ann)).secret == again.secret


async def test_enable_clicked_twice_at_once_leaves_one_pending_enrolment(
    app: Quart, settings: TwoFactorSettings
) -> None:
    sessionmaker = app.extensions["database"].sessionmaker
    async with sessionmaker() as session:
        ann = await make_user(session)

    async def begin() -> str:
        async with sessionmaker() as session:
            return (await two_factor.begin_enrolment(session, settings, ann)).secret

    secrets = await asyncio.gather(begin(), begin(), begin())
    async with sessionmaker() as session:
        [credential] = await rows_of(session, TotpCredential)
        assert settings.unseal(credential.secret_encrypted) in secrets
        assert credential.confirmed_at is None


async def test_confirming_switches_it_on_with_ten_hashed_recovery_codes(
    session: AsyncSession, settings: TwoFactorSettings, account_settings: AccountSettings
) -> None:
    ann = await make_user(session, email="ann@example.com")
    enrolment = await two_factor.begin_enrolment(session, settings, ann)
    with pytest.raises(Invalid, match="not right"):
        await two_factor.confirm_enrolment(session, settings, ann, "000000x")
    assert await two_factor.second_factors(session, ann) == []

    steady_step()
    codes = await two_factor.confirm_enrolment(
        session, settings, ann, code_at(enrolment.secret), origin=ORIGIN
    )
    assert await two_factor.second_factors(session, ann) == ["totp"]
    assert len(set(codes)) == 10
    assert all(re.fullmatch(r"([a-z2-9]{4}-){3}[a-z2-9]{4}", code) for code in codes)
    stored = await rows_of(session, RecoveryCode)
    assert {row.code_digest for row in stored} == {
        token_digest(code.replace("-", "")) for code in codes
    }
    [credential] = await rows_of(session, TotpCredential)
    assert enrolment.secret not in credential.secret_encrypted  # sealed at rest
    assert settings.unseal(credential.secret_encrypted) == enrolment.secret
    assert ("totp.enabled", {}) in await actions(session)
    with pytest.raises(Conflict):
        await two_factor.begin_enrolment(session, settings, ann)


async def test_a_wrong_code_is_refused_and_recorded(
    session: AsyncSession, settings: TwoFactorSettings, account_settings: AccountSettings
) -> None:
    ann, secret, _ = await enrolled(session, settings, account_settings)
    wrong = f"{(int(code_at(secret)) + 1) % 1_000_000:06d}"
    with pytest.raises(Invalid, match="not right"):
        await two_factor.verify_code(session, settings, ann, wrong, origin=ORIGIN)
    for junk in ("", "12345", "1234567", "١٢٣٤٥٦"):  # four: the fifth attempt is the last
        with pytest.raises(Invalid):
            await two_factor.verify_code(session, settings, ann, junk)
    [event] = [e for e in await rows_of(session, AuditEvent) if e.action == "totp.failed"][:1]
    assert (event.actor_id, event.client_address, event.detail) == (
        ann.id,
        "203.0.113.9",
        {"reason": "wrong_code"},
    )


async def test_a_code_is_accepted_once_and_never_again(
    session: AsyncSession, settings: TwoFactorSettings, account_settings: AccountSettings
) -> None:
    ann, secret, _ = await enrolled(session, settings, account_settings)
    steady_step()
    code = code_at(secret)
    await two_factor.verify_code(session, settings, ann, code)
    with pytest.raises(Invalid, match="used already"):
        await two_factor.verify_code(session, settings, ann, code, origin=ORIGIN)
    assert ("totp.failed", {"reason": "replayed_code"}) in await actions(session)
    # The next step's code (in the window) is a new code: accepted, and then the current one,
    # older than it, is refused too.
    await two_factor.verify_code(session, settings, ann, code_at(secret, +1))
    with pytest.raises(Invalid, match="used already"):
        await two_factor.verify_code(session, settings, ann, code)


async def test_a_code_of_the_previous_step_is_accepted_once(
    session: AsyncSession, settings: TwoFactorSettings, account_settings: AccountSettings
) -> None:
    ann, secret, _ = await enrolled(session, settings, account_settings)
    # As if her last code was taken long ago.
    await session.execute(update(TotpCredential).values(last_step=1))
    await session.commit()
    steady_step()
    previous = code_at(secret, -1)
    await two_factor.verify_code(session, settings, ann, previous)
    with pytest.raises(Invalid, match="used already"):
        await two_factor.verify_code(session, settings, ann, previous)
    await two_factor.verify_code(session, settings, ann, code_at(secret))
    # Two steps back is outside the window: wrong, not replayed.
    with pytest.raises(Invalid, match="not right"):
        await two_factor.verify_code(session, settings, ann, code_at(secret, -3))


async def test_two_workers_given_the_same_code_at_once_accept_it_once(
    app: Quart, settings: TwoFactorSettings, account_settings: AccountSettings
) -> None:
    sessionmaker = app.extensions["database"].sessionmaker
    async with sessionmaker() as session:
        ann, secret, _ = await enrolled(session, settings, account_settings)
    steady_step()
    code = code_at(secret)

    async def attempt() -> bool:
        async with sessionmaker() as session:
            try:
                await two_factor.verify_code(session, settings, ann, code)
            except Invalid:
                return False
            return True

    for _ in range(3):  # three rounds, so that one lucky ordering proves nothing
        results = await asyncio.gather(*(attempt() for _ in range(4)))
        assert sorted(results) == [False, False, False, True]
        async with sessionmaker() as session:  # as if the code had not been used yet
            await session.execute(update(TotpCredential).values(last_step=1))
            await session.execute(delete(RateLimitBucket))
            await session.commit()


async def test_a_recovery_code_works_once(
    session: AsyncSession, settings: TwoFactorSettings, account_settings: AccountSettings
) -> None:
    ann, _, codes = await enrolled(session, settings, account_settings)
    # Typed as people do: upper case, spaces, no dashes.
    typed = codes[0].replace("-", " ").upper()
    assert await two_factor.use_recovery_code(session, settings, ann, typed, origin=ORIGIN) == 9
    with pytest.raises(Invalid, match="used already"):
        await two_factor.use_recovery_code(session, settings, ann, codes[0], origin=ORIGIN)
    with pytest.raises(Invalid):
        await two_factor.use_recovery_code(session, settings, ann, "aaaa-bbbb-cccc-dddd")
    logged = await actions(session)
    assert ("recovery_code.used", {"left": 9}) in logged
    assert ("totp.failed", {"reason": "wrong_recovery_code"}) in logged
    assert (await two_factor.status(session, ann.id)).recovery_codes_left == 9


async def test_one_recovery_code_used_twice_at_once_works_once(
    app: Quart, settings: TwoFactorSettings, account_settings: AccountSettings
) -> None:
    sessionmaker = app.extensions["database"].sessionmaker
    async with sessionmaker() as session:
        ann, _, codes = await enrolled(session, settings, account_settings)

    async def attempt(code: str) -> bool:
        async with sessionmaker() as session:
            try:
                await two_factor.use_recovery_code(session, settings, ann, code)
            except Invalid:
                return False
            return True

    results = await asyncio.gather(*(attempt(codes[3]) for _ in range(4)))
    assert sorted(results) == [False, False, False, True]
    async with sessionmaker() as session:
        assert (await two_factor.status(session, ann.id)).recovery_codes_left == 9


async def test_attempts_are_throttled_per_account_and_a_right_code_clears_them(
    app: Quart, settings: TwoFactorSettings, account_settings: AccountSettings
) -> None:
    sessionmaker = app.extensions["database"].sessionmaker
    async with sessionmaker() as session:
        ann, secret, _ = await enrolled(session, settings, account_settings)
        bob = await make_user(session)
    steady_step()
    # Four wrong codes from one worker, and a fifth from another: the count is shared.
    for _ in range(4):
        async with sessionmaker() as session:
            with pytest.raises(Invalid):
                await two_factor.verify_code(session, settings, ann, "000000")
    async with sessionmaker() as other_worker:
        with pytest.raises(Invalid):
            await two_factor.verify_code(other_worker, settings, ann, "000001")
        # Now even the right code waits: guessing on is no use.
        with pytest.raises(TooManyRequests, match=r"Too many attempts, try again in \d minutes?"):
            await two_factor.verify_code(
                other_worker, settings, ann, code_at(secret), origin=ORIGIN
            )
        with pytest.raises(TooManyRequests):
            await two_factor.use_recovery_code(other_worker, settings, ann, "x", origin=ORIGIN)
        throttled = [
            a for a in await actions(other_worker) if a == ("totp.failed", {"reason": "throttled"})
        ]
        assert len(throttled) == 1  # once per window, not once per request
        # Another account is not held up.
        with pytest.raises(Invalid):
            await two_factor.verify_code(other_worker, settings, bob, "000000")


async def test_a_right_code_clears_the_failed_attempts(
    session: AsyncSession, settings: TwoFactorSettings, account_settings: AccountSettings
) -> None:
    ann, secret, _ = await enrolled(session, settings, account_settings)
    steady_step()
    for _ in range(4):
        with pytest.raises(Invalid):
            await two_factor.verify_code(session, settings, ann, "000000")
    await two_factor.verify_code(session, settings, ann, code_at(secret))
    for _ in range(5):
        with pytest.raises(Invalid):
            await two_factor.verify_code(session, settings, ann, "000000")


async def test_disabling_needs_the_password_and_a_code(
    session: AsyncSession, settings: TwoFactorSettings, account_settings: AccountSettings
) -> None:
    ann, secret, _ = await enrolled(session, settings, account_settings)
    steady_step()
    with pytest.raises(Invalid) as refused:
        await two_factor.disable(
            session, settings, account_settings, ann, password="wrong one", code=code_at(secret)
        )
    assert refused.value.field == "password"
    with pytest.raises(Invalid) as refused:
        await two_factor.disable(
            session, settings, account_settings, ann, password=PASSWORD, code="000000"
        )
    assert refused.value.field == "code"
    assert await two_factor.second_factors(session, ann) == ["totp"]

    await two_factor.disable(
        session,
        settings,
        account_settings,
        ann,
        password=PASSWORD,
        code=code_at(secret),
        origin=ORIGIN,
    )
    assert await two_factor.second_factors(session, ann) == []
    assert await count(session, RecoveryCode) == 0
    assert await count(session, TotpCredential) == 0
    assert ("totp.disabled", {}) in await actions(session)


async def test_disabling_with_a_recovery_code_for_a_lost_phone(
    session: AsyncSession, settings: TwoFactorSettings, account_settings: AccountSettings
) -> None:
    ann, _, codes = await enrolled(session, settings, account_settings)
    await two_factor.disable(
        session, settings, account_settings, ann, password=PASSWORD, code=codes[5]
    )
    assert await two_factor.second_factors(session, ann) == []


async def test_new_recovery_codes_need_a_code_and_void_the_old_ones(
    session: AsyncSession, settings: TwoFactorSettings, account_settings: AccountSettings
) -> None:
    ann, secret, old = await enrolled(session, settings, account_settings)
    with pytest.raises(Invalid):
        await two_factor.regenerate_recovery_codes(session, settings, ann, "000000")
    steady_step()
    new = await two_factor.regenerate_recovery_codes(
        session, settings, ann, code_at(secret), origin=ORIGIN
    )
    assert len(new) == 10 and not set(new) & set(old)
    with pytest.raises(Invalid):
        await two_factor.use_recovery_code(session, settings, ann, old[0])
    assert await two_factor.use_recovery_code(session, settings, ann, new[0]) == 9
    assert ("recovery_codes.regenerated", {}) in await actions(session)


async def test_reset_removes_it_in_the_caller_s_transaction(
    session: AsyncSession, settings: TwoFactorSettings, account_settings: AccountSettings
) -> None:
    ann, _, _ = await enrolled(session, settings, account_settings)
    await two_factor.reset(session, ann.id)
    await session.rollback()  # not a use case: nothing is committed by it
    assert await two_factor.second_factors(session, ann) == ["totp"]
    await two_factor.reset(session, ann.id)
    await session.commit()
    assert await two_factor.second_factors(session, ann) == []
    assert await count(session, RecoveryCode) == 0


async def test_a_secret_sealed_under_another_key_asks_for_a_recovery_code(
    session: AsyncSession, settings: TwoFactorSettings, account_settings: AccountSettings
) -> None:
    ann, secret, codes = await enrolled(session, settings, account_settings)
    rotated = TwoFactorSettings.from_config({"SECRET_KEY": "another key " * 4})
    with pytest.raises(Invalid, match="recovery code"):
        await two_factor.verify_code(session, rotated, ann, code_at(secret))
    assert await two_factor.use_recovery_code(session, rotated, ann, codes[0]) == 9


async def test_the_user_of_a_held_login_is_detached(session: AsyncSession) -> None:
    ann = await make_user(session)
    found = await two_factor.account_for_second_step(session, ann.id)
    assert found is not None and found.id == ann.id
    await session.rollback()
    assert found.email == ann.email  # not expired by a refusal's rollback
    assert await two_factor.account_for_second_step(session, 999_999) is None
    assert await session.scalar(select(User.id).where(User.id == ann.id)) == ann.id
