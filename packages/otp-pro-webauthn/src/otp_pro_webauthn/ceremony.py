"""The two WebAuthn ceremonies, judged with py_webauthn, each refusal named.

py_webauthn verifies everything (client data, authenticator data, the COSE
key, the attestation statement, the signature) but says why only in English
sentences. The pages, the audit log and the tests need a reason word, so the
checks a member or an attacker can trip (wrong origin, wrong relying party,
no user verification, a sign count that went back) are read here first from
the parsed client and authenticator data, each raising
:class:`~otp_pro.factor_types.AnswerRefused` with its reason; the library then
does the full verification, and what it still refuses is a bad signature or
attestation. Nothing of the answer is put in a message.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from webauthn import verify_authentication_response, verify_registration_response
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    decode_credential_public_key,
    parse_attestation_object,
    parse_authentication_credential_json,
    parse_authenticator_data,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorData,
    ClientDataType,
    CollectedClientData,
    RegistrationCredential,
)

from otp_pro.factor_types import AnswerRefused

from .options import RelyingParty

log = logging.getLogger("otp_pro_webauthn")

#: The refusal reasons (``VerifyResult.reason`` and the audit row's ``reason``), written once.
MALFORMED = "malformed_credential"
WRONG_CEREMONY = "wrong_ceremony"
WRONG_CHALLENGE = "wrong_challenge"
WRONG_ORIGIN = "wrong_origin"
WRONG_RP_ID = "wrong_rp_id"
USER_NOT_PRESENT = "user_not_present"
USER_NOT_VERIFIED = "user_not_verified"
#: A sign count that did not grow: the authenticator may have been cloned (WebAuthn §6.1.1).
COUNTER_REGRESSED = "counter_regressed"
ALGORITHM_NOT_ALLOWED = "algorithm_not_allowed"
BAD_ATTESTATION = "bad_attestation"
BAD_SIGNATURE = "bad_signature"

#: The largest answer read: a credential with a full attestation certificate chain is a few kilobytes.
MAX_ANSWER_CHARS = 16_384


@dataclass(frozen=True)
class Registered:
    """A verified registration: what the factor keeps."""

    credential_id: str
    public_key: str
    sign_count: int
    user_verified: bool
    backed_up: bool
    transports: tuple[str, ...]

    def kept(self) -> str:
        """The factor's secret (sealed by the core): JSON of the public parts the assertions need."""
        return json.dumps({"credential_id": self.credential_id, "public_key": self.public_key,
                           "transports": list(self.transports), "backed_up": self.backed_up})


def loads(answer: Any) -> dict[str, Any] | None:
    """``answer`` as the JSON object a browser posts (the credential), or None when it is not one."""
    if not isinstance(answer, str) or not answer.startswith("{") or len(answer) > MAX_ANSWER_CHARS:
        return None
    try:
        parsed = json.loads(answer)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("id"), str) \
            or not isinstance(parsed.get("response"), dict) \
            or not isinstance(parsed["response"].get("clientDataJSON"), str):
        return None
    return parsed


def is_assertion(parsed: dict[str, Any]) -> bool:
    """Whether a parsed credential answers ``navigator.credentials.get`` (not ``create``)."""
    return bool({"authenticatorData", "signature"} <= parsed["response"].keys())


def challenge_of(parsed: dict[str, Any]) -> str | None:
    """The challenge the credential's client data names (base64url, as issued), or None."""
    try:
        client = parse_client_data_json(_bytes(parsed["response"]["clientDataJSON"]))
    except (WebAuthnException, ValueError, TypeError):
        return None
    return bytes_to_base64url(client.challenge)


def _bytes(value: str) -> bytes:
    return base64url_to_bytes(value)


def _client(raw: bytes, ceremony: ClientDataType, party: RelyingParty) -> CollectedClientData:
    try:
        client = parse_client_data_json(raw)
    except (WebAuthnException, ValueError, TypeError) as exc:
        raise AnswerRefused(MALFORMED, "the client data is not WebAuthn's") from exc
    if client.type != ceremony:
        raise AnswerRefused(WRONG_CEREMONY, f"the client data is not of {ceremony.value}")
    if client.origin not in party.origins:
        # A phishing proxy's page has its own origin: this is what codes cannot refuse.
        raise AnswerRefused(WRONG_ORIGIN, "the ceremony ran on an origin the site does not allow")
    return client


