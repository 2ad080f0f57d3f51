"""A software WebAuthn authenticator for the ceremony tests, built from ``cryptography`` and CBOR.

It does what a browser and a platform authenticator do together: writes the
client data (type, challenge, origin), the authenticator data (the
relying-party id's hash, the flags, the sign count and, at registration, the
credential's id and COSE public key), an attestation object of format "none",
and ECDSA P-256 signatures over ``authenticatorData || SHA-256(clientDataJSON)``.
Each knob a test turns (another origin, another relying-party id, no user
verification, a sign count set back) is a keyword of :meth:`create` /
:meth:`get`, so what is refused is always a well-formed credential.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

FLAG_UP, FLAG_UV, FLAG_AT = 0x01, 0x04, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SoftAuthenticator:
    """One credential (made at :meth:`create`) on an authenticator for ``origin``."""

    def __init__(self, origin: str = "https://example.com", *, counting: bool = True) -> None:
        self.origin = origin
        self.counting = counting
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = secrets.token_bytes(32)
        self.user_handle: bytes | None = None
        self.sign_count = 0

    @property
    def id(self) -> str:
        return b64url(self.credential_id)

    def _cose_key(self) -> bytes:
        numbers = self.private.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin or self.origin,
                           "crossOrigin": False}).encode()

    def _auth_data(self, rp_id: str, *, uv: bool, up: bool, attested: bool) -> bytes:
        flags = (FLAG_UP if up else 0) | (FLAG_UV if uv else 0) | (FLAG_AT if attested else 0)
        data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", self.sign_count)
        if attested:
            data += bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id + self._cose_key()
        return data

    def create(self, show: dict[str, Any], *, origin: str | None = None, rp_id: str | None = None,
               uv: bool = True, up: bool = True) -> str:
        """The JSON a browser posts after ``navigator.credentials.create(show)``."""
        options = show["publicKey"]
        self.user_handle = base64.urlsafe_b64decode(options["user"]["id"] + "==")
        client = self._client_data("webauthn.create", options["challenge"], origin)
        auth = self._auth_data(rp_id or options["rp"]["id"], uv=uv, up=up, attested=True)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth})
        return json.dumps({"id": self.id, "rawId": self.id, "type": "public-key", "clientExtensionResults": {},
                           "response": {"clientDataJSON": b64url(client), "attestationObject": b64url(attestation),
                                        "transports": ["internal"]}})

    def get(self, show: dict[str, Any], *, origin: str | None = None, rp_id: str | None = None,
            uv: bool = True, up: bool = True, count: int | None = None) -> str:
        """The JSON a browser posts after ``navigator.credentials.get(show)``; ``count`` sets the sign count."""
        options = show["publicKey"]
        if count is not None:
            self.sign_count = count
        elif self.counting:
            self.sign_count += 1
        client = self._client_data("webauthn.get", options["challenge"], origin)
        auth = self._auth_data(rp_id or options["rpId"], uv=uv, up=up, attested=False)
        signature = self.private.sign(auth + hashlib.sha256(client).digest(), ec.ECDSA(hashes.SHA256()))
        return json.dumps({"id": self.id, "rawId": self.id, "type": "public-key", "clientExtensionResults": {},
                           "response": {"clientDataJSON": b64url(client), "authenticatorData": b64url(auth),
                                        "signature": b64url(signature),
                                        "userHandle": b64url(self.user_handle or b"")}})
