"""The ``webauthn`` factor type: a passkey or security key, registered and answered through the browser.

A plain :class:`~otp_pro.factor_types.FactorType` that issues its own
challenges, as a third party's would be: the core keeps the challenge (its
keyed hash, bound to the session, single use, :data:`CHALLENGE_SECONDS`), the
member's lock and counts; this type makes the ceremonies' options and judges
the answers (:mod:`.ceremony`). What a factor keeps (sealed by the core) is the
credential's public key and id; the id is also the factor's public ``handle``,
unique among passkeys, so one credential belongs to one member and a
discoverable credential names its member at passwordless sign-in.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from otp_pro import Member
from otp_pro.errors import ConfigurationError
from otp_pro.factor_types import Confirmed, Description, Enrolment, FactorType, Issued, StoredFactor

from . import wording
from .options import CHALLENGE_SECONDS, SECTION, RelyingParty, relying_party

# py_webauthn (with cryptography, pyOpenSSL and pyasn1) and .ceremony, which uses it, are imported by the
# methods that make or judge a ceremony: plugin discovery (``otp-pro --help``, every OtpPro) does not need them.

#: Bytes of randomness in each challenge (WebAuthn asks for at least 16).
CHALLENGE_BYTES = 32


class WebAuthnFactor(FactorType):
    """Passkeys and security keys (WebAuthn level 2), verified with py_webauthn."""

    name = SECTION
    label = wording.LABEL
    answer_is_code = False
    issues_challenge = True
    # Many authenticators (every synced passkey) keep the sign count at 0: the challenge is what is used once.
    counter_must_grow = False
    challenge_seconds = CHALLENGE_SECONDS

    @property
    def party(self) -> RelyingParty:
        """The relying party of ``providers.webauthn`` (start-up refuses the channel without one)."""
        party = relying_party(self.otp.plugin_settings.get(SECTION), self.otp.settings.site_name)
        if party is None:
            raise ConfigurationError(f"providers.{SECTION}.rp_id is not set", key=f"providers.{SECTION}.rp_id")
        return party

    def user_handle(self, member: Member) -> bytes:
        """The WebAuthn user id of ``member``: a keyed hash of their id, so the authenticator learns nothing
        of the site's accounts and the same member always has the same user id."""
        return bytes.fromhex(self.otp.keys.hash("webauthn_user", member.id))

    # -------------------------------------------------------------- enrolment

    def begin(self, member: Member, *, imported: str | None = None) -> Enrolment:
        if imported is not None:
            from otp_pro import SetupError

            raise SetupError("a passkey cannot be imported: it is made by the member's authenticator")
        from webauthn import generate_registration_options
        from webauthn.helpers import bytes_to_base64url, options_to_json_dict
        from webauthn.helpers.cose import COSEAlgorithmIdentifier
        from webauthn.helpers.structs import (
            AttestationConveyancePreference,
            AuthenticatorSelectionCriteria,
            ResidentKeyRequirement,
            UserVerificationRequirement,
        )

        party = self.party
        challenge = secrets.token_bytes(CHALLENGE_BYTES)
        options = generate_registration_options(
            rp_id=party.rp_id, rp_name=party.rp_name, user_id=self.user_handle(member),
            user_name=member.email or member.name or member.id, user_display_name=member.name or member.email or "",
            challenge=challenge, timeout=party.timeout_seconds * 1000,
            attestation=AttestationConveyancePreference(party.attestation),
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement(party.resident_key),
                require_resident_key=party.resident_key == "required",
                user_verification=UserVerificationRequirement(party.user_verification)),
            supported_pub_key_algs=[COSEAlgorithmIdentifier(a) for a in party.algorithms])
        pending = json.dumps({"challenge": bytes_to_base64url(challenge)})
        return Enrolment(pending, {"ceremony": "create", "publicKey": options_to_json_dict(options)})

    def confirm(self, member: Member, secret: str, answer: Any, now: datetime) -> Confirmed:
        from webauthn.helpers import base64url_to_bytes

        from . import ceremony

        challenge = base64url_to_bytes(json.loads(secret)["challenge"])
        made = ceremony.register(self.party, challenge, answer)
        return Confirmed(counter=made.sign_count, secret=made.kept(), handle=made.credential_id)

    # ----------------------------------------------------------- verification

    def issue(self, member: Member, factors: Sequence[StoredFactor], now: datetime) -> Issued:
        return self.issue_for([json.loads(f.secret) for f in factors])

    def issue_for(self, credentials: Sequence[dict[str, Any]], *, verify_user: bool = False) -> Issued:
        """A challenge for any of ``credentials`` (kept JSON); none: a discoverable credential answers.
        ``verify_user``: ask the authenticator to verify the user whatever the site's setting."""
        from webauthn import generate_authentication_options
        from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, options_to_json_dict
        from webauthn.helpers.structs import (
            AuthenticatorTransport,
            PublicKeyCredentialDescriptor,
            UserVerificationRequirement,
        )

        party = self.party
        challenge = secrets.token_bytes(CHALLENGE_BYTES)
        allowed = [PublicKeyCredentialDescriptor(
            id=base64url_to_bytes(kept["credential_id"]),
            transports=[AuthenticatorTransport(t) for t in kept.get("transports", ()) if _transport(t)] or None)
            for kept in credentials]
        options = generate_authentication_options(
            rp_id=party.rp_id, challenge=challenge, timeout=party.timeout_seconds * 1000,
            allow_credentials=allowed,
            user_verification=UserVerificationRequirement("required" if verify_user else party.user_verification))
        value = bytes_to_base64url(challenge)
        return Issued(value, {"ceremony": "get", "publicKey": options_to_json_dict(options)})

    def challenge_of(self, answer: Any) -> str | None:
        from . import ceremony

        parsed = ceremony.loads(answer)
        return ceremony.challenge_of(parsed) if parsed is not None else None

    def check(self, member: Member, secret: str, counter: int | None, answer: Any, now: datetime) -> int | None:
        from . import ceremony

        parsed = ceremony.loads(answer)
        kept = json.loads(secret)
        if parsed is None or not ceremony.is_assertion(parsed) or parsed["id"] != kept["credential_id"]:
            return None  # another of the member's credentials, or not an assertion at all
        return ceremony.authenticate(self.party, kept, counter, parsed)

    # ------------------------------------------------------- as a first factor

    def offers_first_factor(self) -> bool:
        """``providers.webauthn.passwordless``: "Sign in with a passkey" on the login page."""
        party = relying_party(self.otp.plugin_settings.get(SECTION), self.otp.settings.site_name)
        return party is not None and party.passwordless

    def issue_first(self, now: datetime) -> Issued:
        # No credential listed: the authenticator offers the member its discoverable credentials for the site;
        # the user is verified (PIN, biometric), since no password came before.
        return self.issue_for([], verify_user=True)

    def handle_of(self, answer: Any) -> str | None:
        from . import ceremony

        parsed = ceremony.loads(answer)
        return parsed["id"] if parsed is not None and ceremony.is_assertion(parsed) else None

    def check_first(self, member: Member, secret: str, counter: int | None, answer: Any, now: datetime) -> int | None:
        from . import ceremony

        parsed = ceremony.loads(answer)
        kept = json.loads(secret)
        if parsed is None or not ceremony.is_assertion(parsed) or parsed["id"] != kept["credential_id"]:
            return None
        # Signing in on its own, a passkey stands for both factors: something held and the user verified.
        return ceremony.authenticate(replace(self.party, user_verification="required"), kept, counter, parsed)

    def accepts(self, answer: Any) -> bool:
        from . import ceremony

        return ceremony.loads(answer) is not None

    # ------------------------------------------------------------------ pages

    def describe(self) -> Description:
        return Description("webauthn", wording.hint())


def _transport(value: Any) -> bool:
    from webauthn.helpers.structs import AuthenticatorTransport

    try:
        AuthenticatorTransport(value)
    except ValueError:
        return False
    return True
