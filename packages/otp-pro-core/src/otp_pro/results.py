"""What the public API returns. Plain frozen dataclasses; none holds a secret except where said."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final


class ChallengeStatus:
    """Where a challenge's delivery stands: :attr:`Challenge.status`, the column ``otp_challenges.status``.

    ``pending``: recorded, an inline send in progress. ``queued``: waiting, encrypted,
    for a queue worker. ``sending``: claimed by a worker. ``sent``: the transport took
    it. ``failed``: the transport refused it (or the queue could not take it).
    ``replaced``: voided while still queued, by a newer challenge or a reset.
    ``issued``: made by a factor type and handed to the caller to show (a passkey's
    challenge): nothing is delivered, and it never counts as a send.
    """

    PENDING: Final = "pending"
    QUEUED: Final = "queued"
    SENDING: Final = "sending"
    SENT: Final = "sent"
    FAILED: Final = "failed"
    REPLACED: Final = "replaced"
    ISSUED: Final = "issued"


class Purpose:
    """What a challenge's code or link proves: :attr:`Challenge.purpose`, the column ``otp_challenges.purpose``."""

    #: The second step of a sign-in.
    VERIFY: Final = "verify"
    #: Confirming a channel being set up.
    SETUP: Final = "setup"


class Reason:
    """Why :meth:`OtpPro.verify` or :meth:`OtpPro.verify_token` refused (:attr:`VerifyResult.reason`)."""

    INVALID: Final = "invalid"
    EXPIRED: Final = "expired"
    MALFORMED: Final = "malformed"
    LOCKED: Final = "locked"
    NOT_ENROLLED: Final = "not_enrolled"
    #: Tokens only: no such token, already used, replaced by a newer one, or clicked in another browser.
    UNKNOWN: Final = "unknown"
    USED: Final = "used"
    REPLACED: Final = "replaced"
    #: Also the audited reason of a setup confirmation refused with :class:`~otp_pro.SetupBegunElsewhere`.
    WRONG_BROWSER: Final = "wrong_browser"
    #: The caller's IP address is over a per-IP limit (``retry_after`` says for how long).
    RATE_LIMITED: Final = "rate_limited"


class Method:
    """How a verification was passed (:attr:`VerifyResult.method`); a clicked token gives its payload's name."""

    CODE: Final = "code"
    TOTP: Final = "totp"
    BACKUP_CODE: Final = "backup_code"


@dataclass(frozen=True)
class ChannelInfo:
    """A channel as offered to one member: allowed by policy, maybe unavailable (``reason`` says why)."""

    name: str
    label: str
    available: bool
    reason: str | None = None


@dataclass(frozen=True)
class FactorInfo:
    """One of a member's factors, as :meth:`OtpPro.factors` lists it (nothing secret).

    ``kind`` is its channel (``totp``, ``email:code``, ``sms_twilio:code``...);
    ``label`` the member's name for it, or the channel's label when they gave
    none; ``recipient_hint`` the masked address a delivered factor was confirmed
    at. ``needs_reconfirming`` says the member record now shows another address:
    nothing is sent to this factor until the new one is confirmed. ``usable``
    says the factor counts now (its kind installed and allowed by the member's
    role, and not waiting for re-confirmation); ``reason`` says why not.
    """

    id: int
    kind: str
    label: str
    is_default: bool
    created_at: datetime
    last_used_at: datetime | None = None
    recipient_hint: str | None = None
    needs_reconfirming: bool = False
    usable: bool = True
    reason: str | None = None
    #: The label the member gave, None when they gave none (``label`` is then the channel's).
    own_label: str | None = None


@dataclass(frozen=True)
class MemberStatus:
    """Where a member stands.

    ``requirement`` is ``not_required``, ``optional`` or ``required``; ``enrolled``
    says a second factor is set up on ``channel``; ``channels`` are the channels the
    member may use now (policy and availability); ``unavailable`` maps the other
    allowed channels to the reason they are hidden. ``must_setup`` is true for a
    required member without a factor whose grace period is over; ``in_grace``
    while it runs. ``locked_until`` is set during a lockout (``datetime.max`` style
    far future for the hard lock after 100 consecutive failures). ``seen`` says
    otp-pro holds state for the member (some earlier operation wrote their row):
    false for an id nothing was ever done for. ``factors`` lists the member's
    factors (:class:`FactorInfo`); ``enrolled`` is true while one of them counts,
    and ``channel`` is then the default one's channel.
    """

    member_id: str
    requirement: str
    enrolled: bool
    channel: str | None
    channels: tuple[str, ...]
    default_channel: str | None
    unavailable: Mapping[str, str]
    grace_ends_at: datetime | None
    must_setup: bool
    in_grace: bool
    locked_until: datetime | None
    backup_codes_remaining: int
    can_disable: bool
    disabled: bool = False
    seen: bool = False
    factors: tuple[FactorInfo, ...] = ()

    @property
    def verification_needed(self) -> bool:
        """Whether the member must pass the second step at sign-in."""
        return self.enrolled and self.requirement != "not_required"


