"""Base classes a plugin subclasses: :class:`Transport` (moves a message) and :class:`Payload` (what is sent).

A plugin registers the *classes* through the ``otp_pro_register_transports`` and
``otp_pro_register_payloads`` hooks; each :class:`~otp_pro.OtpPro` instance builds
its own instances with the validated ``providers.<name>`` settings, so two
instances with different settings never share state.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from .member import Member
from .secret import REDACTED, Secret
from .settings import Setting

if TYPE_CHECKING:
    from .core import OtpPro

log = logging.getLogger("otp_pro")


#: The channel of authenticator apps (TOTP): nothing is delivered, so it has no transport or payload.
TOTP = "totp"


class ProviderConfig(Mapping[str, Any]):
    """The validated settings of one transport or payload (``providers.<name>``).

    Secret values are :class:`~otp_pro.secret.Secret` objects; ``repr`` shows them redacted.
    """

    def __init__(self, name: str, values: Mapping[str, Any], specs: Sequence[Setting]):
        self.name = name
        self._values = dict(values)
        self.specs = tuple(specs)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def secret(self, key: str) -> str | None:
        """The revealed value of a secret setting, or None when unset."""
        value = self._values.get(key)
        if value is None:
            return None
        return value.reveal() if isinstance(value, Secret) else str(value)

    def redacted(self) -> dict[str, Any]:
        """Plain data with every secret shown as ``'********'`` (unset secrets stay None)."""
        out: dict[str, Any] = {}
        for key, value in self._values.items():
            if isinstance(value, Secret):
                out[key] = REDACTED
            elif isinstance(value, list) and any(isinstance(v, Secret) for v in value):
                out[key] = [REDACTED for _ in value]
            else:
                out[key] = value
        return out

    def __repr__(self) -> str:
        return f"ProviderConfig({self.name!r}, {self.redacted()!r})"


@dataclass
class Message:
    """A rendered message ready for a transport.

    ``text`` is always present; ``html`` only when a templating plugin produced one.
    ``headers`` are extra headers an email transport should add.
    ``sensitive`` lists strings (the code, the link) that must never be logged.
    """

    recipient: str
    subject: str
    text: str
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    member_id: str | None = None
    channel: str | None = None
    kind: str = "challenge"
    sensitive: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (
            f"Message(recipient={self.recipient!r}, subject={self.subject!r}, channel={self.channel!r}, "
            f"kind={self.kind!r})"
        )


@dataclass(frozen=True)
class Receipt:
    """What a transport reports after a successful send: its provider's message id, if any."""

    provider_message_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderTestResult:
    """Outcome of a provider test. ``dry_run`` results carry the rendered message and resolved parameters."""

    transport: str
    recipient: str
    dry_run: bool
    ok: bool
    subject: str
    text: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    provider_message_id: str | None = None
    error: str | None = None


