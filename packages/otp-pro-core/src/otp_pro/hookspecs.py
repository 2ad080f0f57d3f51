"""The hooks a plugin can implement (pluggy project name ``otp_pro``).

Implement a hook in a module or class with :data:`hookimpl`, publish it through
the entry-point group ``otp_pro`` (or pass it to ``OtpPro(plugins=[...])``), and
it is called by every :class:`~otp_pro.OtpPro` instance that loads it::

    from otp_pro import hookimpl

    @hookimpl
    def otp_pro_register_transports(register):
        register(MyTransport)

Every hook receives keyword arguments; implement only the ones you use (pluggy
passes a hook just the parameters its implementation names).

The core calls every hook through pluggy (its call order, tracing and hook
wrappers apply), and one implementation's exception never stops the others
from being called: each hookspec below says, under "If it raises", what the
exception means instead (:class:`otp_pro.hookcall.OnError` has the policies).
A hook wrapper sees each answer as an :class:`otp_pro.hookcall.Answer`
naming its plugin, and each exception as a :class:`otp_pro.hookcall.HookFailure`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from .audit import AuditEvent
    from .core import OtpPro
    from .dispatch import Dispatcher
    from .factor_types import FactorType
    from .member import Member
    from .settings import Setting
    from .transports import Message, Payload, Transport

PROJECT_NAME = "otp_pro"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def otp_pro_register_transports(register: Callable[[type[Transport]], None]) -> None:
    """Register delivery transports.

    Called once when an :class:`~otp_pro.OtpPro` instance starts. Call
    ``register(TransportClass)`` for each :class:`~otp_pro.transports.Transport`
    subclass the plugin provides. The class's ``name`` becomes the transport id
    and the prefix of its channels (``sms_twilio`` gives ``sms_twilio:code``);
    its ``settings`` are read from ``providers.<name>``. Registering a name that
    is already taken is refused, naming both plugins: names are granted in plugin
    registration order (built-ins first), whatever order pluggy calls in.

    If it raises: the plugin's error is kept (``OtpPro.plugins()``) and logged;
    what it registered before raising stands, and the other plugins go on.

    Return nothing.
    """


@hookspec
def otp_pro_register_factor_types(register: Callable[[type[FactorType]], None]) -> None:
    """Register factor types: the kinds of authenticator a member can enrol and prove.

    Called once when an :class:`~otp_pro.OtpPro` instance starts. Call
    ``register(FactorTypeClass)`` for each :class:`~otp_pro.factor_types.FactorType`
    subclass the plugin provides. A type that is not delivered adds the channel
    of its ``name`` (``register(HotpFactor)`` with ``name = "hotp"`` lets roles
    list ``"hotp"`` and members ``begin_setup(member, "hotp")``); its instance
    judges answers (``confirm``, ``check``) and the core decides, counts and
    records them. The core registers ``totp``, ``code`` and ``link`` this way
    (plugin ``otp_pro_factor_types``). A name that is taken, or holds ``:``, is
    refused, naming both plugins; names are granted in plugin registration
    order (built-ins first).

    If it raises: the plugin's error is kept (``OtpPro.plugins()``) and logged;
    what it registered before raising stands, and the other plugins go on.

    Return nothing.
    """


@hookspec
def otp_pro_register_payloads(register: Callable[[type[Payload]], None]) -> None:
    """Register payloads: what a transport delivers (``code``, ``magic_link``).

    Called once at start-up, like :func:`otp_pro_register_transports`. Call
    ``register(PayloadClass)`` for each :class:`~otp_pro.transports.Payload`
    subclass. Every transport whose ``Payload.supports(transport)`` is true
    then offers the channel ``<transport>:<payload>``. Names are shared with
    transports and settings sections; a clash is refused as for transports.

    If it raises: as :func:`otp_pro_register_transports`.

    Return nothing.
    """


@hookspec
def otp_pro_register_dispatchers(register: Callable[[type[Dispatcher]], None]) -> None:
    """Register delivery dispatchers: how a rendered message leaves the request.

    Called once when an :class:`~otp_pro.OtpPro` instance starts. Call
    ``register(DispatcherClass)`` for each :class:`~otp_pro.dispatch.Dispatcher`
    subclass the plugin provides; the class's ``name`` is what the ``dispatcher``
    setting names (the core registers ``inline``, the default, and ``celery``).
    Only the dispatcher the setting names is instantiated, so keep the module
    cheap to import and import a task-queue client inside the class. A queue
    dispatcher's :meth:`~otp_pro.dispatch.Dispatcher.enqueue` receives only a
    challenge id (the message waits encrypted in the database); its worker calls
    :meth:`OtpPro.deliver_queued` with that id. Registering a name that is
    already taken is refused as for transports.

    If it raises: as :func:`otp_pro_register_transports`.

    Return nothing.
    """


@hookspec
def otp_pro_channel_available(otp: OtpPro, member: Member, channel: str) -> bool | str | None:
    """Say whether ``channel`` may be offered to ``member`` now.

    Called for every channel the policy allows, each time the member's status
    is computed (so keep it fast and free of network calls). ``channel`` is the
    channel name (``email:code``, ``totp``). Return ``None`` (or ``True``) for no
    objection; return ``False`` or a short reason string (``"no mobile number on
    file"``) to hide the channel. Every implementation is called and any
    objection hides the channel; the first reason, in pluggy's call order (the
    last registered plugin first), is shown in ``status``.

    If it raises: no objection from this plugin; the error is logged and kept as
    the plugin's error. A broken check never hides a channel.
    """


@hookspec
def otp_pro_message_variables(
    otp: OtpPro, member: Member, channel: str, kind: str, variables: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    """Add template variables to a message before it is rendered.

    Called for every message: ``kind`` is ``"challenge"`` (a code or a link),
    ``"notification"`` or ``"test"`` (a provider test). ``variables`` holds what the core provides: ``payload``,
    ``payload_kind``, ``site_name``, ``member_name``, ``support_email``,
    ``issued_at``, ``expires_at``, ``expiry_minutes``, ``channel``, ``purpose``.
    Return a mapping of extra names, or ``None``. The mappings are merged so
    that the implementation pluggy calls first (the last registered plugin, or a
    ``tryfirst`` one) wins a name. Never return secrets other than the payload.

    If it raises: this plugin's variables are left out; the error is logged and
    kept as the plugin's error.
    """


@hookspec(firstresult=True)
def otp_pro_render_message(
    otp: OtpPro, transport: Transport, member: Member, channel: str, kind: str, variables: Mapping[str, Any]
) -> Message | None:
    """Render the message for ``transport``.

    The first implementation that returns a :class:`~otp_pro.transports.Message`
    wins; return ``None`` to leave the message to others (the core's plain-text
    renderer runs last). ``transport.message_format`` says whether it wants an
    email (subject, text, optional HTML) or one short text (SMS). The recipient
    is in ``variables["recipient"]``.

    On PostgreSQL ``send_challenge`` may first make the message for the policy's
    default channel and drop it unsent (ignoring an exception raised for it) when
    the member's channel is another: keep this hook free of side effects.

    If it raises: the message cannot be made, so the send (or provider test)
    fails with :class:`~otp_pro.errors.PluginError` naming the plugin and the
    exception's type, never its text (it may quote the message); nothing is
    recorded as pending. The error is kept as the plugin's error.
    """


@hookspec
def otp_pro_event(otp: OtpPro, event: AuditEvent, member: Member | None) -> None:
    """Receive every audit event once it has been committed.

    Use it for notifications (tell the member their factors changed), webhooks
    and metrics. ``event.kind`` names the event (``challenge_sent``,
    ``verify_failed``, ``setup_completed``, ``device_trusted``, ...) and
    ``event.factor_change`` is true for changes a member should hear about.
    ``member`` is the :class:`~otp_pro.Member` the site passed to the call that
    recorded the event (``reset(member)``, ``trust_device(member)``), with its
    email and fields; it is ``None`` when that call had no member (a clicked
    magic link, key rotation) or the event is about someone else: then load one
    with ``otp.member(event.member_id)``. Name only the parameters you use
    (``def otp_pro_event(event)`` is fine). Events are passed in the order they
    were written; an event a listener records (``otp.record_event``) reaches
    the listeners after the current one.

    If it raises: the exception's type is logged naming the plugin; the change
    stays committed and the other listeners still receive the event.
    """


@hookspec(firstresult=True)
def otp_pro_member_lookup(otp: OtpPro, member_id: str) -> Member | None:
    """Load the site's member with id ``member_id``, for the CLI and the web layer.

    Return a :class:`~otp_pro.Member`, or ``None`` when this plugin does not know
    the id (the next implementation is asked). The first ``Member`` wins.

    If it raises: the lookup fails with :class:`~otp_pro.errors.PluginError`
    naming the plugin; the error is kept as the plugin's error.
    """


@hookspec
def otp_pro_register_settings(register: Callable[[str, Sequence[Setting]], None]) -> None:
    """Declare a settings section for a plugin that is not a transport or payload.

    Called once when an :class:`~otp_pro.OtpPro` instance starts, before the
    transports are built. Call ``register(name, [Setting(...), ...])``: the
    section ``providers.<name>`` is then validated like a transport's (types,
    ranges, secrets redacted, unknown keys refused) and available as
    ``otp.plugin_settings[name]`` (a :class:`~otp_pro.transports.ProviderConfig`).
    Use it for templating, notification or webhook plugins. A name already used
    by a transport, payload or another plugin is refused as for transports.

    If it raises: as :func:`otp_pro_register_transports`.

    Return nothing.
    """


@hookspec
def otp_pro_startup(otp: OtpPro) -> Sequence[str] | None:
    """Check the plugin's configuration once the instance is built.

    Called at the end of ``OtpPro(...)``, after settings, transports, channels
    and the database are ready. Load and compile what must not fail later (an
    HTML email plugin compiles its templates here, so a syntax error surfaces
    at start-up with its file and line instead of at send time). Return a list
    of problems, each ``"<key>: <what is wrong>"``, or ``None``; every problem
    of every plugin is raised together as one
    :class:`~otp_pro.errors.ConfigurationError`.

    If it raises: the exception is one more start-up problem, naming the plugin.
    """


@hookspec
def otp_pro_cli_commands(register: Callable[[click.Command], None]) -> None:
    """Add subcommands to the ``otp-pro`` command line.

    Call ``register(command)`` with a :class:`click.Command` or
    :class:`click.Group`; its ``name`` becomes ``otp-pro <name>`` (prefix it
    with your distribution's name: ``html-email``, ``acme-fax``). Called only
    when the command line needs the list (``otp-pro --help``, or a command name
    that is not a core one), with no :class:`~otp_pro.OtpPro` built: keep the
    module cheap to import and build what a command needs inside the command.
    A command can read the core's ``--config`` from
    ``click.get_current_context().find_root().obj["config"]``. A name taken by
    a core command or by another plugin is refused with a warning naming the
    plugin.

    If it raises: a one-line warning naming the plugin; the commands it
    registered before raising stand, and the command line carries on.

    Return nothing.
    """
