"""No secret in a log line, an audit record, a stored row, an exception or a ``repr``.

Every flow runs with every logger at DEBUG (SQLAlchemy's statement and parameter
logging included) against a real SMTP server that asks for a login, and the test
then scans, for every secret it used (one-time codes, backup codes, device tokens,
the TOTP seed in its base32 and raw forms, ``secret_key`` old and new, the SMTP
password, the demo's Twilio auth token):

* every log record, formatted with its traceback;
* every row of every otp-pro table, read raw (the audit log included);
* the text, ``repr`` and attributes of every refusal raised;
* the ``repr`` of every object returned.

What a flow hands to the member on purpose (the list of backup codes, the device
token, the setup's provisioning data, the message in the mailbox) is not scanned;
everything around it is. The fake SMTP server's own logger (``mail.log``, the
receiving side of the test) is left out: it sees the message because it *is* the
member's mailbox.
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pyotp
import pytest
from core_support import SECRET_KEY, base_settings
from flow_client import flow_client
from sqlalchemy import Engine, select

from otp_pro import Member, OtpPro
from otp_pro.core import normalize_code
from otp_pro.crypto import BACKUP_ALPHABET
from otp_pro.errors import (
    ConfigurationError,
    DeliveryError,
    InvalidCode,
    LockedOut,
    NotEnrolled,
    NotFound,
    OtpProError,
    PolicyError,
    SetupError,
    ThrottledError,
)
from otp_pro.settings import Settings
from otp_pro.storage.schema import metadata
from otp_pro.testing import Clock, Mailbox, free_port, mailed_code, outbox_code, page_csrf

SMTP_USER = "otp-mailer"
SMTP_PASSWORD = "smtp-pa55word-" + secrets.token_hex(8)
NEW_KEY = "rotated-secret-key-" + secrets.token_hex(16)
#: Loggers of the test's own fakes, not of the code under test (see the module docstring).
IGNORED_LOGGERS = ("mail.log",)
# SQLAlchemy's timing notes ("[generated in 0.000123s]") are noise numbers that could look like a code.
_TIMINGS = re.compile(r"\[(?:generated|cached since|raw sql|insertmanyvalues)[^\]]*\]")


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def auth_smtp() -> Iterator[tuple[str, int, Mailbox]]:
    """A real SMTP server on loopback that requires a login with ``SMTP_USER`` / ``SMTP_PASSWORD``."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    mailbox = Mailbox()

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == SMTP_USER.encode()
              and auth_data.password == SMTP_PASSWORD.encode())
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    with warnings.catch_warnings():  # "AUTH without TLS": on loopback, on purpose
        warnings.simplefilter("ignore", UserWarning)
        controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), authenticator=authenticator,
                                auth_required=True, auth_require_tls=False)
        controller.start()
    try:
        yield "127.0.0.1", controller.port, mailbox
    finally:
        controller.stop()


