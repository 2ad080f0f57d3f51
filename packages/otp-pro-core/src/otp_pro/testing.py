"""Helpers for testing otp-pro and its plugins (the start of the third-party authoring kit).

Installed with otp-pro-core, this module is a pytest plugin (entry point
``pytest11``; it needs the ``testing`` extra, i.e. pytest, and aiosmtpd for the
SMTP fixture). Its fixtures:

* ``clock``: a :class:`Clock` tests can move;
* ``smtp_server`` / ``mailbox``: a real SMTP server (aiosmtpd) on 127.0.0.1 and
  what it received, parsed with the standard library's ``email`` package;
* ``pg_url``: a PostgreSQL database made for the run, migrated, dropped at the
  end, or None when ``OTP_PRO_TEST_POSTGRES_URL`` is not set;
* ``backend``: a database URL, once on SQLite and once on PostgreSQL (skipped,
  saying why, without ``OTP_PRO_TEST_POSTGRES_URL``); ``sqlite_url``: SQLite only.

* ``otp``: an :class:`~otp_pro.OtpPro` on a fresh SQLite file, closed after the
  test; configure it by overriding ``otp_settings`` (a dict) and ``otp_plugins``
  (plugin objects passed as ``OtpPro(plugins=...)``);
* ``otp_factory``: ``otp_factory(settings, plugins=())`` builds more instances on the
  ``clock`` and closes every one when the test ends;
* ``make_member``: builds :class:`~otp_pro.Member` objects with unique ids;
* ``register_plugin``: registers a plugin object on an instance's plugin manager
  for one test and always unregisters it, even when the test fails.

``system_chromium()`` opens the system's Chromium (Debian's ``chromium``) through
Playwright for browser tests, failing under CI and skipping elsewhere without it.

``DiscoveryContract`` checks that an installed distribution is found through
the ``otp_pro`` entry-point group and loaded by the core's plugin manager, and
that both switches (``disable_plugins`` and ``OTP_PRO_DISABLE_PLUGINS``) turn
it off; discovery in a fresh interpreter must not import ``lazy_imports``.
Subclass it in a test module and set the class attributes::

    class TestDiscovery(DiscoveryContract):
        entry_point = "otp_pro_acme_fax"
        distribution = "otp-pro-acme-fax"
        module = "otp_pro_acme_fax.plugin"
        lazy_imports = ("acme_fax_sdk",)  # optional

``TransportContract`` is the behaviour every transport owes the core
(registration, settings and redaction, recipients, availability, sending,
failure mapping, dry-run, no leaked secret); a transport's test module
subclasses it and points it at a real fake of its provider.
``EmailTransportContract`` is that contract already set up for the built-in
``email`` transport on a loopback SMTP server that checks the login, for
templating and payload plugins to run with themselves installed.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import importlib
import importlib.metadata
import itertools
import json
import logging
import os
import re
import secrets
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import pytest

from .core import OtpPro
from .errors import (
    ChannelUnavailable,
    ConfigurationError,
    DeliveryError,
    InvalidCode,
    PermanentDeliveryError,
    RecipientUnavailable,
    TransientDeliveryError,
)
from .hookspecs import hookimpl
from .member import Member
from .plugins import DISABLE_ENV, ENTRY_POINT_GROUP
from .secret import REDACTED
from .transports import Transport

PG_ENV = "OTP_PRO_TEST_POSTGRES_URL"


def pytest_configure(config: pytest.Config) -> None:
    # smtp_login_server offers AUTH without TLS on purpose (loopback only); aiosmtpd warns at every connection.
    config.addinivalue_line("filterwarnings", "ignore:Requiring AUTH while not requiring TLS:UserWarning")

PG_SKIP_REASON = f"PostgreSQL tests skipped: set {PG_ENV} (CI sets it) to run them"

#: Flags for a headless Chromium in a container or CI runner (no sandbox, nothing fetched in the background).
CHROMIUM_ARGS = (
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
)


def in_ci() -> bool:
    """Whether ``CI`` is set to a true value (``.ci/run`` sets ``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """A test's requirement is missing: a failure under CI, a skip that says why elsewhere."""
    if in_ci():
        pytest.fail(f"browser test cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"browser test skipped (set CI=true to make this a failure): {reason}")


@contextmanager
def system_chromium(extra: str = "test") -> Iterator[Any]:
    """The system's Chromium (Debian's ``chromium``, ``/usr/bin/chromium``), headless, driven by Playwright.

    No browser is ever downloaded (never ``playwright install``). Without Chromium or the
    ``playwright`` package the test fails under CI and is skipped elsewhere (:func:`unavailable`);
    ``extra`` names the extra that installs playwright, for that message.
    """
    import shutil

    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.isfile(executable):
        unavailable("Chromium is not installed: `apt-get install chromium` (Debian's package, /usr/bin/chromium); "
                    "never `playwright install`")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable(f"the playwright package is missing: install the `{extra}` extra")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()



class Clock:
    """A clock tests can move. Starts at a fixed instant 10 s into a TOTP step."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime(2026, 11, 23, 12, 0, 10, tzinfo=timezone.utc)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, seconds: float = 0, **kw: float) -> datetime:
        """Move forward by ``seconds`` (and any ``timedelta`` keywords: ``days=1``)."""
        with self._lock:
            self.now = self.now + timedelta(seconds=seconds, **kw)
            return self.now


@pytest.fixture
def clock() -> Clock:
    """A fresh :class:`Clock` for each test."""
    return Clock()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed_certificate(folder: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, written as ``cert.pem`` and ``key.pem`` in ``folder``.

    Self-signed (its own CA): a client verifies it only when told to trust it
    (``SSL_CERT_FILE``), so a TLS server holding it shows a transport's "certificate
    does not verify" path against a real handshake. Returns the two paths.
    """
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = Path(folder) / "cert.pem", Path(folder) / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


def tls_server_context(folder: Path) -> ssl.SSLContext:
    """A server-side TLS context holding a fresh :func:`self_signed_certificate` (files kept in ``folder``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed_certificate(folder))
    return context


class Mailbox:
    """Messages received by the loopback SMTP server, parsed with the standard library's ``email``."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        #: Set to an SMTP reply ("451 try later") to refuse the next DATA with it.
        self.reply: str | None = None
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            if self.reply is not None:
                reply, self.reply = self.reply, None
                return reply
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        """Messages whose To header contains ``address``, oldest first."""
        with self._lock:
            return [m for m in self.messages if address in str(m["To"])]

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.envelopes.clear()
            self.reply = None


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[str, int, Mailbox]]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 for the whole run: ``(host, port, mailbox)``."""
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.hostname, controller.port, mailbox
    finally:
        controller.stop()


@pytest.fixture
def mailbox(smtp_server: tuple[str, int, Mailbox]) -> Mailbox:
    """The loopback server's mailbox, emptied for this test."""
    smtp_server[2].clear()
    return smtp_server[2]


@contextmanager
def temporary_pg_database(base_url: str, prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database beside ``base_url``'s, dropped afterwards; yields its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
            ), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str | None]:
    """A migrated PostgreSQL database for the run, or None without ``OTP_PRO_TEST_POSTGRES_URL``."""
    from sqlalchemy import create_engine

    from .storage import migrate

    base = os.environ.get(PG_ENV)
    if not base:
        yield None
        return
    with temporary_pg_database(base, "otp_pro_test") as url:
        engine = create_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, pg_url: str | None) -> str:
    """A database URL, once per database: a fresh SQLite file, then the run's PostgreSQL database emptied.

    The PostgreSQL variant is skipped, with :data:`PG_SKIP_REASON`, when ``OTP_PRO_TEST_POSTGRES_URL`` is not set.
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/otp.sqlite3"
    if pg_url is None:
        pytest.skip(PG_SKIP_REASON)
    truncate_all(pg_url)
    return pg_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file for this test."""
    return f"sqlite:///{tmp_path}/otp.sqlite3"


def truncate_all(url: str) -> None:
    """Empty every otp-pro table (between PostgreSQL tests that share the run's database)."""
    from sqlalchemy import create_engine, text

    from .storage.schema import metadata

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(t.name for t in metadata.sorted_tables)} RESTART IDENTITY"))
    engine.dispose()


class DiscoveryContract:
    """Tests every plugin distribution should pass: discovered, loaded, switchable off."""

    entry_point: ClassVar[str]
    distribution: ClassVar[str]
    module: ClassVar[str]
    #: Heavy modules the plugin must not import while it is only discovered (``otp-pro providers list``
    #: discovers every plugin): an SDK or a template engine waits until a message needs it.
    lazy_imports: ClassVar[tuple[str, ...]] = ()

    @pytest.fixture
    def settings(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
        """Settings for an OtpPro on a fresh SQLite file, with no plugin blocked from outside."""
        monkeypatch.delenv(DISABLE_ENV, raising=False)
        return {"secret_key": "discovery-contract-" + "x" * 32, "database_url": f"sqlite:///{tmp_path}/t.sqlite3"}

    def _entry_point(self) -> importlib.metadata.EntryPoint:
        found = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == self.entry_point]
        assert len(found) == 1, f"expected one {ENTRY_POINT_GROUP} entry point named {self.entry_point}, found {found}"
        return found[0]

    def _plugin(self, settings: dict[str, Any]) -> Any:
        otp = OtpPro(settings)
        try:
            return {p.name: p for p in otp.plugins()}[self.entry_point]
        finally:
            otp.close()

    def test_entry_point_points_at_the_plugin_module(self) -> None:
        ep = self._entry_point()
        assert ep.value == self.module
        assert ep.dist is not None and ep.dist.name == self.distribution
        assert ep.load() is importlib.import_module(self.module)

    def test_version_matches_the_installed_metadata(self) -> None:
        package = importlib.import_module(self.module.split(".")[0])
        assert package.__version__ == importlib.metadata.version(self.distribution)

    def test_core_plugin_manager_loads_it(self, settings: dict[str, Any]) -> None:
        plugin = self._plugin(settings)
        assert plugin.module == self.module
        assert plugin.distribution == self.distribution
        assert plugin.version == importlib.metadata.version(self.distribution)
        assert plugin.error is None
        assert not plugin.builtin
        assert plugin.enabled

    def test_disable_plugins_setting_switches_it_off(self, settings: dict[str, Any]) -> None:
        plugin = self._plugin({**settings, "disable_plugins": [self.entry_point]})
        assert plugin.enabled is False and plugin.error is None

    def test_disable_plugins_environment_variable_switches_it_off(
        self, settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(DISABLE_ENV, self.entry_point)
        assert self._plugin(settings).enabled is False

    def test_discovery_does_not_import_heavy_dependencies(self) -> None:
        """In a fresh interpreter, discovery finds the plugin and leaves ``lazy_imports`` unimported."""
        import subprocess
        import sys

        probe = ("import sys\n"
                 "from otp_pro.plugins import PluginHost\n"
                 "host = PluginHost()\n"
                 "host.collect_providers()\n"
                 f"assert {self.entry_point!r} in {{p.name for p in host.infos()}}\n"
                 f"print(' '.join(m for m in {self.lazy_imports!r} if m in sys.modules))")
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
        assert done.stdout.split() == []


# ------------------------------------------------------------------ OtpPro, members, plugins

#: The ``secret_key`` of the ``otp`` fixture's settings (test use only).
TEST_SECRET_KEY = "otp-pro-testing-secret-key-" + "k" * 32

#: Hooks that run only while an ``OtpPro`` starts: a plugin implementing one must be
#: passed at construction (the ``otp_plugins`` fixture), not registered afterwards.
STARTUP_HOOKS = frozenset({
    "otp_pro_register_transports", "otp_pro_register_payloads", "otp_pro_register_settings", "otp_pro_startup",
})


@pytest.fixture
def otp_settings(tmp_path: Path) -> dict[str, Any]:
    """Settings of the ``otp`` fixture: a fresh SQLite file, ``visible`` mode, no resend cooldown.

    Override this fixture (in a conftest, module or class) to change them; it may
    request other fixtures, such as a loopback server whose URL goes in ``providers``.
    """
    return {
        "secret_key": TEST_SECRET_KEY,
        "database_url": f"sqlite:///{tmp_path}/otp.sqlite3",
        "site_name": "Example",
        "support_email": "help@example.com",
        "mode": "visible",
        # Tests that are not about throttling should not trip over it.
        "resend_cooldown_seconds": 0,
    }


@pytest.fixture
def otp_plugins() -> list[object]:
    """Plugin objects the ``otp`` fixture passes as ``OtpPro(plugins=...)`` (none by default).

    Override it for plugins that register transports, payloads or settings: those
    hooks run only while an instance starts.
    """
    return []


@pytest.fixture
def otp_factory(clock: Clock) -> Iterator[Callable[..., OtpPro]]:
    """``otp_factory(settings, plugins=(), **kwargs)``: :class:`~otp_pro.OtpPro` instances on the ``clock``,
    every one closed when the test ends (passed or failed). Build a test's own ``make_otp`` on it."""
    made: list[OtpPro] = []

    def factory(settings: Mapping[str, Any], *, plugins: Iterable[object] = (), **kwargs: Any) -> OtpPro:
        instance = OtpPro(settings, plugins=plugins, clock=clock, **kwargs)
        made.append(instance)
        return instance

    yield factory
    for instance in made:
        instance.close()


@pytest.fixture
def otp(otp_settings: dict[str, Any], otp_plugins: list[object], otp_factory: Callable[..., OtpPro]) -> OtpPro:
    """An :class:`~otp_pro.OtpPro` built from ``otp_settings`` and ``otp_plugins`` on the ``clock``; closed afterwards.

    Installed plugins are discovered as in production (entry-point group ``otp_pro``).
    """
    return otp_factory(otp_settings, plugins=otp_plugins)


_UNSET: Any = object()


@pytest.fixture
def make_member() -> Callable[..., Member]:
    """Build members with unique ids: ``make_member()``, ``make_member(roles=["admin"], fields={"phone": ...})``.

    Defaults: id ``member-<n>``, email ``<id>@example.com`` (``email=None`` for none),
    name ``Member <n>``, no roles, no fields.
    """
    counter = itertools.count(1)

    def factory(
        id: str | int | None = None,
        *,
        roles: Sequence[str] = (),
        email: str | None = _UNSET,
        name: str | None = _UNSET,
        fields: Mapping[str, Any] | None = None,
    ) -> Member:
        number = next(counter)
        member_id = str(id) if id is not None else f"member-{number}"
        return Member(
            member_id,
            roles=roles,
            email=f"{member_id}@example.com" if email is _UNSET else email,
            name=f"Member {number}" if name is _UNSET else name,
            fields=fields,
        )

    return factory


@contextmanager
def registered_plugin(otp: OtpPro, plugin: object, *, name: str | None = None) -> Iterator[str]:
    """Register ``plugin`` on ``otp``'s plugin manager for the ``with`` block; yields the name it got.

    It is unregistered by object (never by a name that may belong to another plugin)
    when the block ends, however it ends. A plugin implementing a start-up hook
    (:data:`STARTUP_HOOKS`) is refused: registered late, it would be silently ignored.
    """
    pm = otp.host.pm
    late = sorted(attr for attr in STARTUP_HOOKS
                  if callable(getattr(plugin, attr, None)) and pm.parse_hookimpl_opts(plugin, attr) is not None)
    if late:
        raise ValueError(
            f"{plugin!r} implements {', '.join(late)}, which only run while OtpPro starts: "
            "pass it to OtpPro(plugins=[...]) (the otp_plugins fixture) instead"
        )
    chosen = name or getattr(plugin, "__name__", None) or f"{type(plugin).__name__}-{id(plugin):x}"
    pm.register(plugin, name=chosen)
    try:
        # A misspelt hook name would otherwise be ignored without a word.
        pm.check_pending()
    except Exception:
        pm.unregister(plugin)
        raise
    try:
        yield chosen
    finally:
        if pm.is_registered(plugin):
            pm.unregister(plugin)


class PluginRegistrar:
    """The ``register_plugin`` fixture: ``register_plugin(plugin, name=None, otp=None)`` returns the plugin's name.

    Without ``otp`` the plugin goes on the test's ``otp`` fixture. Every plugin is
    unregistered when the test ends, passed or failed.
    """

    def __init__(self, request: pytest.FixtureRequest):
        self._request = request
        self._stack = ExitStack()

    def __call__(self, plugin: object, *, name: str | None = None, otp: OtpPro | None = None) -> str:
        target = otp if otp is not None else self._request.getfixturevalue("otp")
        return self._stack.enter_context(registered_plugin(target, plugin, name=name))

    def close(self) -> None:
        self._stack.close()


@pytest.fixture
def register_plugin(request: pytest.FixtureRequest) -> Iterator[PluginRegistrar]:
    """Register plugins for this test only; see :class:`PluginRegistrar`."""
    registrar = PluginRegistrar(request)
    try:
        yield registrar
    finally:
        registrar.close()


# ------------------------------------------------------------------ TOML for CLI tests


def settings_toml(settings: Mapping[str, Any]) -> str:
    """``settings`` (strings, numbers, booleans, lists, nested tables; None left out) as a TOML document."""
    lines: list[str] = []

    def key(name: str) -> str:
        return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)

    def value(item: Any) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, (int, float)):
            return repr(item)
        if isinstance(item, str):
            return json.dumps(item)  # JSON string escapes are valid TOML basic-string escapes
        if isinstance(item, (list, tuple)):
            return "[" + ", ".join(value(v) for v in item) + "]"
        raise TypeError(f"cannot write {type(item).__name__} as TOML")

    def table(prefix: str, data: Mapping[str, Any]) -> None:
        nested = []
        for name, item in data.items():
            if item is None:
                continue
            if isinstance(item, Mapping):
                nested.append((name, item))
            else:
                lines.append(f"{key(name)} = {value(item)}")
        for name, item in nested:
            header = f"{prefix}.{key(name)}" if prefix else key(name)
            lines.append(f"\n[{header}]")
            table(header, item)

    table("", settings)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ the transport contract

SUCCESS = "success"
PERMANENT = "permanent"
TRANSIENT = "transient"


@dataclass(frozen=True)
class Received:
    """One message as the provider's fake received it: to whom, and its text (where the code or link is)."""

    recipient: str
    text: str


class _PayloadSpy:
    """A listener the contract adds to its instance: every payload (code, link) put in a message."""

    __name__ = "otp_pro_testing_payload_spy"

    def __init__(self) -> None:
        self.payloads: list[str] = []

    @hookimpl
    def otp_pro_message_variables(self, variables: Mapping[str, Any]) -> None:
        if variables.get("payload"):
            self.payloads.append(str(variables["payload"]))


class TransportContract:
    """What every transport owes the core, checked against a real fake of its provider.

    Subclass it in a test module, set the class attributes, provide two fixtures
    and two methods, and every ``test_*`` below runs against your transport::

        class TestWebhookContract(TransportContract):
            transport = "webhook"
            distribution = "otp-pro-webhook"
            secret_settings = ("signing_secret",)
            recipient_member = Member("m-1", fields={"webhook": "U024BE7LH"})
            recipient = "U024BE7LH"

            @pytest.fixture
            def provider(self):                      # the real fake service, on loopback
                with Receiver(SECRET) as receiver:
                    yield receiver

            @pytest.fixture
            def transport_settings(self, provider):  # providers.<transport>
                return {"url": provider.url, "signing_secret": SECRET}

            def arrange(self, provider, outcome):    # SUCCESS, PERMANENT or TRANSIENT
                provider.status = {SUCCESS: 200, PERMANENT: 410, TRANSIENT: 503}[outcome]

            def received(self, provider):            # what reached the provider, oldest first
                return [Received(d["recipient"], d["text"]) for d in provider.deliveries]

    ``arrange`` must make the provider answer the next send that way, on every
    attempt when the transport retries, until arranged otherwise. ``received``
    lists what the provider got, including requests it answered with an error.

    The contract builds its own :class:`~otp_pro.OtpPro` (the ``otp`` fixture,
    redefined here) on a fresh SQLite file with ``channels = [<transport>:<payload>,
    "totp"]``; ``site_settings`` (a fixture, empty by default) adds site settings
    and other ``providers`` sections, ``otp_plugins`` extra plugin objects.
    Logging is captured at DEBUG from before the instance starts; records of
    ``ignored_loggers`` (the fake provider's own, such as aiosmtpd's ``mail.log``)
    are left out of the leak check.

    For a payload other than ``code``, set ``payload`` and override
    :meth:`extract_secret` and :meth:`redeem`.
    """

    #: The transport's name (``providers.<transport>``, channel prefix).
    transport: ClassVar[str]
    #: The distribution that ships it (``otp-pro-core`` for a built-in).
    distribution: ClassVar[str]
    #: The payload the contract sends over the transport.
    payload: ClassVar[str] = "code"
    #: A member the transport can reach, and the recipient it resolves to.
    recipient_member: ClassVar[Member]
    recipient: ClassVar[str]
    #: A member the transport cannot reach (no address on file).
    unreachable_member: ClassVar[Member] = Member("contract-unreachable", name="Nobody")
    #: Settings that must be declared ``secret=True``; ``transport_settings`` must give each a value.
    secret_settings: ClassVar[tuple[str, ...]] = ()
    #: ``(typed, normalised)`` pairs: recipients an administrator may type, and their normalised form.
    recipient_inputs: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: Recipients ``normalize_recipient`` must refuse with ``RecipientUnavailable``.
    invalid_recipients: ClassVar[tuple[str, ...]] = ()
    #: Where provider tests send (default: ``recipient``).
    provider_test_recipient: ClassVar[str | None] = None
    #: Loggers of the fake provider (not the transport), left out of the leak check.
    ignored_loggers: ClassVar[tuple[str, ...]] = ()

    # ----------------------------------------------------------- what a subclass provides

    @pytest.fixture
    def provider(self) -> Any:
        """The real fake of the provider (a loopback server), started and stopped by this fixture."""
        pytest.fail(f"{type(self).__name__} must define a `provider` fixture: the fake provider on loopback")

    @pytest.fixture
    def transport_settings(self, provider: Any) -> dict[str, Any]:
        """The ``providers.<transport>`` section pointing the transport at ``provider``."""
        pytest.fail(f"{type(self).__name__} must define a `transport_settings` fixture")

    @pytest.fixture
    def site_settings(self) -> dict[str, Any]:
        """Extra site settings (and other ``providers`` sections) for the contract's instance."""
        return {}

    def arrange(self, provider: Any, outcome: str) -> None:
        """Make ``provider`` answer the next send with ``outcome``: SUCCESS, PERMANENT or TRANSIENT."""
        raise NotImplementedError(f"{type(self).__name__} must implement arrange(provider, outcome)")

    def received(self, provider: Any) -> list[Received]:
        """Every message the provider received so far, oldest first."""
        raise NotImplementedError(f"{type(self).__name__} must implement received(provider)")

    def extract_secret(self, text: str, otp: OtpPro) -> str:
        """The secret the member would present, found in a received text (default: the one code in it)."""
        found = set(re.findall(rf"(?<!\d)\d{{{otp.settings.code_length}}}(?!\d)", text))
        assert len(found) == 1, f"expected one {otp.settings.code_length}-digit code in the message, found {found}"
        return found.pop()

    def redeem(self, otp: OtpPro, member: Member, secret: str, *, setup: bool) -> bool:
        """Present ``secret`` as the member would; True when accepted (default: type the code)."""
        if setup:
            try:
                return bool(otp.complete_setup(member, secret))
            except InvalidCode:
                return False
        return otp.verify(member, secret).ok

    # ------------------------------------------------------------------ the instance

    @property
    def channel(self) -> str:
        return f"{self.transport}:{self.payload}"

    @pytest.fixture
    def payload_spy(self) -> _PayloadSpy:
        return _PayloadSpy()

    @pytest.fixture
    def otp_settings(
        self, tmp_path: Path, transport_settings: dict[str, Any], site_settings: dict[str, Any]
    ) -> dict[str, Any]:
        """The contract instance's settings: site settings, then ``providers.<transport>``."""
        providers = dict(site_settings.get("providers", {}))
        providers[self.transport] = transport_settings
        return {
            "secret_key": TEST_SECRET_KEY,
            "database_url": f"sqlite:///{tmp_path}/contract.sqlite3",
            "site_name": "Contract Site",
            "support_email": "help@example.com",
            "mode": "visible",
            "channels": [self.channel, "totp"],
            "default_channel": self.channel,
            "resend_cooldown_seconds": 0,
            # Enrolment hashes every backup code with scrypt; the contract needs only one.
            "backup_code_count": 1,
            **{k: v for k, v in site_settings.items() if k != "providers"},
            "providers": providers,
        }

    @pytest.fixture
    def otp(
        self, otp_settings: dict[str, Any], otp_plugins: list[object], clock: Clock, payload_spy: _PayloadSpy,
        caplog: pytest.LogCaptureFixture,
    ) -> Iterator[OtpPro]:
        caplog.set_level(logging.DEBUG)
        instance = OtpPro(otp_settings, plugins=[*otp_plugins, payload_spy], clock=clock)
        try:
            yield instance
        finally:
            instance.close()

    # ------------------------------------------------------------------ helpers

    def _transport(self, otp: OtpPro) -> Transport:
        assert self.transport in otp.transports, f"no transport {self.transport!r} (have: {', '.join(otp.transports)})"
        return otp.transports[self.transport]

    def _setting_secrets(self, otp: OtpPro, transport_settings: Mapping[str, Any]) -> list[str]:
        """Revealed values of the transport's secret settings given in ``transport_settings``."""
        specs = {s.name: s for s in type(self._transport(otp)).settings}
        out = [str(transport_settings[name]) for name, spec in specs.items()
               if spec.secret and isinstance(transport_settings.get(name), str) and transport_settings[name]]
        return [*out, TEST_SECRET_KEY]

    def _read_new(self, otp: OtpPro, provider: Any, before: int) -> tuple[Received, str]:
        """The newest message received after ``before`` messages, and the secret in it."""
        got = self.received(provider)[before:]
        assert got, f"nothing reached the provider through {self.transport}"
        last = got[-1]
        assert last.recipient == self.recipient, f"sent to {last.recipient!r}, expected {self.recipient!r}"
        return last, self.extract_secret(last.text, otp)

    def enrol(self, otp: OtpPro, provider: Any) -> None:
        """Set up the contract's channel for ``recipient_member`` with the secret the provider received."""
        member = self.recipient_member
        before = len(self.received(provider))
        otp.begin_setup(member, self.channel)
        _, secret = self._read_new(otp, provider, before)
        assert self.redeem(otp, member, secret, setup=True), "the setup secret that was delivered was refused"
        assert otp.status(member).channel == self.channel

    def send_and_redeem(self, otp: OtpPro, provider: Any) -> str:
        """Send a challenge to the enrolled ``recipient_member``, redeem what arrived; returns that secret."""
        member = self.recipient_member
        before = len(self.received(provider))
        challenge = otp.send_challenge(member)
        assert challenge.channel == self.channel
        _, secret = self._read_new(otp, provider, before)
        assert self.redeem(otp, member, secret, setup=False), "the delivered secret was refused"
        return secret

    def _failed_send(self, otp: OtpPro, provider: Any, outcome: str) -> DeliveryError:
        expected: type[DeliveryError] = PermanentDeliveryError if outcome == PERMANENT else TransientDeliveryError
        before = len(self.received(provider))
        self.arrange(provider, outcome)
        with pytest.raises(expected) as info:
            otp.send_challenge(self.recipient_member)
        error = info.value
        assert error.permanent is (outcome == PERMANENT)
        assert error.transport == self.transport, f"the error names transport {error.transport!r}"
        event = otp.events(self.recipient_member, kinds=["delivery_failed"], limit=1)[0]
        assert event.outcome == "failed" and event.channel == self.channel
        assert event.details["transport"] == self.transport
        assert event.details["error"] == expected.__name__
        assert event.details["permanent"] is (outcome == PERMANENT)
        # Whatever the provider saw of the failed send, its secret must not sign anybody in.
        for message in self.received(provider)[before:]:
            try:
                secret = self.extract_secret(message.text, otp)
            except AssertionError:
                continue  # nothing usable reached the provider
            assert not self.redeem(otp, self.recipient_member, secret, setup=False), (
                "a secret from a failed send was accepted")
        self.arrange(provider, SUCCESS)
        return error

    def _assert_no_leak(self, secrets_: Sequence[str], texts: Mapping[str, str]) -> None:
        for secret in {s for s in secrets_ if s}:
            pattern = rf"(?<!\d){re.escape(secret)}(?!\d)" if secret.isdigit() else re.escape(secret)
            for where, text in texts.items():
                assert not re.search(pattern, text), f"a secret ({len(secret)} characters) appears in {where}"

    def _log_text(self, caplog: pytest.LogCaptureFixture) -> str:
        records = [*caplog.get_records("setup"), *caplog.get_records("call")]
        kept = [r for r in records
                if not any(r.name == n or r.name.startswith(n + ".") for n in self.ignored_loggers)]
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        return "\n".join(formatter.format(r) for r in kept)

    # ------------------------------------------------------------------ the checks

    def test_registered_and_discovered(self, otp: OtpPro, otp_settings: dict[str, Any], clock: Clock) -> None:
        transport = self._transport(otp)
        assert isinstance(transport, Transport) and type(transport).name == self.transport
        assert transport.label, "a transport needs a label to show members and administrators"
        assert transport.message_format in ("email", "text")
        assert self.channel in otp.channels
        owners = [p for p in otp.plugins() if self.transport in p.transports]
        assert len(owners) == 1, f"expected one plugin registering {self.transport!r}, found {owners}"
        plugin = owners[0]
        assert plugin.distribution == self.distribution and plugin.error is None and plugin.enabled
        if not plugin.builtin:
            eps = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == plugin.name]
            assert len(eps) == 1 and eps[0].dist is not None and eps[0].dist.name == self.distribution
        # Switched off, the transport and its channels are gone.
        settings = {k: v for k, v in otp_settings.items() if k not in ("channels", "default_channel")}
        settings["providers"] = {k: v for k, v in otp_settings["providers"].items() if k != self.transport}
        settings.update(default_channel="totp", disable_plugins=[plugin.name])
        with OtpPro(settings, clock=clock) as off:
            assert self.transport not in off.transports
            assert not any(name.startswith(f"{self.transport}:") for name in off.channels)

    def test_declared_settings_and_secrets_redacted(
        self, otp: OtpPro, otp_settings: dict[str, Any], transport_settings: dict[str, Any],
        tmp_path: Path, capsys: pytest.CaptureFixture[str], clock: Clock,
    ) -> None:
        transport = self._transport(otp)
        specs = {s.name: s for s in type(transport).settings}
        for spec in specs.values():
            assert spec.help, f"setting {spec.name!r} needs a help text"
        unknown = set(transport_settings) - set(specs)
        assert not unknown, f"transport_settings uses undeclared settings {unknown}"
        for name in self.secret_settings:
            assert name in specs and specs[name].secret, f"setting {name!r} must be declared secret=True"
            assert transport_settings.get(name), f"transport_settings must give {name!r} a value to check redaction"
        redacted = otp.redacted_settings()
        for name in self.secret_settings:
            assert redacted["providers"][self.transport][name] == REDACTED
        from . import cli

        path = tmp_path / "contract-settings.toml"
        path.write_text(settings_toml(otp_settings), encoding="utf-8")
        capsys.readouterr()
        cli.main(["--config", str(path), "config", "show"])
        shown = capsys.readouterr().out
        assert json.loads(shown)["providers"][self.transport].keys() == specs.keys()
        self._assert_no_leak(self._setting_secrets(otp, transport_settings), {
            "redacted_settings()": json.dumps(redacted, default=str),
            "`otp-pro config show`": shown,
            "repr(otp)": repr(otp),
            "repr(transport)": repr(transport),
            "repr(transport.config)": repr(transport.config),
        })
        # Settings are declared, so a typo is refused at start-up, by name.
        bad = {**otp_settings, "providers": {**otp_settings["providers"],
                                             self.transport: {**transport_settings, "contract_no_such_key": 1}}}
        with pytest.raises(ConfigurationError) as info:
            OtpPro(bad, clock=clock)
        assert f"providers.{self.transport}.contract_no_such_key" in str(info.value)

    def test_recipient_resolution_and_normalisation(self, otp: OtpPro) -> None:
        transport = self._transport(otp)
        assert transport.recipient(self.recipient_member) == self.recipient
        assert transport.normalize_recipient(self.recipient) == self.recipient
        for typed, normalised in self.recipient_inputs:
            assert transport.normalize_recipient(typed) == normalised
        for bad in self.invalid_recipients:
            with pytest.raises(RecipientUnavailable) as info:
                transport.normalize_recipient(bad)
            assert info.value.reason
        with pytest.raises(RecipientUnavailable) as missing:
            transport.recipient(self.unreachable_member)
        assert missing.value.reason

    def test_availability(self, otp: OtpPro, provider: Any) -> None:
        before = len(self.received(provider))
        channels = {c.name: c for c in otp.available_channels(self.recipient_member)}
        assert channels[self.channel].available, channels[self.channel].reason
        unreachable = {c.name: c for c in otp.available_channels(self.unreachable_member)}[self.channel]
        assert not unreachable.available and unreachable.reason
        status = otp.status(self.unreachable_member)
        assert self.channel not in status.channels and status.unavailable[self.channel] == unreachable.reason
        with pytest.raises(ChannelUnavailable):
            otp.begin_setup(self.unreachable_member, self.channel)
        assert len(self.received(provider)) == before, "something was sent to a member who cannot be reached"

    def test_successful_send_delivers_the_secret(self, otp: OtpPro, provider: Any) -> None:
        self.arrange(provider, SUCCESS)
        self.enrol(otp, provider)
        self.send_and_redeem(otp, provider)
        sent = otp.events(self.recipient_member, kinds=["challenge_sent"], limit=1)[0]
        assert sent.outcome == "ok" and sent.channel == self.channel
        assert sent.details["transport"] == self.transport and sent.details["purpose"] == "verify"

    def test_permanent_failure(self, otp: OtpPro, provider: Any) -> None:
        self.enrol(otp, provider)
        self._failed_send(otp, provider, PERMANENT)
        self.send_and_redeem(otp, provider)  # and the transport recovers

    def test_transient_failure(self, otp: OtpPro, provider: Any) -> None:
        self.enrol(otp, provider)
        self._failed_send(otp, provider, TRANSIENT)
        self.send_and_redeem(otp, provider)

    def test_provider_test_dry_run_sends_nothing(
        self, otp: OtpPro, provider: Any, transport_settings: dict[str, Any]
    ) -> None:
        to = self.provider_test_recipient or self.recipient
        before = len(self.received(provider))
        result = otp.provider_test(self.transport, to, dry_run=True, actor="contract")
        assert result.dry_run and result.ok and result.error is None
        assert result.recipient == self._transport(otp).normalize_recipient(to)
        assert result.text
        assert len(self.received(provider)) == before, "a dry run reached the provider"
        shown = json.dumps(dict(result.parameters), default=str)
        self._assert_no_leak(self._setting_secrets(otp, transport_settings), {"dry_run_parameters": shown})
        event = otp.events(kinds=["provider_test"], limit=1)[0]
        assert event.details["dry_run"] is True and event.details["transport"] == self.transport
        sent = otp.provider_test(self.transport, to, dry_run=False, actor="contract")
        assert sent.ok and not sent.dry_run, sent.error
        assert len(self.received(provider)) > before, "a provider test with dry_run=False sent nothing"
        assert self.received(provider)[-1].recipient == result.recipient

    def test_no_secret_in_audit_or_logs(
        self, otp: OtpPro, provider: Any, transport_settings: dict[str, Any], payload_spy: _PayloadSpy,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        errors = []
        self.enrol(otp, provider)
        self.send_and_redeem(otp, provider)
        errors.append(self._failed_send(otp, provider, PERMANENT))
        errors.append(self._failed_send(otp, provider, TRANSIENT))
        self.send_and_redeem(otp, provider)
        to = self.provider_test_recipient or self.recipient
        results = [otp.provider_test(self.transport, to, dry_run=dry) for dry in (True, False)]
        secrets_ = [*self._setting_secrets(otp, transport_settings), *payload_spy.payloads]
        for shown in payload_spy.payloads:
            try:
                secrets_.append(self.extract_secret(shown, otp))
            except AssertionError:
                pass  # a provider test's code is not a payload the subclass extracts
        assert len(payload_spy.payloads) >= 6, "the contract expected a payload in every message"
        events = otp.events(limit=10_000)
        assert {"challenge_sent", "delivery_failed", "provider_test"} <= {e.kind for e in events}
        self._assert_no_leak(secrets_, {
            "the audit records": "\n".join(json.dumps(dataclasses.asdict(e), default=str) for e in events),
            "the log": self._log_text(caplog),
            "the delivery errors": "\n".join(f"{e!r} {e} {e.provider_code}" for e in errors),
            "provider test parameters": json.dumps([dict(r.parameters) for r in results], default=str),
            "repr(transport)": repr(self._transport(otp)),
        })


# ------------------------------------------------------------------ the email transport's contract

#: Login the ``smtp_login_server`` fixture accepts (the password is distinctive so a leak is found).
SMTP_USERNAME = "otp-sender"
SMTP_PASSWORD = "smtp-pa55-" + "w0rd" * 4 + "-never-logged"


@pytest.fixture(scope="session")
def smtp_login_server() -> Iterator[tuple[str, int, Mailbox]]:
    """A real SMTP server on 127.0.0.1 that requires AUTH (PLAIN/LOGIN without TLS, loopback only)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == SMTP_USERNAME.encode()
              and auth_data.password == SMTP_PASSWORD.encode())
        return AuthResult(success=ok, handled=False)

    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), authenticator=authenticator,
                            auth_required=True, auth_require_tls=False)
    controller.start()
    try:
        yield controller.hostname, controller.port, mailbox
    finally:
        controller.stop()


class EmailTransportContract(TransportContract):
    """:class:`TransportContract` for the core's ``email`` transport, ready to subclass.

    The provider is a real SMTP server on loopback that checks the login
    (``smtp_password`` is the secret the contract looks for). Permanent and
    transient failures are the server's ``550`` and ``451`` answers to the message.
    A templating or payload plugin subclasses it in its own tests to show the
    ``email`` transport still keeps the contract with the plugin installed.
    """

    transport = "email"
    distribution = "otp-pro-core"
    secret_settings = ("smtp_password",)
    recipient_member = Member("contract-ann", email="ann@example.com", name="Ann Example")
    recipient = "ann@example.com"
    invalid_recipients = ("not-an-address", "ann@@example.com", "ann@example.com, bob@example.com", "")
    ignored_loggers = ("mail.log",)  # aiosmtpd logs what it receives, at DEBUG

    @pytest.fixture
    def provider(self, smtp_login_server: tuple[str, int, Mailbox]) -> tuple[str, int, Mailbox]:
        smtp_login_server[2].clear()
        return smtp_login_server

    @pytest.fixture
    def transport_settings(self, provider: tuple[str, int, Mailbox]) -> dict[str, Any]:
        host, port, _ = provider
        return {"smtp_host": host, "smtp_port": port, "smtp_username": SMTP_USERNAME, "smtp_password": SMTP_PASSWORD,
                "from_address": "otp@example.com", "smtp_timeout_seconds": 5.0}

    def arrange(self, provider: tuple[str, int, Mailbox], outcome: str) -> None:
        provider[2].reply = {
            SUCCESS: None, PERMANENT: "550 5.1.1 mailbox unavailable", TRANSIENT: "451 4.3.0 try again later",
        }[outcome]

    def received(self, provider: tuple[str, int, Mailbox]) -> list[Received]:
        mailbox = provider[2]
        out = []
        for message in list(mailbox.messages):
            body = message.get_body(("plain",))
            out.append(Received(str(message["To"]), str(body.get_content()) if body is not None else ""))
        return out