class Transport:
    """Moves a message to a member. Subclass, set the class attributes, implement :meth:`send`.

    ``name`` is the transport id (``email``, ``sms_twilio``); ``label`` is shown
    to members and administrators; ``settings`` declares ``providers.<name>.*``.
    ``message_format`` is ``"email"`` (subject and long body, maybe HTML) or
    ``"text"`` (one short text, as for SMS).
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    settings: ClassVar[Sequence[Setting]] = ()
    message_format: ClassVar[str] = "text"
    #: False keeps the transport's channels out of the site's default channel set
    #: (they are offered only when listed in ``channels``), as for the dev outbox.
    offered_by_default: ClassVar[bool] = True

    def __init__(self, config: ProviderConfig, otp: OtpPro):
        self.config = config
        self.otp = otp

    def recipient(self, member: Member) -> str:
        """The address this transport sends to for ``member``.

        Raise :class:`~otp_pro.errors.RecipientUnavailable` with a short reason
        when the member cannot be reached (no email, invalid phone number); the
        channel is then hidden for that member and ``status`` says why.
        """
        raise NotImplementedError

    def send(self, message: Message) -> Receipt:
        """Deliver ``message``. Raise a :class:`~otp_pro.errors.DeliveryError` subclass on failure.

        Raise :class:`~otp_pro.errors.PermanentDeliveryError` when retrying the same
        recipient cannot help and :class:`~otp_pro.errors.TransientDeliveryError`
        otherwise. Never put the message text in the exception.
        """
        raise NotImplementedError

    def normalize_recipient(self, recipient: str) -> str:
        """Check and normalise a recipient typed by an administrator (provider test)."""
        return recipient

    def recipient_warnings(self, recipient: str) -> list[str]:
        """Doubts about a recipient :meth:`normalize_recipient` accepted, shown by a dry-run provider test.

        For a recipient a dry run may show but a real send would refuse or lose (an SMS transport:
        a well-formed number in no range known to be assigned). Empty by default.
        """
        return []

    def mask_recipient(self, recipient: str) -> str:
        """A hint of ``recipient`` that a member or support recognises but cannot harvest.

        Used for :attr:`~otp_pro.results.Challenge.recipient_hint`, the ``recipient`` of audit
        records and notices. The default, :func:`otp_pro.transports.mask_recipient`, knows email
        addresses and phone numbers; override it when the transport's recipients are something
        else (a chat id, a device name). Return a short string that does not reveal the whole
        recipient. If it raises or returns something else, the default hint is used.
        """
        return mask_recipient(recipient)

    def dry_run_parameters(self, message: Message) -> dict[str, Any]:
        """What :meth:`send` would pass to the provider, secrets redacted (shown by a dry-run provider test)."""
        return {"to": message.recipient}

    @property
    def configured(self) -> bool:
        """Whether the transport has what it needs to send. An unconfigured one stays out of the
        site's default channel set (it is offered only when listed in ``channels``)."""
        return True

    def check(self) -> list[str]:
        """Problems with this transport's configuration that settings types cannot catch (empty when fine).

        Return ``"<key>: <problem>"`` strings. ``check`` also runs when some values failed
        validation; those keys are then missing from ``self.config``, so read with
        ``self.config.get(key)``, not ``self.config[key]``.
        """
        return []

    def close(self) -> None:
        """Release what the transport holds (HTTP sessions, connections). Called by ``OtpPro.close``."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.config.redacted()!r}>"


@dataclass(frozen=True)
class PayloadValue:
    """What a payload produced for one challenge.

    ``secret`` is what the member will present back (the code, the link token); only its
    keyed hash is stored. ``display`` is put in the message as ``{payload}``.
    ``variables`` are added to the message's template variables.
    """

    secret: str
    display: str
    variables: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return "PayloadValue(secret='********', display='********')"


@dataclass(frozen=True)
class PayloadContext:
    """Facts a payload may use to build its value."""

    member: Member
    channel: str
    transport: str
    purpose: str
    issued_at: datetime
    expires_at: datetime
    #: What the link is bound to (a browser cookie's value): a secret of that browser, left out of ``repr``.
    binding: str | None = field(default=None, repr=False)


class Payload:
    """What is delivered: ``code`` (typed back by the member) or ``magic_link`` (clicked).

    ``entered_as_code`` says whether :meth:`OtpPro.verify` should accept the secret
    when the member types it. ``ttl_seconds`` overrides the site's
    ``code_ttl_seconds`` when not None.
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    settings: ClassVar[Sequence[Setting]] = ()
    entered_as_code: ClassVar[bool] = True

    def __init__(self, config: ProviderConfig, otp: OtpPro):
        self.config = config
        self.otp = otp

    @property
    def ttl_seconds(self) -> int | None:
        return None

    def supports(self, transport: Transport) -> bool:
        """Whether this payload can travel over ``transport`` (default: any)."""
        return True

    def create(self, context: PayloadContext) -> PayloadValue:
        """Make a fresh value. Use :mod:`secrets`; never reuse values."""
        raise NotImplementedError

    def available(self, member: Member) -> str | None:
        """A reason to hide channels with this payload for ``member`` (None when available)."""
        return None

    def check(self) -> list[str]:
        """Configuration problems that types cannot catch (empty when fine)."""
        return []


def recipient_hint(transport: Transport | None, recipient: str) -> str:
    """``transport.mask_recipient(recipient)``, or the default hint when there is no transport or its method fails.

    A hint is made after the message left (the audit record of a send): a third party's broken
    override must not turn a delivered code into an error, so it falls back and is logged by type.
    """
    if transport is not None and type(transport).mask_recipient is not Transport.mask_recipient:
        try:
            hint = transport.mask_recipient(recipient)
        except Exception as exc:  # noqa: BLE001 - a plugin's bug: the default hint instead, logged
            log.warning("otp-pro transport %s: mask_recipient failed (%s); the default hint is used",
                        transport.name, type(exc).__name__)
        else:
            if isinstance(hint, str):
                return hint[:128]
            log.warning("otp-pro transport %s: mask_recipient returned a %s, not a string; the default hint "
                        "is used", transport.name, type(hint).__name__)
    return mask_recipient(recipient)


def mask_recipient(recipient: str) -> str:
    """A hint of a recipient for audit records, pages and notices: ``a***@example.com``, ``+44*******123``.

    Enough for a member or support to recognise the address or number, not to harvest it.
    """
    if "@" in recipient:
        local, _, domain = recipient.partition("@")
        return f"{local[:1]}***@{domain}"
    if len(recipient) > 5:
        return recipient[:3] + "*" * (len(recipient) - 6) + recipient[-3:]
    return "***"