@pytest.fixture
def all_logs() -> Iterator[list[logging.LogRecord]]:
    """Every record of every logger at DEBUG for this test (levels and handlers restored afterwards)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.DEBUG)
    loggers = [logging.getLogger(), *(lg for lg in logging.root.manager.loggerDict.values()
                                      if isinstance(lg, logging.Logger))]
    saved = [(lg, lg.level, lg.disabled) for lg in loggers]
    root = logging.getLogger()
    root.addHandler(handler)
    detached = [lg for lg in loggers if not lg.propagate]
    for lg in detached:
        lg.addHandler(handler)
    for lg in loggers:
        lg.disabled = False
        if lg is root or lg.level != logging.NOTSET:
            lg.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        for lg in detached:
            lg.removeHandler(handler)
        for lg, level, disabled in saved:
            lg.setLevel(level)
            lg.disabled = disabled


# ------------------------------------------------------------------ the scanner


_TIMES = re.compile(r"datetime\.datetime\([^)]*\)|\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d\.\d+")


class LeakScan:
    """Secrets used by a test, and everything that must not show them."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.texts: list[tuple[str, str]] = []

    def secret(self, label: str, *values: str) -> None:
        for value in values:
            if value:
                self.secrets.setdefault(value, label)
                normalized = normalize_code(value)
                if normalized and normalized != value:  # the form a member's typing is checked in
                    self.secrets.setdefault(normalized, label)

    def totp_seed(self, seed: str) -> None:
        raw = base64.b32decode(seed + "=" * (-len(seed) % 8))
        self.secret("TOTP seed (base32)", seed, seed.lower())
        self.secret("TOTP seed (raw)", raw.hex(), raw.hex().upper(), base64.b64encode(raw).decode(),
                    base64.urlsafe_b64encode(raw).decode().rstrip("="), repr(raw)[2:-1])

    def returned(self, where: str, value: Any) -> Any:
        self.texts.append((f"repr of {where}", repr(value)))
        self.texts.append((f"str of {where}", str(value)))
        return value

    def refusal(self, where: str, exc: BaseException) -> None:
        attributes = {k: v for k, v in vars(exc).items() if not k.startswith("__")}
        self.texts.append((f"refusal {where}", f"{type(exc).__name__}: {exc} | {exc!r} | {exc.args!r} | "
                                               f"{attributes!r}"))

    def logs(self, records: list[logging.LogRecord]) -> None:
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        kept = [r for r in records if not any(r.name == n or r.name.startswith(n + ".") for n in IGNORED_LOGGERS)]
        assert kept, "no log record was captured: the capture itself is broken"
        self.texts.append(("the logs", _TIMINGS.sub("", "\n".join(formatter.format(r) for r in kept))))

    def database(self, engine: Engine) -> None:
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                rows = conn.execute(select(table)).all()
                self.texts.append((f"table {table.name}", "\n".join(repr(tuple(r)) for r in rows)))

    def check(self) -> None:
        assert self.secrets and self.texts
        found = []
        # A time's microseconds (stored, logged or in a row's repr) are six digits that match a
        # 6-digit code once in a million: times are blanked before digits-only secrets are looked for.
        timeless = [(where, _TIMES.sub("<time>", text)) for where, text in self.texts]
        for value, label in self.secrets.items():
            # A number of digits is not matched inside a longer number.
            pattern = re.compile(rf"(?<!\d){re.escape(value)}(?!\d)" if value.isdigit() else re.escape(value))
            for where, text in timeless if value.isdigit() else self.texts:
                if pattern.search(text):
                    found.append(f"{label} ({len(value)} characters) appears in {where}")
        assert not found, "secrets leaked:\n" + "\n".join(sorted(set(found)))


