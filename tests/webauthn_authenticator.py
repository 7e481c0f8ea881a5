"""A software WebAuthn authenticator for the passkey tests: real P-256 keys, real
authenticatorData, clientDataJSON and "none" attestation CBOR, signed as a security key would,
so that the server's checks run on genuine answers (and on answers bent one way at a time)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftCredential:
    credential_id: bytes
    private_key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0

    def cose_public_key(self) -> bytes:
        numbers = self.private_key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: -7,  # alg: ES256
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )


@dataclass
class SoftAuthenticator:
    """Holds credentials like a platform authenticator (discoverable, user-verifying)."""

    origin: str
    aaguid: bytes = bytes(16)
    credentials: dict[bytes, SoftCredential] = field(default_factory=dict)

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps(
            {
                "type": kind,
                "challenge": challenge,
                "origin": origin or self.origin,
                "crossOrigin": False,
            }
        ).encode()

    def register(
        self,
        options_json: str | dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        reuse: SoftCredential | None = None,
        user_verified: bool = True,
    ) -> dict[str, Any]:
        """The answer of navigator.credentials.create() to these options, as JSON. `reuse`
        answers with a credential made before (what exclusion is there to prevent)."""
        options = json.loads(options_json) if isinstance(options_json, str) else options_json
        excluded = {from_b64url(item["id"]) for item in options.get("excludeCredentials", [])}
        if reuse is None and excluded & set(self.credentials):
            raise RuntimeError("InvalidStateError: this authenticator holds an excluded passkey")
        credential = reuse or SoftCredential(
            credential_id=secrets.token_bytes(32),
            private_key=ec.generate_private_key(ec.SECP256R1()),
            rp_id=options["rp"]["id"],
            user_handle=from_b64url(options["user"]["id"]),
        )
        self.credentials[credential.credential_id] = credential
        flags = UP | AT | BE | BS | (UV if user_verified else 0)
        auth_data = (
            hashlib.sha256((rp_id or credential.rp_id).encode()).digest()
            + bytes([flags])
            + struct.pack(">I", credential.sign_count)
            + self.aaguid
            + struct.pack(">H", len(credential.credential_id))
            + credential.credential_id
            + credential.cose_public_key()
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        return {
            "id": b64url(credential.credential_id),
            "rawId": b64url(credential.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal", "hybrid"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def authenticate(
        self,
        options_json: str | dict[str, Any],
        *,
        credential: SoftCredential | None = None,
        origin: str | None = None,
        rp_id: str | None = None,
        sign_count: int | None = None,
        user_verified: bool = True,
    ) -> dict[str, Any]:
        """The answer of navigator.credentials.get(): signed by `credential`, else by the
        first one allowed (or, with no list, the first held for the relying party)."""
        options = json.loads(options_json) if isinstance(options_json, str) else options_json
        if credential is None:
            allowed = [from_b64url(item["id"]) for item in options.get("allowCredentials", [])]
            candidates = [
                held
                for held in self.credentials.values()
                if (held.credential_id in allowed if allowed else held.rp_id == options["rpId"])
            ]
            if not candidates:
                raise RuntimeError("NotAllowedError: no passkey for this request")
            credential = candidates[0]
        credential.sign_count = credential.sign_count + 1 if sign_count is None else sign_count
        flags = UP | BE | BS | (UV if user_verified else 0)
        auth_data = (
            hashlib.sha256((rp_id or credential.rp_id).encode()).digest()
            + bytes([flags])
            + struct.pack(">I", credential.sign_count)
        )
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = credential.private_key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64url(credential.credential_id),
            "rawId": b64url(credential.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(credential.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }
