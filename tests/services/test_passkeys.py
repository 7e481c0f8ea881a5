"""Passkeys with real WebAuthn data: a software authenticator's attestations and assertions,
checked by the service as a browser's would be; and every refusal the ceremonies owe."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import Invalid, NotFound
from app.models import AuditEvent, Passkey, User, WebAuthnChallenge
from app.services import audit, passkeys
from app.services.passkeys import Ceremony, RelyingParty
from tests.factories import make_user
from tests.services.rows import rows_of
from tests.webauthn_authenticator import SoftAuthenticator, b64url

RP = RelyingParty("issues.test", "https://issues.test")
ORIGIN = audit.Origin("203.0.113.9", "Chromium")


async def register(
    session: AsyncSession, user: User, key: SoftAuthenticator, name: str = "Laptop", **bend
) -> Passkey:
    ceremony = await passkeys.registration_options(session, RP, user, name=name)
    answer = key.register(ceremony.options_json, **bend)
    return await passkeys.add_passkey(
        session, RP, user, name=name, challenge=ceremony.challenge, answer=answer, origin=ORIGIN
    )


async def sign_in(session: AsyncSession, key: SoftAuthenticator, **bend) -> User:
    ceremony = await passkeys.sign_in_options(session, RP)
    answer = key.authenticate(ceremony.options_json, **bend)
    return await passkeys.sign_in(
        session, RP, challenge=ceremony.challenge, answer=answer, origin=ORIGIN
    )


async def actions(session: AsyncSession) -> list[str]:
    return [event.action for event in await rows_of(session, AuditEvent)]


async def last_event(session: AsyncSession) -> AuditEvent:
    return (await rows_of(session, AuditEvent))[-1]


@pytest.fixture
def key() -> SoftAuthenticator:
    return SoftAuthenticator(origin=RP.origin)


# --- Registering ------------------------------------------------------------------------------


async def test_a_registered_passkey_keeps_its_public_key_name_and_is_audited(
    session: AsyncSession, key: SoftAuthenticator
) -> None:
    ann = await make_user(session, email="ann@example.com")
    assert not await passkeys.has_passkeys(session, ann.id)
    passkey = await register(session, ann, key, "  Work laptop ")
    [credential] = key.credentials.values()
    [row] = await rows_of(session, Passkey)
    assert (row.id, row.user_id, row.name) == (passkey.id, ann.id, "Work laptop")
    assert row.credential_id == credential.credential_id
    assert row.public_key == credential.cose_public_key()
    assert row.user_handle == credential.user_handle and len(row.user_handle) == 32
    assert (row.sign_count, row.transports, row.backup_eligible, row.backed_up) == (
        0,
        "internal,hybrid",
        True,
        True,
    )
    assert row.last_used_at is None
    assert await passkeys.has_passkeys(session, ann.id)
    event = await last_event(session)
    assert (event.action, event.actor_id, event.detail) == (
        "passkey.added",
        ann.id,
        {"name": "Work laptop"},
    )
    assert event.client_address == "203.0.113.9"
    # Its challenge is used up.
    assert await rows_of(session, WebAuthnChallenge) == []


async def test_options_exclude_the_users_passkeys_and_keep_one_user_handle(
    session: AsyncSession, key: SoftAuthenticator
) -> None:
    ann = await make_user(session, email="ann@example.com")
    first = await register(session, ann, key, "Laptop")
    ceremony = await passkeys.registration_options(session, RP, ann, name="Phone")
    options = json.loads(ceremony.options_json)
    assert [item["id"] for item in options["excludeCredentials"]] == [b64url(first.credential_id)]
    assert options["authenticatorSelection"]["residentKey"] == "preferred"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert options["rp"] == {"id": "issues.test", "name": "Issues"}
    phone = SoftAuthenticator(origin=RP.origin)
    answer = phone.register(ceremony.options_json)
    second = await passkeys.add_passkey(
        session, RP, ann, name="Phone", challenge=ceremony.challenge, answer=answer
    )
    assert second.user_handle == first.user_handle
    assert [p.name for p in await passkeys.list_passkeys(session, ann.id)] == ["Laptop", "Phone"]


async def test_registering_the_same_credential_twice_is_refused(
    session: AsyncSession, key: SoftAuthenticator
) -> None:
    ann = await make_user(session, email="ann@example.com")
    bob = await make_user(session, email="bob@example.com")
    await register(session, ann, key)
    [credential] = key.credentials.values()
    with pytest.raises(Invalid, match="registered already"):
        await register(session, ann, key, "Again", reuse=credential)
    with pytest.raises(Invalid, match="registered already"):
        await register(session, bob, key, "Stolen", reuse=credential)
    assert len(await rows_of(session, Passkey)) == 1
    assert await actions(session) == ["passkey.added"]


@pytest.mark.parametrize(
    ("bend", "reason"),
    [
        ({"origin": "https://evil.test"}, "origin"),
        ({"rp_id": "evil.test"}, "RP ID"),
    ],
    ids=["another origin", "another relying party"],
)
async def test_a_registration_from_elsewhere_is_refused(
    session: AsyncSession, key: SoftAuthenticator, bend: dict, reason: str
) -> None:
    ann = await make_user(session, email="ann@example.com")
    with pytest.raises(Invalid, match=reason):
        await register(session, ann, key, **bend)
    assert await rows_of(session, Passkey) == []


async def test_a_registration_answer_is_accepted_once_and_only_by_its_user(
    session: AsyncSession, key: SoftAuthenticator
) -> None:
    ann = await make_user(session, email="ann@example.com")
    bob = await make_user(session, email="bob@example.com")
    ceremony = await passkeys.registration_options(session, RP, ann, name="Laptop")
    answer = key.register(ceremony.options_json)
    with pytest.raises(Invalid, match="expired"):
        await passkeys.add_passkey(
            session, RP, bob, name="Laptop", challenge=ceremony.challenge, answer=answer
        )
    # Bob's try did not use Ann's challenge up; Ann's answer works once.
    await passkeys.add_passkey(
        session, RP, ann, name="Laptop", challenge=ceremony.challenge, answer=answer
    )
    with pytest.raises(Invalid, match="expired"):
        await passkeys.add_passkey(
            session, RP, ann, name="Laptop", challenge=ceremony.challenge, answer=answer
        )


async def test_bad_names_and_garbage_answers_are_refused_cleanly(
    session: AsyncSession, key: SoftAuthenticator
) -> None:
    ann = await make_user(session, email="ann@example.com")
    for name in ("", "   ", "x" * 101):
        with pytest.raises(Invalid) as refused:
            await passkeys.registration_options(session, RP, ann, name=name)
        assert refused.value.field == "name"
    for answer in ({}, {"id": "x"}, "not json", {"id": "AA", "rawId": "AA", "response": {}}):
        ceremony = await passkeys.registration_options(session, RP, ann, name="Laptop")
        with pytest.raises(Invalid):
            await passkeys.add_passkey(
                session, RP, ann, name="Laptop", challenge=ceremony.challenge, answer=answer
            )
    assert await rows_of(session, Passkey) == []


async def test_passkeys_are_off_without_a_domain(session: AsyncSession) -> None:
    ann = await make_user(session, email="ann@example.com")
    off = RelyingParty("", "http://127.0.0.1:5000")
    with pytest.raises(Invalid, match="domain"):
        await passkeys.registration_options(session, off, ann, name="Laptop")
    with pytest.raises(Invalid, match="domain"):
        await passkeys.sign_in_options(session, off)


# --- Naming and removing ------------------------------------------------------------------------


async def test_renaming_and_removing_ones_own_passkey_only(
    session: AsyncSession, key: SoftAuthenticator
) -> None:
    ann = await make_user(session, email="ann@example.com")
    bob = await make_user(session, email="bob@example.com")
    passkey_id = (await register(session, ann, key)).id  # a refusal's rollback expires it
    with pytest.raises(NotFound):
        await passkeys.rename_passkey(session, bob, passkey_id, "Mine now")
    with pytest.raises(NotFound):
        await passkeys.remove_passkey(session, bob, passkey_id)
    with pytest.raises(Invalid):
        await passkeys.rename_passkey(session, ann, passkey_id, " ")
    await passkeys.rename_passkey(session, ann, passkey_id, "Old laptop")
    assert [p.name for p in await passkeys.list_passkeys(session, ann.id)] == ["Old laptop"]
    await passkeys.remove_passkey(session, ann, passkey_id, origin=ORIGIN)
    assert await rows_of(session, Passkey) == []
    event = await last_event(session)
    assert (event.action, event.actor_id, event.detail) == (
        "passkey.removed",
        ann.id,
        {"name": "Old laptop"},
    )


async def test_a_users_passkeys_go_with_the_account(
    session: AsyncSession, key: SoftAuthenticator
) -> None:
    ann = await make_user(session, email="ann@example.com")
    await register(session, ann, key)
    await session.delete(await session.get(User, ann.id))
    await session.commit()
    assert await rows_of(session, Passkey) == []


# --- Signing in without a password --------------------------------------------------------------


async def test_signing_in_with_a_passkey_names_its_user_and_notes_the_use(
    session: AsyncSession, key: SoftAuthenticator
) -> None:
    ann = await make_user(session, email="ann@example.com")
    await make_user(session, email="bob@example.com")
    await register(session, ann, key)
    ceremony = await passkeys.sign_in_options(session, RP)
    options = json.loads(ceremony.options_json)
    assert options.get("allowCredentials", []) == []  # discoverable: the browser offers them
    assert options["userVerification"] == "required"
    answer = key.authenticate(ceremony.options_json)
    user = await passkeys.sign_in(
        session, RP, challenge=ceremony.challenge, answer=answer, origin=ORIGIN
    )
    assert (user.id, user.email) == (ann.id, "ann@example.com")
    [row] = await rows_of(session, Passkey)
    assert row.sign_count == 1 and row.last_used_at is not None
    event = await last_event(session)
    assert (event.action, event.actor_id, event.detail) == (
        "passkey.login",
        ann.id,
        {"name": "Laptop"},
    )
    assert await sign_in(session, key) is not None  # and again, with the next count


async def test_a_passkey_from_another_origin_is_refused_and_recorded(
    session: AsyncSession, key: SoftAuthenticator
) -> None:
    ann = await make_user(session, email="ann@example.com")
    await register(session, ann, key)
    with pytest.raises(Invalid, match="not accepted"):
        await sign_in(session, key, origin="https://issues.test.evil.example")
    event = await last_event(session)
    assert (event.action, event.actor_id, event.subject_id) == ("passkey.failed", None, ann.id)
    assert "origin" in event.detail["reason"]
    assert event.detail["purpose"] == "sign_in" and event.detail["name"] == "Laptop"
    assert (await rows_of(session, Passkey))[0].last_used_at is None


async def test_a_passkey_for_another_relying_party_is_refused(
    session: AsyncSession, key: SoftAuthenticator
) -> None:
    ann = await make_user(session, email="ann@example.com")
    await register(session, ann, key)
    with pytest.raises(Invalid):
        await sign_in(session, key, rp_id="evil.test")
    assert "RP ID" in (await last_event(session)).detail["reason"]


async def test_an_answer_is_accepted_once(session: AsyncSession, key: SoftAuthenticator) -> None:
    ann = await make_user(session, email="ann@example.com")
    await register(session, ann, key)
    ceremony = await passkeys.sign_in_options(session, RP)
    answer = key.authenticate(ceremony.options_json)
    await passkeys.sign_in(session, RP, challenge=ceremony.challenge, answer=answer)
    with pytest.raises(Invalid):
        await passkeys.sign_in(session, RP, challenge=ceremony.challenge, answer=answer)
    assert "challenge" in (await last_event(session)).detail["reason"]
    assert await actions(session) == ["passkey.added", "passkey.login", "passkey.failed"]


async def test_a_refused_answer_uses_its_challenge_up_too(
    session: AsyncSession, key: SoftAuthenticator
) -> None:
    ann = await make_user(session, email="ann@example.com")
    await register(session, ann, key)
    ceremony = await passkeys.sign_in_options(session, RP)
    bent = key.authenticate(ceremony.options_json, origin="https://evil.test")
    with pytest.raises(Invalid):
        await passkeys.sign_in(session, RP, challenge=ceremony.challenge, answer=bent)
    good = key.authenticate(ceremony.options_json)
    with pytest.raises(Invalid):
        await passkeys.sign_in(session, RP, challenge=ceremony.challenge, answer=good)


async def test_an_expired_challenge_is_refused(
    session: AsyncSession, key: SoftAuthenticator
) -> None:
    ann = await make_user(session, email="ann@example.com")
    await register(session, ann, key)
    ceremony = await passkeys.sign_in_options(session, RP)
    await session.execute(
        update(WebAuthnChallenge).values(expires_at=utcnow() - timedelta(seconds=1))
    )
    await session.commit()
    with pytest.raises(Invalid):
        await passkeys.sign_in(
            session,
            RP,
            challenge=ceremony.challenge,
            answer=key.authenticate(ceremony.options_json),
        )
    # The next ceremony sweeps the expired rows away.
    await passkeys.sign_in_options(session, RP)
    assert len(await rows_of(session, WebAuthnChallenge)) == 1


async def test_a_sign_count_going_backwards_is_refused_as_a_possible_clone(
    session: AsyncSession, key: SoftAuthenticator
) -> None:
    ann = await make_user(session, email="ann@example.com")
    await register(session, ann, key)
    await sign_in(session, key, sign_count=5)
    with pytest.raises(Invalid):
        await sign_in(session, key, sign_count=4)
    with pytest.raises(Invalid):
        await sign_in(session, key, sign_count=5)
    assert "sign count" in (await last_event(session)).detail["reason"]
    assert (await rows_of(session, Passkey))[0].sign_count == 5


async def test_a_removed_passkey_signs_nobody_in(
    session: AsyncSession, key: SoftAuthenticator
) -> None:
    ann = await make_user(session, email="ann@example.com")
    passkey = await register(session, ann, key)
    await passkeys.remove_passkey(session, ann, passkey.id)
    with pytest.raises(Invalid):
        await sign_in(session, key)
    event = await last_event(session)
    assert (event.action, event.subject_id, event.detail["reason"]) == (
        "passkey.failed",
        None,
        "unknown passkey",
    )


async def test_a_passwordless_sign_in_needs_the_user_verified(
    session: AsyncSession, key: SoftAuthenticator
) -> None:
    ann = await make_user(session, email="ann@example.com")
    await register(session, ann, key)
    with pytest.raises(Invalid):
        await sign_in(session, key, user_verified=False)


async def test_a_user_handle_that_is_not_the_passkeys_is_refused(
    session: AsyncSession, key: SoftAuthenticator
) -> None:
    ann = await make_user(session, email="ann@example.com")
    await register(session, ann, key)
    [credential] = key.credentials.values()
    credential.user_handle = b"someone else"
    with pytest.raises(Invalid):
        await sign_in(session, key)
    assert (await last_event(session)).detail["reason"] == "user handle does not match"


async def test_garbage_sign_in_answers_are_refused_and_recorded(session: AsyncSession) -> None:
    for answer in ({}, "nonsense", {"id": "AA", "rawId": "AA", "type": "public-key"}):
        ceremony: Ceremony = await passkeys.sign_in_options(session, RP)
        with pytest.raises(Invalid):
            await passkeys.sign_in(session, RP, challenge=ceremony.challenge, answer=answer)
    assert await actions(session) == ["passkey.failed"] * 3


# --- The second factor --------------------------------------------------------------------------


async def second_factor(
    session: AsyncSession, user_id: int, key: SoftAuthenticator, **bend
) -> User:
    ceremony = await passkeys.second_factor_options(session, RP, user_id)
    answer = key.authenticate(ceremony.options_json, **bend)
    return await passkeys.verify_second_factor(
        session, RP, user_id, challenge=ceremony.challenge, answer=answer, origin=ORIGIN
    )


async def test_a_passkey_as_second_factor_lists_and_accepts_the_held_users_passkeys(
    session: AsyncSession, key: SoftAuthenticator
) -> None:
    ann = await make_user(session, email="ann@example.com")
    passkey = await register(session, ann, key)
    ceremony = await passkeys.second_factor_options(session, RP, ann.id)
    options = json.loads(ceremony.options_json)
    assert [item["id"] for item in options["allowCredentials"]] == [b64url(passkey.credential_id)]
    answer = key.authenticate(ceremony.options_json, user_verified=False)  # a plain security key
    user = await passkeys.verify_second_factor(
        session, RP, ann.id, challenge=ceremony.challenge, answer=answer
    )
    assert user.id == ann.id
    assert (await last_event(session)).action == "passkey.login"


async def test_another_users_passkey_is_refused_as_the_second_factor(
    session: AsyncSession, key: SoftAuthenticator
) -> None:
    ann = await make_user(session, email="ann@example.com")
    mallory = await make_user(session, email="mallory@example.com")
    await register(session, ann, key)
    mallorys_key = SoftAuthenticator(origin=RP.origin)
    await register(session, mallory, mallorys_key)
    [mallorys] = mallorys_key.credentials.values()
    with pytest.raises(Invalid):
        await second_factor(session, ann.id, mallorys_key, credential=mallorys)
    event = await last_event(session)
    assert (event.action, event.subject_id, event.detail["reason"]) == (
        "passkey.failed",
        mallory.id,
        "another account's passkey",
    )
    # A challenge made for Ann's second step is no good for a passwordless sign-in either.
    ceremony = await passkeys.second_factor_options(session, RP, ann.id)
    with pytest.raises(Invalid):
        await passkeys.sign_in(
            session,
            RP,
            challenge=ceremony.challenge,
            answer=key.authenticate(ceremony.options_json),
        )


async def test_no_second_factor_options_for_an_account_without_passkeys(
    session: AsyncSession,
) -> None:
    ann = await make_user(session, email="ann@example.com")
    with pytest.raises(Invalid):
        await passkeys.second_factor_options(session, RP, ann.id)


async def test_challenges_are_kept_in_the_database_for_every_worker(
    session: AsyncSession,
) -> None:
    ann = await make_user(session, email="ann@example.com")
    ceremony = await passkeys.registration_options(session, RP, ann, name="Laptop")
    stored = await session.scalar(select(WebAuthnChallenge))
    assert stored is not None
    assert (stored.challenge, stored.purpose, stored.user_id) == (
        ceremony.challenge,
        "register",
        ann.id,
    )
    assert stored.expires_at - utcnow() <= passkeys.CHALLENGE_LIFETIME


async def test_one_answer_sent_twice_at_once_signs_in_once(
    app, session: AsyncSession, key: SoftAuthenticator
) -> None:
    # Two workers handed the same answer: each in its own session, racing on the delete.
    ann = await make_user(session, email="ann@example.com")
    await register(session, ann, key)
    ceremony = await passkeys.sign_in_options(session, RP)
    answer = key.authenticate(ceremony.options_json, sign_count=0)  # no count to stop it

    async def attempt() -> str:
        async with app.extensions["database"].sessionmaker() as own:
            try:
                await passkeys.sign_in(own, RP, challenge=ceremony.challenge, answer=answer)
            except Invalid:
                return "refused"
            return "signed in"

    outcomes = await asyncio.gather(attempt(), attempt(), attempt())
    assert sorted(outcomes) == ["refused", "refused", "signed in"]
    assert (await actions(session)).count("passkey.login") == 1
