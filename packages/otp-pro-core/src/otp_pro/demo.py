"""The scripted walk-through behind ``otp-pro demo``: everything runs on one SQLite file, nothing leaves the machine."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pyotp

from .core import OtpPro
from .member import Member


class _DemoClock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


def run_demo(database: str, *, echo: Callable[[str], None] = print) -> OtpPro:
    """Run the walk-through against ``database`` (a SQLite file path) and return the instance."""
    clock = _DemoClock()
    otp = OtpPro(
        {
            "secret_key": secrets.token_urlsafe(48),
            "database_url": f"sqlite:///{database}",
            "site_name": "Demo Site",
            "support_email": "help@demo.invalid",
            "mode": "visible",
            "channels": ["outbox:code", "totp"],
            "default_channel": "outbox:code",
            "roles": {"admin": {"requirement": "required", "channels": ["totp"], "grace_days": 0}},
        },
        clock=clock,
    )
    outbox = otp.transports["outbox"]
    ann = Member(id="ann", roles=["editor"], email="ann@demo.invalid", name="Ann")
    root = Member(id="root", roles=["admin", "editor"], email="root@demo.invalid", name="Rob")

    def step(title: str) -> None:
        echo("")
        echo(f"== {title}")

    def code_in_last_message() -> str:
        message = outbox.last()  # type: ignore[attr-defined]
        found = re.search(r"\b(\d{6})\b", message.text)
        assert found is not None
        return found.group(1)

    step("Policy: Ann is an editor (site mode visible), Rob is an admin (role requires TOTP)")
    for who in (ann, root):
        s = otp.status(who)
        echo(f"{who.name}: requirement={s.requirement} channels={list(s.channels)} must_setup={s.must_setup}")

    step("Ann sets up codes by email (the dev outbox stands in for SMTP)")
    otp.begin_setup(ann, "outbox:code", ip="127.0.0.1", user_agent="demo")
    message = outbox.last()  # type: ignore[attr-defined]
    echo(f"mail to {message.recipient}: {message.subject!r}")
    for line in message.text.strip().splitlines():
        echo(f"  | {line}")
    backup = otp.complete_setup(ann, code_in_last_message())
    echo(f"confirmed; {len(backup)} backup codes shown once: {', '.join(backup[:3])}, ...")

    step("Ann signs in: a code is sent and checked")
    clock.now += timedelta(seconds=31)  # past the resend cooldown
    otp.send_challenge(ann)
    echo(f"wrong code  -> {_short(otp.verify(ann, '000000'))}")
    good = code_in_last_message()
    echo(f"right code  -> {_short(otp.verify(ann, good))}")
    echo(f"same again  -> {_short(otp.verify(ann, good))}  (single use)")
    clock.now += timedelta(seconds=31)
    echo(f"backup code -> {_short(otp.verify(ann, backup[0]))}")

    step("Rob must set up an authenticator app")
    setup = otp.begin_setup(root, "totp")
    echo(f"provisioning URI: {setup.provisioning_uri.split('secret=')[0]}secret=…")  # type: ignore[union-attr]
    app = pyotp.TOTP(setup.secret)  # type: ignore[arg-type]
    otp.complete_setup(root, app.at(clock.now))
    echo("scanned and confirmed with the app's code")
    clock.now += timedelta(seconds=30)
    code = app.at(clock.now)
    echo(f"app code    -> {_short(otp.verify(root, code))}")
    echo(f"replayed    -> {_short(otp.verify(root, code))}  (time step already used)")

    step("Lockout after five failures")
    for _ in range(5):
        result = otp.verify(ann, "123456")
    echo(f"5th failure -> {_short(result)}")
    otp.unlock(ann, actor="demo-admin")
    echo("unlocked by an administrator")

    step("Trusted device")
    token = otp.trust_device(ann, label="Ann's laptop")
    echo(f"trusted: {otp.is_trusted(ann, token)}; devices: {[d.label for d in otp.trusted_devices(ann)]}")

    step("Audit trail for Ann (newest first)")
    for event in otp.events(ann, limit=12):
        echo(f"  {event.at:%H:%M:%S} {event.kind:<22} {event.outcome:<6} {event.channel or ''}")
    echo("")
    echo("Every code, backup code and token above is stored only as a keyed hash; the TOTP seed is encrypted.")
    return otp


def _short(result: object) -> str:
    ok = getattr(result, "ok", False)
    if ok:
        return f"ok via {getattr(result, 'method', '?')}"
    reason = getattr(result, "reason", "?")
    left = getattr(result, "attempts_remaining", None)
    until = getattr(result, "locked_until", None)
    extra = f", locked until {until:%H:%M}" if until else (f", {left} attempts left" if left is not None else "")
    return f"refused ({reason}{extra})"