def _other(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def _raises(scan: LeakScan, where: str, kind: type[BaseException], call: Callable[[], Any]) -> BaseException:
    with pytest.raises(kind) as caught:
        call()
    scan.refusal(where, caught.value)
    return caught.value


# ------------------------------------------------------------------ the core's flows


def test_no_secret_leaks_from_the_core_flows(
    backend: str, clock: Clock, auth_smtp: tuple[str, int, Mailbox], all_logs: list[logging.LogRecord]
) -> None:
    host, port, mailbox = auth_smtp
    mailbox.clear()
    email = {"smtp_host": host, "smtp_port": port, "from_address": "otp@example.com",
             "smtp_username": SMTP_USER, "smtp_password": SMTP_PASSWORD}
    settings = base_settings(backend, providers={"email": email}, channels=["email:code", "totp", "outbox:code"],
                             default_channel="email:code", max_attempts=3)
    scan = LeakScan()
    scan.secret("secret_key", SECRET_KEY)
    scan.secret("SMTP password", SMTP_PASSWORD)
    made: list[OtpPro] = []

    def build(**overrides: Any) -> OtpPro:
        otp = OtpPro({**settings, **overrides}, clock=clock)
        made.append(otp)
        return otp

    otp = build()
    try:
        for where, value in (("OtpPro", otp), ("settings", otp.settings), ("key ring", otp.keys),
                             ("transports", otp.transports), ("provider settings", otp.plugin_settings),
                             ("redacted settings", otp.redacted_settings()), ("plugins", otp.plugins)):
            scan.returned(where, value)

        # Email code: setup (a wrong code first), sign-in, replay, wrong code.
        ann = Member("ann", email="ann@example.com", name="Ann")
        scan.returned("begin_setup(email)", otp.begin_setup(ann, "email:code"))
        setup_code = mailed_code(mailbox, "ann@example.com")
        scan.secret("email setup code", setup_code)
        _raises(scan, "complete_setup(wrong)", InvalidCode, lambda: otp.complete_setup(ann, _other(setup_code)))
        backup = otp.complete_setup(ann, setup_code)
        scan.secret("backup code", *backup)
        scan.returned("send_challenge", otp.send_challenge(ann, ip="203.0.113.9", user_agent="Browser/1"))
        code = mailed_code(mailbox, "ann@example.com")
        scan.secret("email sign-in code", code)
        scan.returned("verify(wrong)", otp.verify(ann, _other(code)))
        assert scan.returned("verify(email)", otp.verify(ann, code)).ok
        assert not scan.returned("verify(replay)", otp.verify(ann, code)).ok

        # Backup codes: use one, replay it, regenerate.
        assert scan.returned("verify(backup)", otp.verify(ann, backup[0].upper())).ok
        assert not scan.returned("verify(backup replay)", otp.verify(ann, backup[0])).ok
        fresh = otp.regenerate_backup_codes(ann, actor="support")
        scan.secret("regenerated backup code", *fresh)
        assert not scan.returned("verify(old backup)", otp.verify(ann, backup[1])).ok

        # Trusted device: trust, check, list, revoke.
        token = otp.trust_device(ann, label="Laptop", ip="203.0.113.9")
        scan.secret("device token", token)
        assert scan.returned("is_trusted", otp.is_trusted(ann, token))
        devices = scan.returned("trusted_devices", otp.trusted_devices(ann))
        otp.revoke_device(ann, devices[0].id, actor="ann")
        assert not otp.is_trusted(ann, token)
        _raises(scan, "revoke_device(unknown)", NotFound, lambda: otp.revoke_device(ann, 999_999))
        scan.returned("status", otp.status(ann))
        scan.returned("available_channels", otp.available_channels(ann))

        # TOTP: setup, verify, replay, then lockout by wrong codes.
        bob = Member("bob", email="bob@example.com")
        info = otp.begin_setup(bob, "totp")
        assert info.secret is not None
        scan.totp_seed(info.secret)
        scan.returned("begin_setup(totp)", info)
        app = pyotp.TOTP(info.secret)
        first = app.at(clock())
        scan.secret("TOTP code", first)
        scan.secret("backup code", *otp.complete_setup(bob, first))
        clock.advance(30)
        now_code = app.at(clock())
        scan.secret("TOTP code", now_code)
        assert scan.returned("verify(totp)", otp.verify(bob, now_code)).ok
        assert not scan.returned("verify(totp replay)", otp.verify(bob, now_code)).ok
        for _ in range(3):
            scan.returned("verify(totp wrong)", otp.verify(bob, _other(app.at(clock()))))
        scan.returned("status(locked)", otp.status(bob))
        _raises(scan, "begin_setup(locked)", LockedOut, lambda: otp.begin_setup(bob, "totp"))
        otp.unlock(bob, actor="support")

        # Key rotation: the old key moves to previous_secret_keys; seeds are re-encrypted.
        rotated = build(secret_key=NEW_KEY, previous_secret_keys=[SECRET_KEY])
        scan.secret("new secret_key", NEW_KEY)
        scan.returned("rotated OtpPro", rotated)
        scan.returned("rotated key ring", rotated.keys)
        assert scan.returned("rotate_keys", rotated.rotate_keys(actor="ops")) >= 1
        clock.advance(30)
        after = app.at(clock())
        scan.secret("TOTP code", after)
        assert scan.returned("verify(totp after rotation)", rotated.verify(bob, after)).ok
        # From here on the site runs with the rotated keys, as it would: rotate_keys made the confirmed
        # addresses' keyed hashes again with the new key, which the old key alone no longer matches.
        settings.update(secret_key=NEW_KEY, previous_secret_keys=[SECRET_KEY])

        # Refusals with their own texts.
        throttled = build(resend_cooldown_seconds=60)
        throttled.send_challenge(ann)
        scan.secret("email sign-in code", mailed_code(mailbox, "ann@example.com"))
        _raises(scan, "send_challenge(cooldown)", ThrottledError, lambda: throttled.send_challenge(ann))
        wrong_password = "wrong-" + SMTP_PASSWORD
        scan.secret("wrong SMTP password", wrong_password)
        refused = build(providers={"email": {**email, "smtp_password": wrong_password}})
        login = _raises(scan, "send_challenge(SMTP login refused)", DeliveryError, lambda: refused.send_challenge(ann))
        assert "login" in str(login) and "refused" in str(login), str(login)
        nobody = Member("nobody", email="nobody@example.com")
        _raises(scan, "send_challenge(not enrolled)", NotEnrolled, lambda: otp.send_challenge(nobody))
        _raises(scan, "complete_setup(no setup)", SetupError, lambda: otp.complete_setup(nobody, "123456"))
        _raises(scan, "regenerate(not enrolled)", NotEnrolled, lambda: otp.regenerate_backup_codes(nobody))
        required = build(mode="required")
        _raises(scan, "disable(required)", PolicyError, lambda: required.disable(ann))
        short_key = "short-" + secrets.token_hex(4)
        scan.secret("rejected secret_key", short_key)
        _raises(scan, "settings(short secret_key)", ConfigurationError, lambda: build(secret_key=short_key))
        _raises(scan, "settings(short previous key)", ConfigurationError,
                lambda: Settings.from_mapping({**settings, "previous_secret_keys": [short_key]}))
        _raises(scan, "settings(password of the wrong type)", ConfigurationError, lambda: build(
            providers={"email": {**email, "smtp_password": [SMTP_PASSWORD]}}))
        _raises(scan, "settings(password without user)", ConfigurationError, lambda: build(
            providers={"email": {k: v for k, v in email.items() if k != "smtp_username"}}))

        # Provider test, dry run and sent (its random code is not a secret: it is stored nowhere).
        scan.returned("provider_test(dry run)", otp.provider_test("email", "ops@example.com", actor="ops"))
        scan.returned("provider_test(send)", otp.provider_test("email", "ops@example.com", dry_run=False, actor="ops"))
        scan.returned("provider_test(refused)", refused.provider_test("email", "ops@example.com", dry_run=False))

        # Reset and disable clear everything; the audit trail is read back.
        otp.reset(bob, actor="support")
        otp.disable(ann, actor="ann")
        scan.returned("events", otp.events(limit=10_000))
        scan.database(otp.db.engine)
    finally:
        for instance in made:
            instance.close()
    scan.logs(all_logs)
    assert any(r.name.startswith("sqlalchemy.engine") for r in all_logs), "SQL was not logged at DEBUG"
    scan.check()


# ------------------------------------------------------------------ the web pages (flow layer)


def test_no_secret_leaks_from_the_web_pages(tmp_path: Any, clock: Clock, all_logs: list[logging.LogRecord]) -> None:
    """The flow layer's pages and JSON endpoints, driven without a framework (tests/flow_client.py): the verify
    page (a wrong code, the right one with "trust this device"), the JSON API, a forced authenticator-app setup."""
    from otp_pro.web.flow import DEVICE_COOKIE

    settings = base_settings(f"sqlite:///{tmp_path}/web.sqlite3", channels=["outbox:code", "totp"],
                             roles={"admin": {"requirement": "required", "channels": ["totp"], "grace_days": 0}})
    otp = OtpPro(settings, clock=clock)
    scan = LeakScan()
    scan.secret("secret_key", SECRET_KEY)
    try:
        editor = Member("ed", roles=["editor"], email="ed@example.com", name="Ed")
        otp.begin_setup(editor, "outbox:code")
        setup_code = outbox_code(otp)
        scan.secret("setup code", setup_code)
        scan.secret("backup code", *otp.complete_setup(editor, setup_code))
        clock.advance(60)

        def last_code() -> str:
            code = outbox_code(otp)
            scan.secret("outbox code", code)
            return code

        # Editor: the verify page, a wrong code, the right one with "trust this device".
        client = flow_client(otp, editor)
        assert client.get("/login").status_code == 303
        code = last_code()
        token = page_csrf(client.get("/otp/verify").text)
        assert client.post("/otp/verify", data={"code": _other(code), "csrf_token": token}).status_code == 200
        done = client.post("/otp/verify", data={"code": code, "csrf_token": token, "trust": "1"})
        assert done.status_code == 303
        device = client.cookies.get(DEVICE_COOKIE, "")
        assert len(device) >= 32, "no trusted-device cookie was set"
        scan.secret("device token", device)

        # The JSON endpoints: send, a wrong code, the right code.
        api = flow_client(otp, editor)
        api.get("/login")
        csrf = api.get("/otp/api/status").get_json()["csrf_token"]
        headers = {"X-CSRF-Token": csrf}
        clock.advance(60)
        assert api.post("/otp/api/send", json={}, headers=headers).status_code == 200
        code = last_code()
        assert not api.post("/otp/api/verify", json={"code": _other(code)}, headers=headers).get_json()["ok"]
        assert api.post("/otp/api/verify", json={"code": code}, headers=headers).get_json()["ok"]

        # Admin: forced authenticator-app setup, confirmed with a TOTP code; backup codes shown once.
        admin = flow_client(otp, Member("root", roles=["admin"], email="root@example.com", name="Rob"))
        assert admin.get("/login").headers["Location"] == "/otp/setup"
        page = admin.post("/otp/setup", data={"channel": "totp", "csrf_token": page_csrf(admin.get("/otp/setup").text)})
        assert page.status_code == 200, page.text
        seed = re.search(r'id="totp-secret"[^>]*>([A-Z2-7]+)<', page.text)
        assert seed, "no TOTP seed on the setup page"
        scan.totp_seed(seed.group(1))
        totp_code = pyotp.TOTP(seed.group(1)).at(otp.clock())
        scan.secret("TOTP code", totp_code)
        shown = admin.post("/otp/setup/confirm", data={"code": totp_code, "csrf_token": page_csrf(page.text)})
        assert shown.status_code == 200, shown.text
        codes = sorted(set(re.findall(rf"\b[{BACKUP_ALPHABET}]{{5}}-[{BACKUP_ALPHABET}]{{5}}\b", shown.text)))
        assert len(codes) == otp.settings.backup_code_count
        scan.secret("backup code", *codes)
        scan.database(otp.db.engine)
    finally:
        otp.close()
    scan.logs(all_logs)
    scan.check()


# ------------------------------------------------------------------ the scanner itself


def test_the_scan_fails_when_a_secret_is_logged(all_logs: list[logging.LogRecord]) -> None:
    """A planted leak is caught: in a log line, an exception and a repr, in any of a secret's forms."""
    seed = pyotp.random_base32()
    for leak in ("code 482913 sent", f"seed {seed}", f"raw {base64.b32decode(seed).hex()}",
                 f"backup {normalize_code('abcde-fghjk')}", f"password {SMTP_PASSWORD}"):
        scan = LeakScan()
        scan.secret("code", "482913")
        scan.secret("backup code", "abcde-fghjk")
        scan.secret("SMTP password", SMTP_PASSWORD)
        scan.totp_seed(seed)
        logging.getLogger("otp_pro").debug("otp-pro: %s", leak)
        scan.logs(all_logs)
        with pytest.raises(AssertionError, match="appears in the logs"):
            scan.check()
        all_logs.clear()
    scan = LeakScan()
    scan.secret("code", "482913")
    scan.refusal("planted", OtpProError("the code 482913 is wrong"))
    with pytest.raises(AssertionError, match="refusal planted"):
        scan.check()
    # A code inside a longer number (a timestamp's microseconds, a row id) is not a leak.
    scan = LeakScan()
    scan.secret("code", "482913")
    scan.returned("clean", "id 14829130 at 0.4829131")
    scan.check()
    # Nor is a time's fraction of a second, stored or in a repr; the code beside it still is.
    times = "2026-11-24 04:30:15.482913 datetime.datetime(2026, 11, 24, 4, 30, 15, 482913, tzinfo=utc)"
    scan.returned("times", times)
    scan.check()
    scan.returned("leak", f"{times} code 482913")
    with pytest.raises(AssertionError, match="of leak"):
        scan.check()


def test_member_and_payload_context_reprs_leave_out_field_values_and_the_binding() -> None:
    from datetime import datetime, timezone

    from otp_pro import Member, PayloadContext

    member = Member(id="42", roles=["editor"], email="ann@example.com", name="Ann",
                    fields={"phone": "+447911123456", "fax": "+441632960000"})
    shown = repr(member)
    assert "+447911123456" not in shown and "+441632960000" not in shown
    assert shown == ("Member(id='42', roles=('editor',), email='ann@example.com', name='Ann', "
                     "fields=['fax', 'phone'], locale=None)")
    now = datetime(2026, 12, 7, tzinfo=timezone.utc)
    context = PayloadContext(member, "email:magic_link", "email", "verify", now, now,
                             binding="browser-cookie-value-" + "b" * 32)
    assert "browser-cookie-value" not in repr(context) and "+447911123456" not in repr(context)
    assert context.binding is not None  # still there for the payload to use