@dataclass(frozen=True)
class Standing:
    """What the web gate decides from: the part of :class:`MemberStatus` read in one statement.

    :meth:`OtpPro.standing` returns it; the fields mean what they mean on
    :class:`MemberStatus` (``must_setup``: required, not set up, grace period over).
    """

    member_id: str
    requirement: str
    enrolled: bool
    must_setup: bool
    in_grace: bool

    @property
    def verification_needed(self) -> bool:
        """Whether the member must pass the second step at sign-in."""
        return self.enrolled and self.requirement != "not_required"


@dataclass(frozen=True)
class Challenge:
    """A code or link that was sent. ``id`` identifies it; the secret itself is never kept."""

    id: int
    member_id: str
    channel: str
    purpose: str
    created_at: datetime
    expires_at: datetime
    recipient_hint: str | None = None
    provider_message_id: str | None = None
    #: ``sent`` when delivered in the request; ``queued`` when a task-queue dispatcher will send it.
    status: str = ChallengeStatus.SENT


@dataclass(frozen=True)
class DeliveryStatus:
    """Where the delivery of a challenge stands (:meth:`OtpPro.delivery_status`).

    ``status`` is ``queued`` (waiting for a worker), ``sending``, ``sent``, ``failed``
    or ``replaced`` (a newer challenge took its place before it was sent).
    ``error_code`` names a failure (the provider's code, ``expired``, ``enqueue``);
    ``attempts`` counts the sends tried by a queue worker. ``fallback_channels``
    are the member's other available channels, in policy order, offered when
    ``status`` is ``failed`` (empty otherwise).
    """

    challenge_id: int
    channel: str
    status: str
    purpose: str
    created_at: datetime
    error_code: str | None = None
    attempts: int = 0
    sent_at: datetime | None = None
    fallback_channels: tuple[str, ...] = ()

    @property
    def done(self) -> bool:
        """Whether the status is final (``sent``, ``failed`` or ``replaced``): a page can stop polling."""
        return self.status in (ChallengeStatus.SENT, ChallengeStatus.FAILED, ChallengeStatus.REPLACED)


@dataclass(frozen=True)
class SetupInfo:
    """Returned by ``begin_setup``.

    For ``totp``: ``provisioning_uri`` (an ``otpauth://`` URI holding the seed: show it
    only to the member, once) and ``qr_svg`` (the same as a QR code). For a delivered
    channel: ``challenge`` is the confirmation code that was sent. ``show`` holds all
    a factor type gave to show the member (a third party's type puts its own keys
    there); like the seed, it is left out of ``repr``.
    """

    channel: str
    expires_at: datetime
    provisioning_uri: str | None = None
    qr_svg: str | None = None
    secret: str | None = None
    challenge: Challenge | None = None
    show: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"SetupInfo(channel={self.channel!r}, expires_at={self.expires_at!r})"


@dataclass(frozen=True)
class IssuedChallenge:
    """Returned by :meth:`OtpPro.begin_challenge`: what the browser or device needs to answer a challenge of a
    factor type that issues its own (``show``: a passkey ceremony's options) and when it stops being
    accepted. Answer it with :meth:`OtpPro.verify` and the same ``binding``. ``show`` is left out of ``repr``."""

    channel: str
    expires_at: datetime
    show: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"IssuedChallenge(channel={self.channel!r}, expires_at={self.expires_at!r})"


@dataclass(frozen=True)
class VerifyResult:
    """The answer to ``verify``. ``ok`` alone decides; ``reason`` explains a refusal.

    ``method`` is ``code``, ``totp``, ``backup_code`` or a payload name such as
    ``magic_link``. ``reason`` is one of ``invalid``, ``expired``, ``malformed``,
    ``locked``, ``not_enrolled``, and for tokens also ``unknown``, ``used``,
    ``replaced``, ``wrong_browser`` and ``rate_limited``; an answer to an issued challenge
    (a passkey's) may also be refused as ``expired``, ``used``, ``wrong_browser`` or with
    its factor type's own reason (``counter_regressed``). ``attempts_remaining`` counts
    failures left before a lockout (not given for a refused token: a link that was
    issued is not a guess and does not count). ``member_id`` is set by :meth:`OtpPro.verify_token` (the token
    names the member). ``backup_codes`` is set when a token completed a setup: show
    them once (they are left out of ``repr``).
    """

    ok: bool
    method: str | None = None
    reason: str | None = None
    attempts_remaining: int | None = None
    locked_until: datetime | None = None
    channel: str | None = None
    backup_codes_remaining: int | None = None
    member_id: str | None = None
    purpose: str | None = None
    backup_codes: tuple[str, ...] | None = field(default=None, repr=False)
    #: Seconds until a ``rate_limited`` caller may try again.
    retry_after: int | None = None
    #: The factor that answered (None for a backup code, a setup's confirmation and a refusal).
    factor_id: int | None = None

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class TrustedDevice:
    """A device that skips the second step until ``expires_at``."""

    id: int
    label: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None = None


@dataclass(frozen=True)
class PluginInfo:
    """A plugin the instance knows: built-in or from the ``otp_pro`` entry-point group."""

    name: str
    module: str | None
    distribution: str | None
    version: str | None
    builtin: bool
    enabled: bool
    error: str | None = None
    transports: tuple[str, ...] = field(default=())
    payloads: tuple[str, ...] = field(default=())
    factor_types: tuple[str, ...] = field(default=())
