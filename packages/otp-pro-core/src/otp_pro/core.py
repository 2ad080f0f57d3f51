"""``OtpPro``: the public entry point. One instance per application (and per settings).

The class is a facade: each method delegates to the module of :mod:`otp_pro._engine`
that owns the operation (the package docstring has the map), over one shared
:class:`~otp_pro._engine.runtime.Runtime`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, cast

from . import audit, policy
from ._engine import (
    answers,
    assembly,
    auditing,
    backup_codes,
    delivery,
    delivery_outcome,
    devices,
    enrolment,
    factors,
    first_factor,
    lockout,
    member_admin,
    messages,
    queue,
    status,
    tokens,
    verification,
)
from ._engine.lockout import HARD_LOCK
from ._engine.runtime import ChannelDef, Runtime, utcnow
from .audit import AuditEvent
from .codes import normalize_code
from .crypto import KeyRing
from .dispatch import Dispatcher, QueuedDelivery
from .errors import PluginError, UnknownMember
from .hookcall import OnError
from .member import Member
from .plugins import PluginHost
from .results import (
    Challenge,
    ChannelInfo,
    DeliveryStatus,
    FactorInfo,
    IssuedChallenge,
    MemberStatus,
    PluginInfo,
    SetupInfo,
    Standing,
    TrustedDevice,
    VerifyResult,
)
from .settings import Settings
from .storage.db import Database
from .transports import TOTP, Message, Payload, ProviderConfig, ProviderTestResult, Transport


class OtpPro:
    """Multi-factor authentication for one application.

    ``settings`` is a mapping (or :class:`~otp_pro.settings.Settings`); invalid
    settings raise :class:`~otp_pro.errors.ConfigurationError` naming every bad key.
    ``plugins`` are extra plugin objects (modules or instances with hookimpls)
    registered beside the discovered ones; ``clock`` returns the current aware
    UTC time (tests move it); ``entry_points=False`` skips discovery.
    """

    def __init__(
        self,
        settings: Mapping[str, Any] | Settings,
        *,
        plugins: Iterable[object] = (),
        clock: Callable[[], datetime] | None = None,
        entry_points: bool = True,
        migrate_database: bool | None = None,
    ) -> None:
        settings = settings if isinstance(settings, Settings) else Settings.from_mapping(settings)
        host = PluginHost(disabled=settings.disable_plugins, extra=plugins, entry_points=entry_points)
        self._rt = Runtime(self, settings, clock or utcnow, host)
        assembly.start(self._rt, migrate_database)

    # The shared state, read-only: the engine's modules read it from the same Runtime.

    @property
    def settings(self) -> Settings:
        """The validated settings."""
        return self._rt.settings

    @property
    def clock(self) -> Callable[[], datetime]:
        """The clock every operation reads: the current aware UTC time (tests move it)."""
        return self._rt.clock

    @property
    def keys(self) -> KeyRing:
        """The key ring derived from ``secret_key`` and ``previous_secret_keys``."""
        return self._rt.keys

    @property
    def host(self) -> PluginHost:
        """The plugins: their manager (``host.pm``) and what is known about each."""
        return self._rt.host

    @property
    def hook(self) -> Any:
        """pluggy's hook relay (``otp.hook.otp_pro_event(...)``); the core calls hooks through ``host.call``."""
        return self._rt.host.pm.hook

    @property
    def transports(self) -> dict[str, Transport]:
        """The started transports, by name."""
        return self._rt.transports

    @property
    def payloads(self) -> dict[str, Payload]:
        """The started payloads, by name."""
        return self._rt.payloads

    @property
    def plugin_settings(self) -> dict[str, ProviderConfig]:
        """Validated ``providers.<name>`` sections declared through ``otp_pro_register_settings``."""
        return self._rt.plugin_settings

    @property
    def dispatcher(self) -> Dispatcher:
        """The delivery dispatcher the ``dispatcher`` setting names (``inline`` by default)."""
        return self._rt.dispatcher

    @property
    def channels(self) -> dict[str, ChannelDef]:
        """Every installed channel, by name (``email:code``, ``totp``...)."""
        return self._rt.channels

    @property
    def db(self) -> Database:
        """The database: its engine, transactions and hot statements."""
        return self._rt.db

    @classmethod
    def from_file(cls, path: str, **kwargs: Any) -> OtpPro:
        """Build from a TOML settings file (see :meth:`Settings.from_file`)."""
        return cls(Settings.from_file(path), **kwargs)

    def close(self) -> None:
        """Release database connections and whatever the transports and the dispatcher hold."""
        assembly.close(self._rt)

    def __enter__(self) -> OtpPro:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<OtpPro site={self.settings.site_name!r} db={self.db!r} channels={list(self.channels)}>"

    # ------------------------------------------------------ plugins and members

    def plugins(self) -> list[PluginInfo]:
        """Every built-in and discovered plugin: where it came from, enabled or not, its error if any."""
        return self.host.infos()

    def redacted_settings(self) -> dict[str, Any]:
        """The effective settings with secrets shown as ``'********'``, providers as validated."""
        return assembly.redacted_settings(self._rt)

    @property
    def has_member_lookup(self) -> bool:
        """Whether members can be loaded by id: the ``member_lookup`` setting or an ``otp_pro_member_lookup`` plugin.

        Without either, tools that only have an id (the CLI, ``stats --roles``) know no roles and no
        addresses: they say so instead of guessing.
        """
        return self._rt.member_lookup is not None or bool(self.hook.otp_pro_member_lookup.get_hookimpls())

    def member(self, member_id: str) -> Member:
        """Load a member: the ``member_lookup`` setting's function first, then the ``otp_pro_member_lookup`` hook.

        Raises :class:`UnknownMember` if neither knows the id, and :class:`~otp_pro.errors.PluginError`
        naming the setting when the function raises or returns something else than a ``Member``.
        """
        member_id = str(member_id)
        lookup = self._rt.member_lookup
        if lookup is not None:
            setting = self.settings.member_lookup
            try:
                value = lookup(member_id)
            except Exception as exc:
                raise PluginError(f"the member_lookup setting's function {setting!r} failed to look up member "
                                  f"{member_id!r}: {type(exc).__name__}", plugin=str(setting)) from exc
            if value is not None:
                if not isinstance(value, Member):
                    raise PluginError(f"the member_lookup setting's function {setting!r} returned a "
                                      f"{type(value).__name__}, not an otp_pro.Member or None", plugin=str(setting))
                return value
        found = self.host.call("otp_pro_member_lookup", OnError.RAISE, what=f"to look up member {member_id!r}",
                               otp=self, member_id=member_id)
        if not found:
            where = "" if self.has_member_lookup else " (no member_lookup setting or plugin is installed)"
            raise UnknownMember(f"no member with id {member_id!r}{where}")
        return cast(Member, found[0].value)

    def record_event(
        self, kind: str, member_id: str | None = None, *, outcome: str = "info", channel: str | None = None,
        ip: str | None = None, user_agent: str | None = None, actor: str | None = None, member: Member | None = None,
        **details: Any,
    ) -> AuditEvent:
        """Write a plugin's own audit event (``notification_sent``, a webhook's failure) and pass it to listeners.

        ``kind`` is a short snake_case name (document it for the site's support);
        ``outcome`` is ``"ok"``, ``"failed"`` or ``"info"``; ``details`` hold facts
        (counts, ids, error classes), never a code, token or password. Returns the
        stored event (with its ``id``). Called from an ``otp_pro_event`` listener,
        the new event reaches the listeners after the events already committed.
        """
        return auditing.record_event(self._rt, kind, member_id, outcome=outcome, channel=channel, ip=ip,
                                     user_agent=user_agent, actor=actor, member=member, details=details)

    # ----------------------------------------------------------- policy and status

    @property
    def registered_channels(self) -> tuple[str, ...]:
        """Channels offered site-wide when ``channels`` is not set.

        Leaves out dev-only transports (``offered_by_default = False``) and transports that
        are installed but not configured (``configured`` is false).
        """
        return self._rt.registered_channels

    def requirement(self, member: Member) -> policy.Requirement:
        """The policy's answer for ``member`` (no database access)."""
        return status.requirement(self._rt, member)

    def available_channels(self, member: Member) -> list[ChannelInfo]:
        """The channels the policy allows for ``member``, each with its availability."""
        return status.available_channels(self._rt, member)

    def status(self, member: Member, *, start_grace: bool = True) -> MemberStatus:
        """Where ``member`` stands: requirement, enrolment, channels, grace period, lockout.

        The first time a member is seen under a required policy the grace period starts.
        ``start_grace=False`` only looks (support tools): nothing is written, and a grace
        period that has not started is shown as if it started now.
        """
        return status.status(self._rt, member, start_grace=start_grace)

    def standing(self, member: Member) -> Standing:
        """What the web gate decides from (requirement, enrolment, grace period), in one read statement.

        The part of :meth:`status` that a request to a gated page needs, read from the database on
        every call (no cache: a reset elsewhere takes effect on the next request), without the
        channel availability, the factor listing and the backup-code count.
        """
        return status.standing(self._rt, member)

    def fallback_channels(self, member: Member, failed_channel: str | None = None) -> tuple[str, ...]:
        """The member's channels to fall back to after a failed delivery on ``failed_channel``.

        The channels of the member's own other delivered factors (not ``totp``, not
        one waiting to be re-confirmed), in the policy's order, that no availability
        check hides, without ``failed_channel``.
        """
        return status.fallback_channels(self._rt, member, failed_channel)

    # ------------------------------------------------------------------ setup

    def begin_setup(
        self, member: Member, channel: str, *, label: str | None = None, seed: str | None = None,
        reconfirm: int | None = None, ip: str | None = None, user_agent: str | None = None,
        binding: str | None = None,
    ) -> SetupInfo:
        """Start adding a factor on ``channel`` for ``member`` (their first, or another: a second app, a phone).

        ``label`` is the member's name for it ("Work phone"). ``reconfirm`` (a factor's
        id) confirms that delivered factor at the address the member record shows now,
        instead of adding one (see :attr:`FactorInfo.needs_reconfirming`). A delivered
        factor is bound to the address the confirmation goes to. For ``totp`` a fresh seed
        is kept (encrypted) as pending and returned as a provisioning URI and QR code;
        ``seed`` (base32, at least 128 bits) imports an
        existing one instead, for members moving from another system. For a delivered
        channel a confirmation code (or link) is sent. ``binding`` (a random value kept
        in the session of the caller, as in :meth:`send_challenge`) ties the setup to
        that caller: :meth:`complete_setup` then needs the same binding, and a link is
        accepted only with it. A web page should always pass one; a setup begun
        without a binding is finished by whoever has the code. Finish with
        :meth:`complete_setup`, or :meth:`verify_token` for a link.
        """
        return enrolment.begin_setup(self._rt, member, channel, seed=seed, label=label, reconfirm=reconfirm, ip=ip,
                                     user_agent=user_agent, binding=binding)

    def complete_setup(
        self, member: Member, code: str, *, binding: str | None = None, ip: str | None = None,
        user_agent: str | None = None,
    ) -> list[str]:
        """Confirm the pending setup with ``code``, which adds its factor; return the backup codes (show them once).

        Backup codes are issued with the member's first factor only: adding another
        returns ``[]`` and keeps the codes the member holds. Every new factor revokes
        the member's trusted devices and is audited as ``setup_completed`` (its
        ``factor_id`` in the details), which the notification plugin tells the member.

        A wrong code counts as a failed attempt and raises :class:`InvalidCode`.
        A setup begun with a ``binding`` is completed only with the same one: any
        other (or none) raises :class:`SetupBegunElsewhere` before the code is looked
        at, counts nothing, and leaves the setup pending for its own caller (audited
        as ``verify_failed`` with ``reason="wrong_browser"``, ``counted: false``).
        """
        return enrolment.complete_setup(self._rt, member, code, binding=binding, ip=ip, user_agent=user_agent)

    # ---------------------------------------------------------------- factors

    def factors(self, member: Member) -> list[FactorInfo]:
        """The member's factors, in the order they were added: id, kind, label, default, created and last used
        times, the masked address of a delivered one, and whether it needs re-confirming."""
        return factors.listing(self._rt, member)

    def remove_factor(self, member: Member, factor_id: int, *, actor: str | None = None, force: bool = False,
                      ip: str | None = None, user_agent: str | None = None) -> None:
        """Remove one of the member's factors (:class:`UnknownFactor` when it is not theirs).

        Its unused codes and links stop working, the member's trusted devices are
        revoked, and ``factor_removed`` is audited (and notified). Removing the last
        factor a required member's role allows raises :class:`PolicyError` unless
        ``force`` (support, who records the ``actor``). Removing the very last factor
        removes the backup codes with it: the member is then not enrolled.
        """
        factors.remove(self._rt, member, factor_id, actor=actor, force=force, ip=ip, user_agent=user_agent)

    def rename_factor(self, member: Member, factor_id: int, label: str | None, *, actor: str | None = None,
                      ip: str | None = None, user_agent: str | None = None) -> None:
        """Give one of the member's factors a label (None: the channel's own label); audited."""
        factors.rename(self._rt, member, factor_id, label, actor=actor, ip=ip, user_agent=user_agent)

    def set_default_factor(self, member: Member, factor_id: int, *, actor: str | None = None, ip: str | None = None,
                           user_agent: str | None = None) -> None:
        """Make one of the member's factors the default: offered first and sent to when no channel is named."""
        factors.set_default(self._rt, member, factor_id, actor=actor, ip=ip, user_agent=user_agent)

    def regenerate_backup_codes(
        self, member: Member, *, actor: str | None = None, ip: str | None = None, user_agent: str | None = None
    ) -> list[str]:
        """Replace the member's backup codes with a fresh set; the old ones stop working. Show them once."""
        return backup_codes.regenerate(self._rt, member, actor=actor, ip=ip, user_agent=user_agent)

    # --------------------------------------------------------------- delivery

    def send_challenge(
        self, member: Member, *, channel: str | None = None, ip: str | None = None, user_agent: str | None = None,
        binding: str | None = None,
    ) -> Challenge:
        """Send a one-time code (or link) to the member's default factor, or to their factor on ``channel``.

        Only the member's own factors are sent to, at the address each was confirmed
        at: :class:`FactorNotEnrolled` (a :class:`ChannelUnavailable`) for a channel
        the member has no factor on, even one their role allows;
        :class:`FactorNeedsReconfirming` when the member record now shows another
        address. Raises :class:`ThrottledError` inside the cooldown or over an hourly cap,
        :class:`ChannelUnavailable` for a channel the member cannot use, and a
        :class:`DeliveryError` when the transport failed (the challenge is then
        void and does not count against the cooldown; ``error.challenge_id`` names
        it, and :meth:`delivery_status` lists the channels to fall back to).
        ``binding`` (for example a browser cookie value) is stored as a keyed hash;
        :meth:`verify_token` then accepts the token only with the same binding.

        With a queue dispatcher (``dispatcher = "celery"``) the challenge comes back
        with ``status == "queued"``: a worker sends it (see :meth:`delivery_status`).
        Asking for another channel right after the member's delivery failed is a
        fallback, recorded as a ``delivery_fallback`` event.
        """
        return delivery.send_challenge(self._rt, member, channel=channel, ip=ip, user_agent=user_agent,
                                       binding=binding)

    def delivery_status(self, member: Member, challenge_id: int | None = None) -> DeliveryStatus | None:
        """Where the delivery of the member's challenge ``challenge_id`` (default: their latest) stands.

        ``None`` when the member has no such challenge (another member's id gives
        ``None`` too). A queued or sending delivery still in flight when the code's
        lifetime ends reads as ``failed`` with ``error_code = "expired"``. A failed
        delivery lists ``fallback_channels`` (see :meth:`fallback_channels`).
        """
        return delivery_outcome.delivery_status(self._rt, member, challenge_id)

    def deliver_queued(self, challenge_id: int) -> QueuedDelivery:
        """Send a queued challenge: what a queue dispatcher's worker calls with the id it was given.

        Claims the row (``queued`` -> ``sending``, attempt counted) with one
        conditional UPDATE, so a duplicated or retried task for a row that is not
        queued does nothing (``skipped``). Then decrypts the message, sends it through
        the channel's transport and marks the row ``sent`` (voiding the member's older
        unused challenges, as an inline send does) with its ciphertext wiped. A
        transient error puts the row back to ``queued`` and answers ``retry`` with the
        backoff to wait, until ``delivery_max_attempts``; a permanent error, the last
        attempt, or a code whose lifetime ended in the queue answers ``failed``, with a
        ``delivery_failed`` event. Never raises for a delivery problem.
        """
        return queue.deliver_queued(self._rt, challenge_id)

    def message_variables(self, member: Member, channel: str, kind: str, extra: Mapping[str, Any]) -> dict[str, Any]:
        """The template variables of a message: the core's, then every plugin's additions."""
        return messages.variables(self._rt, member, channel, kind, extra)

    def render_message(self, transport: Transport, member: Member, channel: str, kind: str,
                       extra: Mapping[str, Any]) -> Message:
        """Build the message for ``transport`` through the variables and rendering hooks."""
        return messages.render(self._rt, transport, member, channel, kind, extra)

    def provider_test(
        self, transport_name: str, to: str, *, dry_run: bool = True, actor: str | None = None
    ) -> ProviderTestResult:
        """Send (or with ``dry_run`` only render) a test message through ``transport_name`` to ``to``.

        The test code in it is random and is not stored: it cannot be used to sign in.
        """
        return messages.provider_test(self._rt, transport_name, to, dry_run=dry_run, actor=actor)

    # ----------------------------------------------------------- verification

    def verify(
        self, member: Member, code: object, *, ip: str | None = None, user_agent: str | None = None,
        binding: str | None = None,
    ) -> VerifyResult:
        """Check what the member typed (a one-time code, an authenticator code or a backup code) or answered.

        Only the member's own factors answer: a code sent to one of them, a code of one
        of their authenticator apps, a backup code, or the answer to a challenge from
        :meth:`begin_challenge` (a passkey's assertion, given as its factor type takes it,
        with the ``binding`` the challenge was issued to); ``.factor_id`` says which factor.
        Never raises for a wrong or malformed answer: ``.ok`` is False and ``.reason``
        says why. Each failure counts toward the lockout, across all methods.
        """
        rt = self._rt
        if rt.answer_types and normalize_code(code) is None:
            return answers.verify_answer(rt, member, code, binding=binding, ip=ip, user_agent=user_agent)
        return verification.verify(rt, member, code, ip=ip, user_agent=user_agent)

    def begin_challenge(self, member: Member, channel: str, *, binding: str, ip: str | None = None,
                        user_agent: str | None = None) -> IssuedChallenge:
        """A fresh challenge for the member to answer with one of their factors on ``channel`` (a passkey).

        Only for a factor type that issues its own challenges
        (:attr:`~otp_pro.factor_types.FactorType.issues_challenge`; :class:`ChannelUnavailable`
        otherwise). ``binding`` (a random value kept in the caller's session) is required:
        the answer is accepted only with it, once, within the type's
        ``challenge_seconds``. A new challenge for the same binding replaces the last.
        :class:`FactorNotEnrolled` when the member has no factor on ``channel`` that counts,
        :class:`LockedOut` while locked. Pass ``.show`` to the browser; answer with
        :meth:`verify` (``binding=`` the same value).
        """
        return answers.begin_challenge(self._rt, member, channel, binding=binding, ip=ip, user_agent=user_agent)

    def first_factor_channels(self) -> list[str]:
        """The channels whose factors sign a member in on their own on this site (a passkey, where its settings
        turn that on): what a login page may offer next to the password."""
        return [name for name, definition in self.channels.items() if definition.factor_type is not None
                and definition.factor_type.issues_challenge and definition.factor_type.offers_first_factor()]

    def begin_first_factor_challenge(self, channel: str, *, binding: str, ip: str | None = None,
                                     user_agent: str | None = None) -> IssuedChallenge:
        """A fresh challenge, for no member, that any member's factor on ``channel`` can answer (passwordless
        sign-in with a passkey). ``binding`` as for :meth:`begin_challenge`; each challenge counts toward
        ``ip``'s hourly send cap (:class:`ThrottledError` past it). :class:`ChannelUnavailable` when the
        channel's type does not sign members in on its own here (:meth:`first_factor_channels`). Answer it
        with :meth:`verify_first_factor`.
        """
        return first_factor.begin(self._rt, channel, binding=binding, ip=ip, user_agent=user_agent)

    def verify_first_factor(self, channel: str, answer: object, *, binding: str | None, ip: str | None = None,
                            user_agent: str | None = None) -> VerifyResult:
        """Judge an answer to :meth:`begin_first_factor_challenge`: on success ``.member_id`` is the member it
        proved (their factor is the one whose handle the answer names) and ``.factor_id`` the factor.

        The challenge is used once, in the session it was issued to, while fresh; the member's lock state is
        honoured and the factor's counter moves as for :meth:`verify`. A failure counts toward ``ip``'s
        hourly limit of failed verifications (``rate_limited`` past it), never toward the member the answer
        names; it is audited on that member when there is one. Never raises for a wrong or malformed answer.
        Whether the member may sign in (their account, their role's policy) is the site's to decide next.
        """
        return first_factor.verify(self._rt, channel, answer, binding=binding, ip=ip, user_agent=user_agent)

    def record_failure(self, member: Member, *, reason: str, ip: str | None = None,
                       user_agent: str | None = None) -> VerifyResult:
        """Count a failed check the site ran itself (a password asked again before a change) toward the lockout.

        The attempt is counted like a wrong code, with a ``verify_failed`` event
        whose ``reason`` is ``reason`` (a short snake_case word: ``"password"``),
        and may lock the member. A member already locked is not counted again: the
        result says ``locked``. Call it only for a failure; a success clears the
        counters when the member next passes the second step.
        """
        return lockout.record_site_failure(self._rt, member, reason=reason, ip=ip, user_agent=user_agent)

    def verify_token(
        self, payload: str, token: object, *, binding: str | None = None, ip: str | None = None,
        user_agent: str | None = None,
    ) -> VerifyResult:
        """Verify a clicked token (a magic link) of ``payload``; the token itself names the member.

        The token is consumed by the same conditional UPDATE as a code, so two
        concurrent clicks cannot both win. A refused link that was issued (used,
        replaced, expired, another browser) is audited but never counts toward the
        member's lockout; an unknown token is audited without a member and counts
        toward ``ip``'s hourly limit, past which the answer is ``rate_limited``. When
        the token belongs to a pending setup, the setup is completed and the result
        carries the new ``backup_codes``.
        """
        return tokens.verify_token(self._rt, payload, token, binding=binding, ip=ip, user_agent=user_agent)

    # ------------------------------------------------- support and key rotation

    def disable(self, member: Member, *, actor: str | None = None, force: bool = False, ip: str | None = None,
                user_agent: str | None = None) -> None:
        """Switch the member's second factor off: factor, backup codes and trusted devices are removed.

        A member whose policy requires a second factor cannot disable it
        (:class:`PolicyError`); ``force=True`` lets an administrator do it anyway
        (the member will be asked to set up again).
        """
        member_admin.disable(self._rt, member, actor=actor, force=force, ip=ip, user_agent=user_agent)

    def reset(
        self, member: Member, *, actor: str | None = None, ip: str | None = None, user_agent: str | None = None
    ) -> None:
        """Force the member to set up again: factor, backup codes, trusted devices and lockout are cleared."""
        member_admin.clear(self._rt, member, audit.RESET, actor=actor, ip=ip, user_agent=user_agent, disabled=False)

    def unlock(self, member: Member, *, actor: str | None = None, ip: str | None = None,
               user_agent: str | None = None) -> None:
        """Lift a lockout (including the hard lock after 100 consecutive failures).

        ``ip`` and ``user_agent``: the operator's request, recorded in the ``unlocked`` audit row (the console
        passes them, as for the other support actions).
        """
        member_admin.unlock(self._rt, member, actor=actor, ip=ip, user_agent=user_agent)

    # -------------------------------------------------------- trusted devices

    def trust_device(self, member: Member, *, label: str = "", ip: str | None = None,
                     user_agent: str | None = None) -> str:
        """Remember this device for ``trusted_device_days``; return the token to keep in a cookie.

        Only the token's hash is stored.
        """
        return devices.trust(self._rt, member, label=label, ip=ip, user_agent=user_agent)

    def is_trusted(self, member: Member, token: object) -> bool:
        """Whether ``token`` is a live trusted-device token of ``member``."""
        return devices.is_trusted(self._rt, member, token)

    def trusted_devices(self, member: Member) -> list[TrustedDevice]:
        """The member's live trusted devices, newest first."""
        return devices.live(self._rt, member)

    def revoke_device(self, member: Member, device_id: int, *, actor: str | None = None, ip: str | None = None,
                      user_agent: str | None = None) -> None:
        """Revoke one trusted device; :class:`NotFound` when it is not a live device of this member."""
        devices.revoke(self._rt, member, device_id, actor=actor, ip=ip, user_agent=user_agent)

    def events(self, member: Member | str | None = None, *, kinds: Iterable[str] | None = None,
               limit: int = 100) -> list[AuditEvent]:
        """Audit events, newest first, optionally for one member and some kinds."""
        member_id = member.id if isinstance(member, Member) else None if member is None else str(member)
        return auditing.recent(self._rt, member_id, kinds, limit)

    def rotate_keys(self, *, actor: str | None = None) -> int:
        """Re-encrypt every TOTP seed with the current ``secret_key``; return how many were rewritten.

        Run after moving the old key to ``previous_secret_keys``; once done, the old
        key is only needed for trusted devices and backup codes made before the rotation.
        """
        return member_admin.rotate_keys(self._rt, actor=actor)


__all__ = ["HARD_LOCK", "TOTP", "ChannelDef", "OtpPro", "normalize_code"]
