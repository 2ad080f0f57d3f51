"""The plugin hooks, each exercised through the public ``OtpPro`` API, and the plugin host around them.

There is one ``test_hook_<name>`` per hookspec (a meta-test below keeps it so),
and every hook's signature must appear in ``docs/plugin-hooks.md``.

Plugins here are small objects with ``@hookimpl`` methods passed to
``OtpPro(plugins=[...])``: they live only as long as the instance, so nothing
has to be unregistered by hand. ``entry_points=False`` keeps whatever happens to
be installed (a companion, another test's package) out of these tests; discovery
through entry points is tested end to end in ``test_third_party.py``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pyotp
import pytest
from core_support import HotpFactor, base_settings, hotp_plugin

from otp_pro import (
    AuditEvent,
    ChannelUnavailable,
    ConfigurationError,
    Member,
    Message,
    OtpPro,
    Payload,
    PayloadContext,
    PayloadValue,
    PluginInfo,
    Receipt,
    RecipientUnavailable,
    Setting,
    Transport,
    UnknownMember,
    hookimpl,
    hookspecs,
)
from otp_pro.plugins import DEFAULT_PLUGINS, DISABLE_ENV
from otp_pro.testing import Clock, enrol, mailed_code, outbox_code

DOCS = Path(__file__).resolve().parents[3] / "docs" / "plugin-hooks.md"


# --------------------------------------------------------------------- helpers


class Plugin:
    """Base of the test plugins: ``name`` is what ``otp.plugins()`` reports for the plugin."""

    def __init__(self, name: str) -> None:
        self.__name__ = name


@pytest.fixture
def build(sqlite_url: str, otp_factory: Callable[..., OtpPro]) -> Callable[..., OtpPro]:
    """``build(plugin, ..., **settings)``: an OtpPro on the test's SQLite file with these plugins."""

    def factory(*plugins: object, **overrides: Any) -> OtpPro:
        return otp_factory(base_settings(sqlite_url, **overrides), plugins=plugins, entry_points=False)

    return factory


def info(otp: OtpPro, name: str) -> PluginInfo:
    found = [p for p in otp.plugins() if p.name == name]
    assert len(found) == 1, f"plugin {name!r} reported {len(found)} times: {otp.plugins()}"
    return found[0]


def spec_names() -> list[str]:
    """Every hookspec in ``otp_pro.hookspecs`` (functions carrying pluggy's spec marker)."""
    return sorted(
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, f"{hookspecs.PROJECT_NAME}_spec")
    )


class PigeonTransport(Transport):
    """A transport that keeps what it was asked to send; reaches members through ``fields["loft"]``."""

    name = "pigeon"
    label = "Carrier pigeon"
    message_format = "text"
    settings = (Setting("loft", str, None, "where the birds live", required=True),)

    def __init__(self, config: Any, otp: OtpPro) -> None:
        super().__init__(config, otp)
        self.sent: list[Message] = []

    def recipient(self, member: Member) -> str:
        loft = member.fields.get("loft")
        if not loft:
            raise RecipientUnavailable("no loft on file")
        return str(loft)

    def send(self, message: Message) -> Receipt:
        self.sent.append(message)
        return Receipt(provider_message_id=f"bird-{len(self.sent)}")


class Pigeons(Plugin):
    @hookimpl
    def otp_pro_register_transports(self, register: Callable[[type[Transport]], None]) -> None:
        register(PigeonTransport)


def code_in(text: str, length: int = 6) -> str:
    match = re.search(rf"\b(\d{{{length}}})\b", text)
    assert match, f"no code in {text!r}"
    return match.group(1)


# ------------------------------------------------------------ one test per hook


def test_hook_otp_pro_register_transports(build: Callable[..., OtpPro], clock: Clock) -> None:
    otp = build(
        Pigeons("acme_pigeons"),
        channels=["pigeon:code", "outbox:code"],
        default_channel="pigeon:code",
        providers={"pigeon": {"loft": "north tower"}},
    )
    ann = Member("7", email="ann@example.com", name="Ann", fields={"loft": "Loft 9"})
    transport = otp.transports["pigeon"]
    assert isinstance(transport, PigeonTransport)
    assert transport.config["loft"] == "north tower"  # validated providers.pigeon settings reach the instance
    assert otp.channels["pigeon:code"].label == "Carrier pigeon"
    assert info(otp, "acme_pigeons").transports == ("pigeon",)
    assert info(otp, "acme_pigeons").error is None

    otp.begin_setup(ann, "pigeon:code")
    setup_message = transport.sent[-1]
    assert setup_message.recipient == "Loft 9"
    otp.complete_setup(ann, code_in(setup_message.text))
    assert otp.status(ann).channel == "pigeon:code"

    clock.advance(31)  # past the resend cooldown
    challenge = otp.send_challenge(ann)
    assert challenge.channel == "pigeon:code"
    # bird-1: the setup code; bird-2: the security notice of the setup (the site uses no email channel).
    assert transport.sent[1].kind == "notification"
    assert challenge.provider_message_id == "bird-3"
    message = transport.sent[-1]
    assert (message.recipient, message.member_id, message.channel, message.kind) == (
        "Loft 9", "7", "pigeon:code", "challenge"
    )
    assert "Example verification code" in message.text  # rendered in the short text format
    assert otp.verify(ann, code_in(message.text)).ok

    # The transport's recipient() decides availability: no loft, no pigeon channel.
    status = otp.status(Member("8", email="bob@example.com"))
    assert status.unavailable["pigeon:code"] == "no loft on file"
    assert status.channels == ("outbox:code",)


