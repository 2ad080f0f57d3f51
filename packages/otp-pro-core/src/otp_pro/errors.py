"""Every error otp-pro raises derives from :class:`OtpProError`.

Messages name what was wrong and never contain a secret (code, token,
password, auth token).
"""

from __future__ import annotations

from datetime import datetime


class OtpProError(Exception):
    """Base class of every error raised by otp-pro and its companions."""


class ConfigurationError(OtpProError, ValueError):
    """A setting is missing, has the wrong type or an unsupported value.

    ``key`` is the dotted settings key at fault (``roles.editor.channels``),
    ``problems`` lists every problem found when several were collected.
    """

    def __init__(self, message: str, *, key: str | None = None, problems: list[str] | None = None):
        super().__init__(message)
        self.key = key
        self.problems = problems or [message]


class PluginError(OtpProError):
    """A plugin misbehaved: it could not be loaded or registered something invalid."""

    def __init__(self, message: str, *, plugin: str | None = None):
        super().__init__(message)
        self.plugin = plugin


class DeliveryError(OtpProError):
    """A transport could not deliver a message.

    ``permanent`` says whether retrying the same recipient can help;
    ``provider_code`` carries the provider's own error code (never a secret);
    ``provider_reply`` the provider's own words about the refusal (an SMTP server's
    ``550 5.1.1 mailbox unavailable``), cleaned and trimmed by the transport so that
    it holds no secret: never a reply to a login, digits and token-like runs redacted,
    addresses masked. The core audits it with the failure.
    """

    permanent: bool = False
    #: The id of the challenge whose delivery failed, when there was one (set by the core).
    challenge_id: int | None = None
    #: Seconds the provider asked to wait before another attempt (an HTTP ``Retry-After``), when it said.
    retry_after: float | None = None
    #: The provider's own words about the refusal, cleaned by the transport (see above), when it gave any.
    provider_reply: str | None = None

    def __init__(
        self,
        message: str,
        *,
        transport: str | None = None,
        provider_code: str | None = None,
        permanent: bool | None = None,
        provider_reply: str | None = None,
    ):
        super().__init__(message)
        self.transport = transport
        self.provider_code = provider_code
        self.provider_reply = provider_reply
        if permanent is not None:
            self.permanent = permanent


class PermanentDeliveryError(DeliveryError):
    """Delivery failed and retrying the same recipient will not help (bad number, auth)."""

    permanent = True


class TransientDeliveryError(DeliveryError):
    """Delivery failed for a reason that may pass (timeout, rate limit, 5xx)."""

    permanent = False


class StorageError(OtpProError):
    """The database failed during an operation (connection lost, server gone, locked too long).

    The operation's transaction was rolled back: nothing of it was stored, so
    repeating it is safe. ``reason`` is a short word for the failure
    (``connection_lost``, ``unavailable``, ``locked``, ``error``); the message
    names the backend and the driver's error class, never SQL or its parameters.
    """

    def __init__(self, message: str, *, reason: str = "error", backend: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.backend = backend


class RecipientUnavailable(OtpProError):
    """A transport cannot reach this member (no email, no valid phone number).

    ``reason`` is a short, member-safe explanation shown in ``status``.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class PolicyError(OtpProError):
    """The policy refuses the operation (a required member disabling OTP, a channel not allowed)."""


class ChannelUnavailable(PolicyError):
    """The channel is not allowed for this member or not available now."""

    def __init__(self, message: str, *, channel: str | None = None, reason: str | None = None):
        super().__init__(message)
        self.channel = channel
        self.reason = reason


class FactorNotEnrolled(ChannelUnavailable):
    """The member has no factor on this channel: nothing is sent to it and no answer on it is accepted.

    The role may allow the channel; only the member's own, proven factors count.
    """


class FactorNeedsReconfirming(ChannelUnavailable):
    """The member's factor on this channel was confirmed at another address than the member record shows now.

    Nothing is sent (to either address) until the member confirms the new one
    (``begin_setup(member, channel, reconfirm=factor_id)``). ``factor_id`` names the factor.
    """

    def __init__(self, message: str, *, channel: str | None = None, reason: str | None = None,
                 factor_id: int | None = None):
        super().__init__(message, channel=channel, reason=reason)
        self.factor_id = factor_id


class UnknownFactor(OtpProError):
    """No factor of this member has that id (another member's factor is unknown too)."""

    def __init__(self, factor_id: object):
        super().__init__(f"the member has no factor with id {str(factor_id)[:40]!r}")
        self.factor_id = factor_id


class InvalidFactorLabel(OtpProError, ValueError):
    """A factor's label is not a string of at most 100 printable characters."""


class NotEnrolled(PolicyError):
    """The operation needs a configured second factor and the member has none."""


class SetupError(OtpProError):
    """``complete_setup`` was called without a pending setup, the setup expired, or another caller began it."""


class SetupBegunElsewhere(SetupError):
    """The pending setup was begun with another ``binding`` (another session): start the setup again from here.

    Raised before the code is looked at, so the caller learns nothing about it
    and no attempt is counted.
    """


class ThrottledError(OtpProError):
    """Sending was refused by the cooldown or an hourly cap.

    ``retry_after`` is the number of seconds after which the send may succeed.
    """

    def __init__(self, message: str, *, retry_after: int, limit: str):
        super().__init__(message)
        self.retry_after = retry_after
        self.limit = limit


class LockedOut(OtpProError):
    """The member is locked after too many failures; ``locked_until`` says until when."""

    def __init__(self, message: str, *, locked_until: datetime | None):
        super().__init__(message)
        self.locked_until = locked_until


class UnknownMember(OtpProError, LookupError):
    """No member with that id could be found through the ``otp_pro_member_lookup`` hook."""


class NotFound(OtpProError, LookupError):
    """A record (trusted device, challenge) does not exist for this member."""


class InvalidCode(OtpProError):
    """``complete_setup`` was given a wrong or malformed code; ``result`` has the details.

    ``result.attempts_remaining`` and ``result.locked_until`` tell the member what is left.
    """

    def __init__(self, message: str, *, result: object):
        super().__init__(message)
        self.result = result
