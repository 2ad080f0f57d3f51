"""Security notifications: a member hears, out of band, when their second factor changes.

Setup, reset, disable, a new set of backup codes and a new trusted device each
send the member a notice (``notification`` message kind, so a templating plugin
such as otp-pro-html-email styles it) saying what changed, when, from which
address and browser, and what to do if it was not them. A notice never holds a
code, a token or a seed.

This built-in uses public hooks and methods only (``otp_pro_register_settings``,
``otp_pro_event``, :meth:`OtpPro.member`, :meth:`OtpPro.render_message`,
:meth:`OtpPro.record_event`), so a third party could write the same plugin.
Settings: ``[providers.notifications]`` (``enabled``, ``notify_on``,
``transports``); ``disable_plugins = ["otp_pro_notify"]`` removes it entirely.

Which transport carries a notice: the first of ``transports`` (default
``email``) that the site uses and that can reach the member, otherwise the
transport of the member's own channel. A member with only an authenticator app
and no email address gets none. A notice that cannot be delivered never undoes
the change nor reaches the caller: it is logged (without the message) and
audited as ``notification_failed``; one delivered is audited as
``notification_sent``; one that no transport could reach the member for is
audited as ``notification_unsent``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .. import i18n
from ..errors import DeliveryError, PluginError, RecipientUnavailable, UnknownMember
from ..hookspecs import hookimpl
from ..i18n import N_
from ..member import Member
from ..settings import Setting
from ..transports import TOTP, recipient_hint

if TYPE_CHECKING:  # annotations only: plugin discovery must not import SQLAlchemy (audit, core)
    from ..audit import AuditEvent
    from ..core import OtpPro
    from ..transports import ProviderConfig, Transport

log = logging.getLogger("otp_pro.notify")

SECTION = "notifications"

# The factor changes (otp_pro.audit.FACTOR_CHANGES; a test keeps the two equal), named here
# because importing otp_pro.audit would load SQLAlchemy during plugin discovery.
SETUP_COMPLETED = "setup_completed"
RESET = "reset"
DISABLED = "disabled"
BACKUP_CODES_GENERATED = "backup_codes_generated"
DEVICE_TRUSTED = "device_trusted"
DEVICE_REVOKED = "device_revoked"
FACTOR_REMOVED = "factor_removed"
NOTIFIABLE = (SETUP_COMPLETED, FACTOR_REMOVED, RESET, DISABLED, BACKUP_CODES_GENERATED, DEVICE_TRUSTED,
              DEVICE_REVOKED)
#: Sent unless ``notify_on`` says otherwise (revoking a device is the member tidying up: opt in).
DEFAULT_NOTIFY_ON = (SETUP_COMPLETED, FACTOR_REMOVED, RESET, DISABLED, BACKUP_CODES_GENERATED, DEVICE_TRUSTED)

#: Audit kinds this plugin writes.
NOTIFICATION_SENT = "notification_sent"
NOTIFICATION_FAILED = "notification_failed"
#: No transport could reach the member, so no notice was attempted (``reason`` below).
NOTIFICATION_UNSENT = "notification_unsent"
#: The ``notification_unsent`` reason: no transport the site uses has a recipient for the member.
NO_TRANSPORT = "no_transport"


def _check_kinds(values: list[str]) -> None:
    for value in values:
        if value not in NOTIFIABLE:
            raise ValueError(f"unknown factor change {value!r} (allowed: {', '.join(NOTIFIABLE)})")


SETTINGS: tuple[Setting, ...] = (
    Setting("enabled", bool, True, "send members a notice when their second factor changes"),
    Setting("notify_on", list, list(DEFAULT_NOTIFY_ON), "the factor changes that send a notice",
            check=_check_kinds),
    Setting("transports", list, ["email"], "transports tried first, in order (when the site uses one and it can "
            "reach the member); then the transport of the member's own channel"),
)

#: What each change says (gettext messages, translated into the member's language when the notice is made).
_NOTICES: dict[str, str] = {
    SETUP_COMPLETED: N_("Two-step verification was set up on your account. Your second step is now: %(method)s."),
    FACTOR_REMOVED: N_("A second step was removed from your account: %(method)s."),
    RESET: N_("Two-step verification on your account was reset: your second step, backup codes and trusted "
              "devices were removed, and you will be asked to set it up again."),
    DISABLED: N_("Two-step verification was switched off on your account: your second step, backup codes and "
                 "trusted devices were removed."),
    BACKUP_CODES_GENERATED: N_("New backup codes were made for your account; the previous ones no longer work."),
    DEVICE_REVOKED: N_("A device was removed from your trusted devices."),
}
#: A setup that added a factor next to others (``factors`` in the event's details), or confirmed a new address.
_ANOTHER_FACTOR = N_("Another second step was added to your account: %(method)s.")
_RECONFIRMED = N_("The address of a second step of your account was changed: %(method)s.")

# (substring of the user agent, name shown), first match wins: Edge and Opera also say "Chrome",
# Chrome also says "Safari".
_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
             ("CriOS/", "Chrome"), ("Safari/", "Safari"), ("curl/", "curl"))
_SYSTEMS = (("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iPadOS"), ("Windows", "Windows"),
            ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def describe_browser(user_agent: str | None) -> str:
    """A short name for a User-Agent header (``"Firefox on Linux"``); the clipped header when unknown."""
    if not user_agent:
        return ""
    browser = next((name for key, name in _BROWSERS if key in user_agent), "")
    system = next((name for key, name in _SYSTEMS if key in user_agent), "")
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or system
    text = "".join(ch for ch in user_agent if ch.isprintable()).strip()
    return text[:60] + ("..." if len(text) > 60 else "")


def format_when(at: datetime) -> str:
    """``24 Nov 2026, 01:40 UTC``: the time of a change as a member reads it (in their language's way)."""
    if at.tzinfo is None:  # SQLite hands back naive UTC datetimes
        at = at.replace(tzinfo=timezone.utc)
    at = at.astimezone(timezone.utc)
    if i18n.current().locale == "en":
        return at.strftime("%d %b %Y, %H:%M UTC")  # day first, 24 hours: read the same way everywhere
    return i18n.format_datetime(at.replace(tzinfo=None), "medium") + " UTC"


def notice_variables(otp: OtpPro, event: AuditEvent) -> dict[str, Any]:
    """The message variables of the notice for ``event`` (a factor change); no secret is among them.

    ``notice`` (what changed, one or two sentences), ``change`` (the event kind),
    ``changed_at`` (aware UTC datetime), ``notice_when`` (``24 Nov 2026, 01:40 UTC``),
    ``notice_where`` (``203.0.113.9 (Firefox on Linux)``, empty when unknown),
    ``by_administrator`` and ``notice_details`` (the when and where lines, for plain text).
    """
    definition = otp.channels.get(event.channel or "")
    label = str(event.details.get("label") or "") if event.details else ""
    label = "".join(ch for ch in label if ch.isprintable())[:60]
    wording = _NOTICES.get(event.kind, N_("A security setting of your account changed."))
    if event.kind == SETUP_COMPLETED and event.details:
        if event.details.get("reconfirmed"):
            wording = _RECONFIRMED
        elif int(event.details.get("factors") or 1) > 1:
            wording = _ANOTHER_FACTOR
    method = i18n.label(definition.label) if definition is not None else (event.channel or "unknown")
    if event.kind == DEVICE_TRUSTED:
        days = otp.settings.trusted_device_days
        notice = i18n.ngettext(
            "A device was added to your trusted devices (%(label)s): it can sign in without the second step "
            "for %(num)d day.",
            "A device was added to your trusted devices (%(label)s): it can sign in without the second step "
            "for %(num)d days.", days, label=label or i18n.gettext("unnamed device"))
    else:
        notice = i18n.gettext(wording, method=method) if "%(method)s" in wording else i18n.gettext(wording)
    by_administrator = event.actor is not None and event.actor != event.member_id
    if by_administrator:
        notice += " " + i18n.gettext("This was done by a site administrator.")
    browser = describe_browser(event.user_agent)
    # The address comes from the request (maybe a forwarded header): one printable line, never a paragraph.
    where = "".join(ch for ch in (event.ip or "") if ch.isprintable() and not ch.isspace())[:64]
    if browser:
        where = f"{where} ({browser})" if where else browser
    when = format_when(event.at)
    details = (i18n.gettext("When: %(when)s", when=when) + "\n"
               + (i18n.gettext("From: %(where)s", where=where) + "\n" if where else "") + "\n")
    return {
        "notice": notice,
        "change": event.kind,
        "changed_at": event.at,
        "notice_when": when,
        "notice_where": where,
        "by_administrator": by_administrator,
        "notice_details": details,
    }


def preview_variables(otp: OtpPro, kind: str = SETUP_COMPLETED) -> dict[str, Any]:
    """Sample notice variables for previews (``otp-pro templates preview notification``, html-email samples)."""
    from ..audit import AuditEvent

    channel = TOTP if TOTP in otp.channels else next(iter(otp.channels), None)
    sample = AuditEvent(kind=kind, at=otp.clock(), member_id="preview", channel=channel, ip="203.0.113.9",
                        user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                        details={"label": "Firefox on Linux"})
    return notice_variables(otp, sample)


def _site_uses(otp: OtpPro, transport: Transport) -> bool:
    """Whether the site set ``transport`` up: a ``providers.<name>`` section, or a channel of it offered somewhere."""
    if not transport.configured:
        return False
    if transport.name in otp.settings.providers:
        return True
    offered = set(otp.settings.channels if otp.settings.channels is not None else otp.registered_channels)
    for role in otp.settings.roles.values():
        offered.update(role.channels or ())
    return any(name.partition(":")[0] == transport.name for name in offered)


def _channel_for(otp: OtpPro, transport: Transport, preferred: str | None) -> str:
    """A channel name of ``transport`` to render with: the member's own when it is on it, else its code channel."""
    names = [name for name, c in otp.channels.items() if c.transport is transport]
    if preferred in names:
        return str(preferred)
    code = f"{transport.name}:code"
    if code in names:
        return code
    return names[0] if names else transport.name


def route(otp: OtpPro, member: Member, event: AuditEvent,
          transports: Sequence[str] = ("email",)) -> tuple[Transport, str, str] | None:
    """Where the notice goes: ``(transport, recipient, channel)``, or ``None`` when nothing can reach the member.

    The first of ``transports`` the site uses and that has a recipient for the
    member wins; otherwise the transport of the member's own channel (the one
    that changed, for a reset or disable). An authenticator app has no transport.
    """
    for name in transports:
        transport = otp.transports.get(name)
        if transport is None or not _site_uses(otp, transport):
            continue
        try:
            recipient = transport.recipient(member)
        except RecipientUnavailable:
            continue
        return transport, recipient, _channel_for(otp, transport, event.channel)
    own = event.channel
    if own is None:  # trusted devices: the event does not name the member's channel
        own = otp.status(member, start_grace=False).channel
    definition = otp.channels.get(own or "")
    if definition is None or definition.transport is None:
        return None
    try:
        recipient = definition.transport.recipient(member)
    except RecipientUnavailable:
        return None
    return definition.transport, recipient, definition.name


def notify(otp: OtpPro, event: AuditEvent, member: Member | None, transports: Sequence[str] = ("email",)) -> None:
    """Send the notice for ``event`` and audit the outcome; never raises for a delivery problem."""
    assert event.member_id is not None
    if member is None or member.id != event.member_id:
        try:
            member = otp.member(event.member_id)
        except (UnknownMember, PluginError) as exc:  # nobody knows the id, or the lookup plugin broke
            log.warning("otp-pro: no notice for %s of member %s: the member could not be loaded (%s)",
                        event.kind, event.member_id, type(exc).__name__)
            otp.record_event(NOTIFICATION_FAILED, event.member_id, outcome="failed", change=event.kind,
                             event_id=event.id, error=type(exc).__name__)
            return
    try:
        found = route(otp, member, event, transports)
    except Exception as exc:  # noqa: BLE001 - a broken availability plugin or database read: recorded, not raised
        log.warning("otp-pro: no notice for %s of member %s: finding a route failed: %s", event.kind, member.id,
                    type(exc).__name__)
        otp.record_event(NOTIFICATION_FAILED, member.id, outcome="failed", member=member, change=event.kind,
                         event_id=event.id, error=type(exc).__name__)
        return
    if found is None:
        # Expected for a member with only an authenticator app and no email address; but a change made
        # from the CLI on a site without a member lookup has only the id, and nobody would learn that the
        # member was not told unless it is recorded (``member_lookup`` says which case it may be).
        log.info("otp-pro: no notice for %s of member %s: no transport can reach them", event.kind, member.id)
        otp.record_event(NOTIFICATION_UNSENT, member.id, outcome="info", member=member, change=event.kind,
                         event_id=event.id, reason=NO_TRANSPORT, member_lookup=otp.has_member_lookup)
        return
    transport, recipient, channel = found
    facts: dict[str, Any] = {"change": event.kind, "event_id": event.id, "transport": transport.name,
                             "recipient": recipient_hint(transport, recipient)}
    try:
        # The notice's own words in the member's language, as render_message writes the rest.
        s = otp.settings
        with i18n.using(i18n.for_member(member.locale, s.default_locale, s.locale_dirs)):
            extra = notice_variables(otp, event)
        message = otp.render_message(transport, member, channel, "notification", {**extra, "recipient": recipient})
        receipt = transport.send(message)
    except Exception as exc:  # noqa: BLE001 - the change is committed: a failed notice is recorded, not raised
        code = exc.provider_code if isinstance(exc, DeliveryError) else None
        permanent = exc.permanent if isinstance(exc, DeliveryError) else None
        reply = exc.provider_reply if isinstance(exc, DeliveryError) else None
        # The class and provider code only: a transport's own text may quote the message.
        log.warning("otp-pro: the %s notice to member %s through %s failed: %s%s", event.kind, member.id,
                    transport.name, type(exc).__name__, f" ({code})" if code else "")
        otp.record_event(NOTIFICATION_FAILED, member.id, outcome="failed", channel=channel, member=member,
                         error=type(exc).__name__, provider_code=code, permanent=permanent,
                         provider_reply=reply[:200] if reply else None, **facts)
        return
    otp.record_event(NOTIFICATION_SENT, member.id, outcome="ok", channel=channel, member=member,
                     provider_message_id=receipt.provider_message_id, **facts)


def _config(otp: OtpPro) -> ProviderConfig | Mapping[str, Any]:
    return otp.plugin_settings.get(SECTION) or {}


@hookimpl
def otp_pro_register_settings(register: Callable[[str, Sequence[Setting]], None]) -> None:
    register(SECTION, SETTINGS)


@hookimpl
def otp_pro_event(otp: OtpPro, event: AuditEvent, member: Member | None) -> None:
    if not event.factor_change or event.member_id is None:
        return
    config = _config(otp)
    if not config.get("enabled", True) or event.kind not in config.get("notify_on", DEFAULT_NOTIFY_ON):
        return
    if event.kind == BACKUP_CODES_GENERATED and event.details.get("setup"):
        return  # made by a setup: its setup_completed notice covers them, one change, one notice
    notify(otp, event, member, config.get("transports", ("email",)))