def test_register_transports_validates_transport_settings(sqlite_url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        OtpPro(
            base_settings(sqlite_url, providers={"pigeon": {"lofts": "x"}}), plugins=[Pigeons("p")], entry_points=False
        )
    problems = "\n".join(caught.value.problems)
    assert "providers.pigeon.lofts" in problems  # unknown key
    assert "providers.pigeon.loft" in problems  # required key missing


class PinPayload(Payload):
    """A numeric code shown grouped (``123-456``); only offered over the outbox, with its own lifetime."""

    name = "pin"
    label = "PIN"
    entered_as_code = True
    contexts: ClassVar[list[PayloadContext]] = []

    @property
    def ttl_seconds(self) -> int | None:
        return 120

    def supports(self, transport: Transport) -> bool:
        return transport.name == "outbox"

    def create(self, context: PayloadContext) -> PayloadValue:
        self.contexts.append(context)
        import secrets

        secret = f"{secrets.randbelow(10**6):06d}"
        return PayloadValue(secret=secret, display=f"{secret[:3]}-{secret[3:]}")


class Pins(Plugin):
    @hookimpl
    def otp_pro_register_payloads(self, register: Callable[[type[Payload]], None]) -> None:
        register(PinPayload)


def test_hook_otp_pro_register_payloads(build: Callable[..., OtpPro], member: Member, clock: Clock) -> None:
    PinPayload.contexts = []
    otp = build(Pins("acme_pins"), channels=["outbox:pin", "outbox:code"], default_channel="outbox:pin")
    assert "outbox:pin" in otp.channels
    assert "email:pin" not in otp.channels  # supports() limited it to the outbox
    assert otp.channels["outbox:pin"].label == "Development outbox (PIN)"
    assert info(otp, "acme_pins").payloads == ("pin",)

    setup = otp.begin_setup(member, "outbox:pin")
    assert setup.challenge is not None
    assert setup.challenge.expires_at - setup.challenge.created_at == timedelta(seconds=120)  # ttl_seconds
    text = otp.transports["outbox"].last().text  # type: ignore[attr-defined]
    grouped = re.search(r"\b(\d{3})-(\d{3})\b", text)
    assert grouped, text  # the payload's display form is what the member reads
    otp.complete_setup(member, grouped.group(0))  # typed as shown: the dash is ignored

    clock.advance(31)
    otp.send_challenge(member)
    grouped = re.search(r"\b(\d{3})-(\d{3})\b", otp.transports["outbox"].last().text)  # type: ignore[attr-defined]
    assert grouped
    assert otp.verify(member, grouped.group(1) + grouped.group(2)).ok
    assert [(c.channel, c.transport, c.purpose) for c in PinPayload.contexts] == [
        ("outbox:pin", "outbox", "setup"),
        ("outbox:pin", "outbox", "verify"),
    ]


class FaxOnly(Plugin):
    """Objects to ``email:code`` without a fax number (with a reason) and to ``totp`` (with False)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.calls: list[tuple[str, str]] = []

    @hookimpl
    def otp_pro_channel_available(self, otp: OtpPro, member: Member, channel: str) -> bool | str | None:
        assert isinstance(otp, OtpPro)
        self.calls.append((member.id, channel))
        if channel == "email:code" and not member.fields.get("fax"):
            return "no fax line on file"
        if channel == "totp":
            return False
        return None


class NoObjection(Plugin):
    @hookimpl
    def otp_pro_channel_available(self, channel: str) -> bool | str | None:
        return True


def test_hook_otp_pro_register_factor_types(build: Callable[..., OtpPro], member: Member) -> None:
    """A third party's factor type becomes a channel of its name, enrolled and answered through the contract."""
    otp = build(hotp_plugin, channels=["outbox:code", "hotp"])
    assert info(otp, "otp_pro_hotp_example").factor_types == ("hotp",)
    assert info(otp, "otp_pro_factor_types").factor_types == ("totp", "code", "link")
    assert isinstance(otp.channels["hotp"].factor_type, HotpFactor)
    assert otp.channels["hotp"].label == "Key-ring token"
    setup = otp.begin_setup(member, "hotp")
    token = pyotp.HOTP(setup.show["secret"])
    assert len(otp.complete_setup(member, token.at(0))) == 10
    result = otp.verify(member, token.at(1))
    assert result.ok and result.method == "hotp" and result.channel == "hotp"
    assert not otp.verify(member, token.at(1)).ok  # its counter moved past it


def test_hook_otp_pro_channel_available(build: Callable[..., OtpPro], member: Member) -> None:
    plugin = FaxOnly("acme_fax_policy")
    otp = build(NoObjection("acme_yes"), plugin)

    status = otp.status(member)
    assert status.channels == ("outbox:code",)
    assert status.unavailable == {"email:code": "no fax line on file", "totp": "hidden by plugin acme_fax_policy"}
    assert ("42", "outbox:code") in plugin.calls
    by_name = {c.name: c for c in otp.available_channels(member)}
    assert by_name["email:code"].available is False
    assert by_name["email:code"].reason == "no fax line on file"
    assert by_name["outbox:code"].available is True

    with pytest.raises(ChannelUnavailable) as caught:
        otp.begin_setup(member, "email:code")
    assert caught.value.reason == "no fax line on file"
    with pytest.raises(ChannelUnavailable):
        otp.begin_setup(member, "totp")

    faxed = Member("43", email="bo@example.com", fields={"fax": "+441234567"})
    assert otp.status(faxed).channels == ("outbox:code", "email:code")


class Variables(Plugin):
    def __init__(self, name: str, added: Mapping[str, Any] | None) -> None:
        super().__init__(name)
        self.added = added
        self.seen: list[tuple[str, str, dict[str, Any]]] = []

    @hookimpl
    def otp_pro_message_variables(
        self, otp: OtpPro, member: Member, channel: str, kind: str, variables: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        self.seen.append((channel, kind, dict(variables)))
        return self.added


def test_hook_otp_pro_message_variables(build: Callable[..., OtpPro], member: Member) -> None:
    first = Variables("acme_vars_first", {"site_name": "First Portal", "member_name": "Captain Ann"})
    quiet = Variables("acme_vars_none", None)
    later = Variables("acme_vars_later", {"site_name": "Acme Portal"})
    otp = build(first, quiet, later)
    otp.begin_setup(member, "outbox:code")

    message = otp.transports["outbox"].last()  # type: ignore[attr-defined]
    assert message.subject == "Acme Portal: your verification code"  # later plugins win
    assert "Hello Captain Ann," in message.text
    assert "Example" not in message.text

    channel, kind, variables = first.seen[-1]
    assert (channel, kind) == ("outbox:code", "challenge")
    assert variables["payload"] == outbox_code(otp)
    assert variables["payload_kind"] == "code"
    assert variables["purpose"] == "setup"
    assert variables["site_name"] == "Example"
    assert variables["member_name"] == "Ann"
    assert variables["support_email"] == "help@example.com"
    assert variables["expiry_minutes"] == 10
    assert variables["recipient"] == "ann@example.com"
    assert variables["expires_at"] > variables["issued_at"]
    # Every plugin is given the core's variables; additions are merged afterwards, in plugin order.
    assert later.seen[-1][2]["member_name"] == "Ann"


class Branded(Plugin):
    """Renders email-format messages itself (with HTML); leaves short texts to the core."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.formats: list[str] = []

    @hookimpl
    def otp_pro_render_message(
        self, otp: OtpPro, transport: Transport, member: Member, channel: str, kind: str, variables: Mapping[str, Any]
    ) -> Message | None:
        self.formats.append(transport.message_format)
        if transport.message_format != "email":
            return None
        return Message(
            recipient=variables["recipient"],
            subject=f"[{variables['site_name']}] sign-in code",
            text=f"CODE={variables['payload']}",
            html=f"<p>Code <b>{variables['payload']}</b> for {member.display_name}</p>",
        )


class Abstains(Plugin):
    @hookimpl
    def otp_pro_render_message(self) -> Message | None:
        return None


def test_hook_otp_pro_render_message(build: Callable[..., OtpPro], member: Member, clock: Clock) -> None:
    branded = Branded("acme_branding")
    otp = build(branded, Abstains("acme_abstains"), Pigeons("acme_pigeons"),
                channels=["outbox:code", "pigeon:code"], providers={"pigeon": {"loft": "x"}})
    enrol(otp, member)
    clock.advance(31)
    otp.send_challenge(member)

    message = otp.transports["outbox"].last()  # type: ignore[attr-defined]
    assert message.subject == "[Example] sign-in code"
    assert re.fullmatch(r"CODE=\d{6}", message.text)
    assert message.html == f"<p>Code <b>{outbox_code(otp)}</b> for Ann</p>"
    # The core fills in what the renderer did not: member, channel.
    assert (message.member_id, message.channel, message.recipient) == ("42", "outbox:code", "ann@example.com")
    assert otp.verify(member, outbox_code(otp)).ok

    # A renderer returning None leaves the message to the next one, and finally to the core's plain text.
    pigeon_member = Member("44", fields={"loft": "Loft 1"})
    otp.begin_setup(pigeon_member, "pigeon:code")
    text = otp.transports["pigeon"].sent[-1].text  # type: ignore[attr-defined]
    assert text.endswith("is your Example verification code. It expires in 10 min.")
    assert "text" in branded.formats


class Listener(Plugin):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.events: list[AuditEvent] = []
        self.members: list[Member | None] = []
        self.stored_when_called: list[bool] = []

    @hookimpl
    def otp_pro_event(self, otp: OtpPro, event: AuditEvent, member: Member | None) -> None:
        self.events.append(event)
        self.members.append(member)
        # Committed: the record is already readable from a fresh connection.
        self.stored_when_called.append(any(e.id == event.id for e in otp.events(limit=50)))


class Failing(Plugin):
    @hookimpl
    def otp_pro_event(self, event: AuditEvent) -> None:
        raise RuntimeError("webhook endpoint down")


def test_hook_otp_pro_event(make_otp: Callable[..., OtpPro], member: Member) -> None:
    # Both databases: "committed before listeners run" is a transaction property.
    listener = Listener("acme_listener")
    otp = make_otp(plugins=[Failing("acme_failing"), listener])
    enrol(otp, member)

    kinds = [e.kind for e in listener.events]
    # The built-in notification plugin's notification_sent (recorded while setup_completed was being
    # passed on) reaches the listeners after the setup's own events: commit order.
    assert kinds == ["setup_started", "challenge_sent", "setup_completed", "backup_codes_generated",
                     "notification_sent"]
    assert all(listener.stored_when_called)
    assert all(e.id is not None and e.member_id == "42" for e in listener.events)
    # ``member`` is the very Member the site passed to begin_setup / complete_setup (the delivery
    # path's challenge_sent may come without it: a listener then looks the member up).
    by_member = {e.kind: m for e, m in zip(listener.events, listener.members, strict=True)}
    assert all(by_member[kind] is member for kind in ("setup_started", "setup_completed", "backup_codes_generated",
                                                     "notification_sent"))
    # An event recorded without a Member (or about someone else) comes with member=None.
    otp.record_event("acme_metric", "99", size=3)
    assert listener.events[-1].kind == "acme_metric" and listener.members[-1] is None
    assert listener.events[-1].details == {"size": 3} and listener.events[-1].id is not None
    by_kind = {e.kind: e for e in listener.events}
    assert by_kind["setup_completed"].factor_change is True
    assert by_kind["setup_completed"].channel == "outbox:code"
    assert by_kind["backup_codes_generated"].factor_change is True
    assert by_kind["challenge_sent"].factor_change is False
    assert by_kind["backup_codes_generated"].details["count"] == 10
    # No secret reaches a listener.
    code = outbox_code(otp)
    assert all(code not in repr(e) for e in listener.events)
    # The failing listener changed nothing: the setup stands.
    assert otp.status(member).enrolled

    otp.verify(member, "000000")
    assert listener.events[-1].kind == "verify_failed"
    assert listener.events[-1].factor_change is False


class Branding(Plugin):
    """A non-transport plugin with its own settings section, checked at start-up."""

    @hookimpl
    def otp_pro_register_settings(self, register: Callable[[str, list[Setting]], None]) -> None:
        register("branding", [
            Setting("colour", str, "#0055aa", "brand colour"),
            Setting("api_key", str, None, "a secret", secret=True),
            Setting("logo_width", int, 120, "pixels", minimum=10, maximum=600),
        ])


def test_hook_otp_pro_register_settings(build: Callable[..., OtpPro]) -> None:
    otp = build(Branding("branding"), providers={"branding": {"colour": "#ff0000", "api_key": "s3cret-value"}})
    config = otp.plugin_settings["branding"]
    assert config["colour"] == "#ff0000" and config["logo_width"] == 120
    assert config.secret("api_key") == "s3cret-value"
    assert "s3cret-value" not in repr(config) and "s3cret-value" not in str(otp.redacted_settings())
    assert otp.redacted_settings()["providers"]["branding"]["api_key"] == "********"
    with pytest.raises(ConfigurationError) as bad:
        build(Branding("branding"), providers={"branding": {"logo_width": 5, "colour_typo": "x"}})
    assert {p.split(":")[0] for p in bad.value.problems} == {
        "providers.branding.logo_width", "providers.branding.colour_typo"}
    # Without the plugin the section is an unknown provider.
    with pytest.raises(ConfigurationError, match=r"providers\.branding"):
        build(providers={"branding": {"colour": "#ff0000"}})


class Clash(Plugin):
    @hookimpl
    def otp_pro_register_settings(self, register: Callable[[str, list[Setting]], None]) -> None:
        register("email", [Setting("x", str, "y")])


def test_register_settings_name_clash_is_reported_by_plugin(build: Callable[..., OtpPro]) -> None:
    otp = build(Clash("clashing"))
    assert "email" in (info(otp, "clashing").error or "")
    assert "email" in otp.transports


class Checks(Plugin):
    def __init__(self, name: str, answer: Any) -> None:
        super().__init__(name)
        self.answer = answer
        self.seen: list[OtpPro] = []

    @hookimpl
    def otp_pro_startup(self, otp: OtpPro) -> Any:
        self.seen.append(otp)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_hook_otp_pro_startup(build: Callable[..., OtpPro]) -> None:
    fine = Checks("fine", None)
    otp = build(fine)
    assert fine.seen == [otp] and otp.db.has_tables()  # called once, with the database ready
    with pytest.raises(ConfigurationError) as failed:
        build(Checks("templates", ["providers.html_email.template_dir: code.html line 3: unexpected '}'"]),
              Checks("crashes", RuntimeError("no template folder")))
    problems = failed.value.problems
    assert "providers.html_email.template_dir: code.html line 3: unexpected '}'" in problems
    assert any(p.startswith("plugin crashes: failed at start-up: RuntimeError") for p in problems)


class Directory(Plugin):
    def __init__(self, name: str, people: Mapping[str, Member]) -> None:
        super().__init__(name)
        self.people = people
        self.asked: list[str] = []

    @hookimpl
    def otp_pro_member_lookup(self, otp: OtpPro, member_id: str) -> Member | None:
        self.asked.append(member_id)
        return self.people.get(member_id)


def test_hook_otp_pro_member_lookup(build: Callable[..., OtpPro]) -> None:
    ann = Member("42", roles=["editor"], email="ann@example.com")
    bob = Member("43", email="bob@example.com")
    staff = Directory("acme_staff", {"42": ann})
    customers = Directory("acme_customers", {"43": bob})
    otp = build(staff, customers)

    # Whichever plugin is asked first, one of these answers needed its None to pass the question on.
    assert otp.member("42") is ann
    assert otp.member(43) is bob  # type: ignore[arg-type]  # an int id is accepted too
    assert "43" in customers.asked  # ids reach plugins as strings
    with pytest.raises(UnknownMember, match="nobody"):
        otp.member("nobody")

    with pytest.raises(UnknownMember):
        build().member("42")  # no lookup plugin at all


# ------------------------------------------------------------------ plugin host


class ExplodesOnRegister(Plugin):
    @hookimpl
    def otp_pro_register_transports(self, register: Callable[[type[Transport]], None]) -> None:
        raise RuntimeError("fax modem on fire")


class RegistersNonsense(Plugin):
    @hookimpl
    def otp_pro_register_transports(self, register: Callable[[type[Transport]], None]) -> None:
        register(dict)  # type: ignore[arg-type]


def test_plugin_raising_in_register_hook_is_reported_and_others_work(
    build: Callable[..., OtpPro], member: Member, clock: Clock
) -> None:
    otp = build(
        ExplodesOnRegister("acme_broken"),
        RegistersNonsense("acme_nonsense"),
        Pigeons("acme_pigeons"),
        channels=["outbox:code", "pigeon:code"],
        providers={"pigeon": {"loft": "x"}},
    )
    broken = info(otp, "acme_broken")
    assert broken.error is not None
    assert "RuntimeError" in broken.error and "fax modem on fire" in broken.error
    assert broken.builtin is False
    assert broken.module == __name__
    nonsense = info(otp, "acme_nonsense")
    assert nonsense.error is not None and "not a named Transport subclass" in nonsense.error
    assert info(otp, "acme_pigeons").error is None
    for name, _module in DEFAULT_PLUGINS:
        builtin = info(otp, name)
        assert builtin.builtin and builtin.enabled and builtin.error is None
        assert builtin.distribution == "otp-pro-core"

    enrol(otp, member)  # the outbox still works
    clock.advance(31)
    otp.send_challenge(member, channel="outbox:code")
    assert otp.verify(member, outbox_code(otp)).ok
    assert "pigeon:code" in otp.channels


class UnknownHook(Plugin):
    @hookimpl
    def otp_pro_nonexistent(self, member: Member) -> None:  # a misspelt or future hook
        raise AssertionError("never called")

    @hookimpl
    def otp_pro_register_transports(self, register: Callable[[type[Transport]], None]) -> None:
        register(PigeonTransport)


class WrongArguments(Plugin):
    @hookimpl
    def otp_pro_channel_available(self, member: Member, channel: str, colour: str) -> None:
        raise AssertionError("never called")


def test_plugin_with_unknown_hook_is_reported_and_skipped(build: Callable[..., OtpPro], member: Member) -> None:
    otp = build(UnknownHook("acme_unknown"), WrongArguments("acme_wrong_args"), channels=["outbox:code", "email:code"])
    unknown = info(otp, "acme_unknown")
    assert unknown.error is not None and "otp_pro_nonexistent" in unknown.error
    assert unknown.transports == ()
    assert "pigeon" not in otp.transports  # skipped entirely, not half-registered
    wrong = info(otp, "acme_wrong_args")
    assert wrong.error is not None and "otp_pro_channel_available" in wrong.error
    assert otp.status(member).channels == ("outbox:code", "email:code")  # the skipped hook never ran
    enrol(otp, member)

    with pytest.raises(ConfigurationError) as caught:
        build(UnknownHook("acme_unknown"), channels=["pigeon:code"], default_channel="pigeon:code")
    assert caught.value.key == "channels"


class OtherPigeons(Plugin):
    @hookimpl
    def otp_pro_register_transports(self, register: Callable[[type[Transport]], None]) -> None:
        register(type("OtherPigeon", (PigeonTransport,), {"label": "Impostor"}))


class FakeOutbox(Plugin):
    @hookimpl
    def otp_pro_register_transports(self, register: Callable[[type[Transport]], None]) -> None:
        register(type("FakeOutbox", (PigeonTransport,), {"name": "outbox"}))


def test_duplicate_transport_name_is_reported(build: Callable[..., OtpPro], member: Member) -> None:
    otp = build(
        Pigeons("acme_pigeons"),
        OtherPigeons("acme_other_pigeons"),
        FakeOutbox("acme_fake_outbox"),
        providers={"pigeon": {"loft": "x"}},
    )
    other = info(otp, "acme_other_pigeons")
    assert other.error is not None
    assert "'pigeon'" in other.error and "acme_pigeons" in other.error and "acme_other_pigeons" in other.error
    assert other.transports == ()
    fake = info(otp, "acme_fake_outbox")
    assert fake.error is not None and "otp_pro_outbox" in fake.error
    # The first registration stands.
    assert otp.channels["pigeon:code"].label == "Carrier pigeon"
    assert type(otp.transports["outbox"]).__name__ == "OutboxTransport"
    enrol(otp, member)


def test_duplicate_plugin_name_is_reported(build: Callable[..., OtpPro]) -> None:
    otp = build(Pigeons("otp_pro_outbox"))
    reports = [p for p in otp.plugins() if p.name == "otp_pro_outbox"]
    assert [r.builtin for r in reports] == [True, False]
    assert reports[0].error is None and reports[0].transports == ("outbox",)
    assert reports[1].error is not None and "already registered" in reports[1].error


def _assert_outbox_disabled(make: Callable[[], OtpPro], alone: Callable[[], OtpPro]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        make()
    assert caught.value.key == "channels"
    assert "channels" in str(caught.value) and "outbox:code" in str(caught.value)

    otp = alone()
    outbox = info(otp, "otp_pro_outbox")
    assert outbox.enabled is False and outbox.error is None
    assert "outbox" not in otp.transports
    assert "outbox:code" not in otp.channels
    assert info(otp, "otp_pro_email").enabled  # the others stay on
    assert "email:code" in otp.channels


def test_disable_plugins_setting(build: Callable[..., OtpPro], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    _assert_outbox_disabled(
        lambda: build(disable_plugins=["otp_pro_outbox"]),
        lambda: build(disable_plugins=["otp_pro_outbox"], channels=["email:code"], default_channel="email:code"),
    )


def test_disable_plugins_environment_variable(build: Callable[..., OtpPro], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DISABLE_ENV, " otp_pro_not_installed , otp_pro_outbox,")
    _assert_outbox_disabled(
        lambda: build(),
        lambda: build(channels=["email:code"], default_channel="email:code"),
    )
    monkeypatch.delenv(DISABLE_ENV)
    assert "outbox:code" in build().channels  # read per instance, not cached


def test_disabled_plugin_hooks_do_not_run(build: Callable[..., OtpPro], member: Member,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DISABLE_ENV, "acme_fax_policy")
    plugin = FaxOnly("acme_fax_policy")
    otp = build(plugin)
    assert info(otp, "acme_fax_policy").enabled is False
    assert otp.status(member).unavailable == {}
    assert plugin.calls == []


# ------------------------------------------------------------------ meta-tests


class Commands(Plugin):
    """Adds ``otp-pro acme-hello``, tries a core name, then passes something that is not a command."""

    @hookimpl
    def otp_pro_cli_commands(self, register: Callable[[Any], None]) -> None:
        import click

        register(click.Command("acme-hello", callback=lambda: click.echo("hello")))
        register(click.Command("init"))
        register("not a command")


class MoreCommands(Plugin):
    @hookimpl
    def otp_pro_cli_commands(self, register: Callable[[Any], None]) -> None:
        import click

        register(click.Command("acme-hello"))
        register(click.Group("acme-tools"))


def test_hook_otp_pro_cli_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from otp_pro.cli import cli, discover

    monkeypatch.delenv(DISABLE_ENV, raising=False)
    plugins = [Commands("acme_cmds"), MoreCommands("acme_more")]
    found = discover(cli.commands, config=str(tmp_path / "absent.toml"), extra=plugins)
    assert {name: found.owners[name] for name in found.commands if name.startswith("acme")} == {
        "acme-hello": "acme_cmds", "acme-tools": "acme_more"}
    assert found.warnings[-3:] == [
        "plugin acme_cmds: command 'init' refused: it is a core otp-pro command",
        "plugin acme_cmds failed to add commands: TypeError: register() takes a named click.Command or "
        "click.Group, not 'not a command'",
        "plugin acme_more: command 'acme-hello' refused: already registered by plugin acme_cmds",
    ]
    result = CliRunner().invoke(cli, ["acme-hello"], obj={"plugins": plugins})
    assert result.exit_code == 0 and result.output.endswith("hello\n")
    # The settings file's disable_plugins and the environment variable both switch a plugin's commands off.
    settings = tmp_path / "otp-pro.toml"
    settings.write_text('disable_plugins = ["acme_cmds"]\n')
    again = discover(cli.commands, config=str(settings), extra=plugins)
    assert again.owners["acme-hello"] == "acme_more"  # with acme_cmds off, the other plugin's command is taken
    monkeypatch.setenv(DISABLE_ENV, "acme_more")
    assert not [n for n in discover(cli.commands, config=str(settings), extra=plugins).commands if n.startswith("acme")]


def test_hook_otp_pro_register_dispatchers(build: Callable[..., OtpPro], member: Member) -> None:
    from otp_pro.dispatch import Dispatcher

    class Tube(Dispatcher):
        """A pneumatic tube: keeps the challenge ids; the test is the worker at the other end."""

        name = "tube"

        def __init__(self, otp: OtpPro) -> None:
            super().__init__(otp)
            self.ids: list[int] = []

        def enqueue(self, challenge_id: int) -> None:
            self.ids.append(challenge_id)

    class Tubes(Plugin):
        @hookimpl
        def otp_pro_register_dispatchers(self, register: Callable[[type[Dispatcher]], None]) -> None:
            register(Tube)

    class Clash(Plugin):
        @hookimpl
        def otp_pro_register_dispatchers(self, register: Callable[[type[Dispatcher]], None]) -> None:
            register(Tube)

    otp = build(Tubes("acme_tubes"), dispatcher="tube")
    tube = otp.dispatcher
    assert isinstance(tube, Tube)
    setup = otp.begin_setup(member, "outbox:code")
    assert setup.challenge is not None and setup.challenge.status == "queued" and tube.ids == [setup.challenge.id]
    assert otp.transports["outbox"].last() is None  # type: ignore[attr-defined]
    assert otp.deliver_queued(tube.ids[0]).action == "sent"
    otp.complete_setup(member, outbox_code(otp))
    # A second plugin registering the same name is reported by name; the first one keeps it.
    otp = build(Tubes("acme_tubes"), Clash("acme_clash"), dispatcher="tube")
    clash = info(otp, "acme_clash")
    assert clash.error is not None and "already registered by plugin acme_tubes" in clash.error
    with pytest.raises(ConfigurationError, match="dispatcher: no installed plugin provides the dispatcher 'tube'"):
        build(dispatcher="tube")


def test_every_hook_has_a_test() -> None:
    names = spec_names()
    assert len(names) >= 7
    missing = [name for name in names if not callable(globals().get(f"test_hook_{name}"))]
    assert not missing, f"hooks without a test_hook_<name> in {__name__}: {missing}"
    stale = [n for n in globals() if n.startswith("test_hook_") and n[len("test_hook_"):] not in names]
    assert not stale, f"tests for hooks that do not exist: {stale}"


def documented_sections() -> dict[str, str]:
    """``## heading`` -> the text under it, from docs/plugin-hooks.md."""
    text = DOCS.read_text(encoding="utf-8")
    sections: dict[str, str] = {}
    for chunk in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        heading, _, body = chunk.partition("\n")
        sections[heading.strip().strip("`")] = body
    return sections


def signature_text(name: str) -> str:
    """The documented form of a hook's signature: ``name(arg: 'Type', ...) -> 'Return'``."""
    return f"{name}{inspect.signature(getattr(hookspecs, name))}"


def test_every_hook_is_documented_with_its_signature() -> None:
    sections = documented_sections()
    problems = []
    for name in spec_names():
        body = sections.get(name)
        if body is None:
            problems.append(f"{name}: no '## {name}' heading")
            continue
        blocks = re.findall(r"```[a-z]*\n(.*?)```", body, flags=re.DOTALL)
        if not any(signature_text(name) in block for block in blocks):
            problems.append(f"{name}: signature not in a code block, expected {signature_text(name)}")
    documented_hooks = [h for h in sections if h.startswith(f"{hookspecs.PROJECT_NAME}_")]
    problems += [f"{h}: documented but not a hookspec" for h in documented_hooks if h not in spec_names()]
    assert not problems, f"{DOCS}:\n" + "\n".join(problems)


class BrokenOnTheOutbox(Plugin):
    """A renderer whose template for one channel (the policy's default in these tests) is broken (while
    ``broken``)."""

    broken = True

    @hookimpl
    def otp_pro_render_message(self, channel: str) -> Message | None:
        if self.broken and channel == "outbox:code":
            raise RuntimeError("template for the outbox is broken")
        return None


def test_a_renderer_broken_on_the_default_channel_fails_only_the_sends_on_that_channel(
        make_otp: Callable[..., OtpPro], member: Member, mailbox: Any) -> None:
    """On PostgreSQL the message is first made for the policy's default channel: a renderer that fails
    there must not fail a send to a member whose own channel is another (docs/plugin-hooks.md); a send on
    the broken channel still fails, with nothing recorded."""
    from sqlalchemy import func, select

    from otp_pro import PluginError
    from otp_pro.storage.schema import challenges

    renderer = BrokenOnTheOutbox("acme_broken")
    otp = make_otp(plugins=[renderer])  # default channel: outbox:code
    otp.begin_setup(member, "email:code")
    otp.complete_setup(member, mailed_code(mailbox, "ann@example.com"))
    # The member's second factor is on the outbox (only a member's own factors are sent to): its template
    # works for the setup's confirmation, and is broken from then on.
    with pytest.raises(PluginError, match="acme_broken"):
        otp.begin_setup(member, "outbox:code")
    renderer.broken = False
    assert enrol(otp, member, "outbox:code") == []
    renderer.broken = True
    assert [(f.kind, f.is_default) for f in otp.factors(member)] == [("email:code", True), ("outbox:code", False)]
    challenge = otp.send_challenge(member)
    assert challenge.channel == "email:code" and challenge.status == "sent"
    assert otp.verify(member, mailed_code(mailbox, "ann@example.com")).ok
    with otp.db.read() as conn:
        before = conn.execute(select(func.count()).select_from(challenges)).scalar_one()
    with pytest.raises(PluginError, match="acme_broken"):
        otp.send_challenge(member, channel="outbox:code")
    with otp.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(challenges)).scalar_one() == before


def test_every_hook_says_what_an_exception_does() -> None:
    sections = documented_sections()
    problems = [f"{name}: hookspec docstring has no 'If it raises'" for name in spec_names()
                if "If it raises" not in (getattr(hookspecs, name).__doc__ or "")]
    problems += [f"{name}: no '**If it raises**' in {DOCS.name}" for name in spec_names()
                 if "**If it raises**" not in sections.get(name, "")]
    assert not problems, "\n".join(problems)


class KindsListener(Plugin):
    """Keeps the kinds of the events it receives."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.kinds: list[str] = []

    @hookimpl
    def otp_pro_event(self, event: AuditEvent) -> None:
        self.kinds.append(event.kind)


class BrokenListener(Plugin):
    @hookimpl
    def otp_pro_event(self, event: AuditEvent) -> None:
        raise RuntimeError(f"cannot handle {event.kind}")


class EventWrapper(Plugin):
    """A pluggy hook wrapper around every listener: sees the call and what the listeners answered."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.outcomes: list[list[Any]] = []

    @hookimpl(wrapper=True)
    def otp_pro_event(self) -> Any:
        answers = yield
        self.outcomes.append(list(answers))
        return answers


def test_hooks_are_called_through_pluggy_and_one_failure_does_not_stop_the_others(
        build: Callable[..., OtpPro], caplog: pytest.LogCaptureFixture) -> None:
    from otp_pro.hookcall import HookFailure

    # Registered after the good listener, the broken one is called first (pluggy's order).
    good, broken, wrapper = KindsListener("acme_good"), BrokenListener("acme_broken"), EventWrapper("acme_wrapper")
    otp = build(good, broken, wrapper)
    traced: list[str] = []
    undo = otp.host.pm.add_hookcall_monitoring(lambda name, impls, kwargs: traced.append(name),
                                               lambda outcome, name, impls, kwargs: None)
    try:
        otp.record_event("acme_ping", "ann")
    finally:
        undo()
    assert "otp_pro_event" in traced  # pluggy's monitoring sees the call
    assert good.kinds == ["acme_ping"]  # called after the broken one raised
    assert len(wrapper.outcomes) == 1
    failures = [a for a in wrapper.outcomes[0] if isinstance(a, HookFailure)]
    assert [(f.plugin, type(f.error)) for f in failures] == [("acme_broken", RuntimeError)]
    assert "otp-pro plugin acme_broken failed in otp_pro_event: RuntimeError" in caplog.text
    assert "cannot handle" not in caplog.text  # the log policy gives the type, never the text