def _authenticator(data: AuthenticatorData, party: RelyingParty) -> None:
    if data.rp_id_hash != hashlib.sha256(party.rp_id.encode()).digest():
        raise AnswerRefused(WRONG_RP_ID, "the credential is scoped to another relying-party id")
    if not data.flags.up:
        raise AnswerRefused(USER_NOT_PRESENT, "the authenticator did not see the member present")
    if party.requires_verification and not data.flags.uv:
        raise AnswerRefused(USER_NOT_VERIFIED, "user verification is required and was not performed")


def register(party: RelyingParty, challenge: bytes, answer: Any) -> Registered:
    """Verify a registration (``navigator.credentials.create``) answering ``challenge``."""
    parsed = loads(answer)
    if parsed is None or is_assertion(parsed):
        raise AnswerRefused(MALFORMED, "not a registration credential")
    try:
        credential: RegistrationCredential = parse_registration_credential_json(parsed)
        attestation = parse_attestation_object(credential.response.attestation_object)
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise AnswerRefused(MALFORMED, "not a registration credential") from exc
    client = _client(credential.response.client_data_json, ClientDataType.WEBAUTHN_CREATE, party)
    if client.challenge != challenge:
        raise AnswerRefused(WRONG_CHALLENGE, "the registration answers another challenge")
    _authenticator(attestation.auth_data, party)
    attested = attestation.auth_data.attested_credential_data
    if attested is not None:
        try:
            alg = decode_credential_public_key(attested.credential_public_key).alg
        except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
            raise AnswerRefused(MALFORMED, "the credential's public key cannot be read") from exc
        if alg not in party.algorithms:
            raise AnswerRefused(ALGORITHM_NOT_ALLOWED, "the credential's algorithm is not allowed here")
    try:
        verified = verify_registration_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=party.rp_id,
            expected_origin=list(party.origins), require_user_verification=party.requires_verification,
            supported_pub_key_algs=[COSEAlgorithmIdentifier(a) for a in party.algorithms])
    except WebAuthnException as exc:
        log.info("webauthn registration refused: %s", exc)
        raise AnswerRefused(BAD_ATTESTATION, "the registration's attestation does not verify") from exc
    transports = tuple(t.value for t in credential.response.transports or ())
    return Registered(
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=bytes_to_base64url(verified.credential_public_key), sign_count=verified.sign_count,
        user_verified=verified.user_verified, backed_up=verified.credential_backed_up, transports=transports)


def authenticate(party: RelyingParty, kept: dict[str, Any], counter: int | None, parsed: dict[str, Any]) -> int:
    """Verify an assertion (``navigator.credentials.get``) by the credential ``kept``, whose last sign count
    is ``counter``; return its new sign count. The core consumed the challenge it names before this."""
    try:
        credential: AuthenticationCredential = parse_authentication_credential_json(parsed)
        data = parse_authenticator_data(credential.response.authenticator_data)
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise AnswerRefused(MALFORMED, "not an authentication credential") from exc
    client = _client(credential.response.client_data_json, ClientDataType.WEBAUTHN_GET, party)
    _authenticator(data, party)
    last = counter or 0
    if (data.sign_count or last) and data.sign_count <= last:
        log.warning("webauthn sign count went back (%d after %d): possibly a cloned authenticator",
                    data.sign_count, last)
        raise AnswerRefused(COUNTER_REGRESSED, "the sign count went back: possibly a cloned authenticator")
    try:
        verified = verify_authentication_response(
            credential=credential, expected_challenge=client.challenge, expected_rp_id=party.rp_id,
            expected_origin=list(party.origins), credential_public_key=_bytes(kept["public_key"]),
            credential_current_sign_count=last, require_user_verification=party.requires_verification)
    except WebAuthnException as exc:
        log.info("webauthn assertion refused: %s", exc)
        raise AnswerRefused(BAD_SIGNATURE, "the assertion's signature does not verify") from exc
    return int(verified.new_sign_count)
