"""The ``code`` payload: a numeric one-time code the member types back."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..i18n import N_
from ..transports import Payload, PayloadContext, PayloadValue


class CodePayload(Payload):
    """A uniformly random numeric code of ``code_length`` digits."""

    name = "code"
    label = N_("one-time code")
    entered_as_code = True

    def create(self, context: PayloadContext) -> PayloadValue:
        from ..crypto import new_code  # cryptography (via crypto) stays out of plugin discovery

        code = new_code(self.otp.settings.code_length)
        return PayloadValue(secret=code, display=code)


@hookimpl
def otp_pro_register_payloads(register):  # type: ignore[no-untyped-def]
    register(CodePayload)
