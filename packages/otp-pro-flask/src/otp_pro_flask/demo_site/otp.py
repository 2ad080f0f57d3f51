"""The demo's :class:`~otp_pro.OtpPro`: every installed channel on, every delivery routed to the outbox.

Whatever a transport would send (email, SMS through ``sms_twilio``, magic
links) goes to the ``outbox`` transport instead, which keeps it for the dev
mailbox page and writes it as an ``.eml`` file: nothing leaves the machine.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

from otp_pro.core import OtpPro
from otp_pro.hookspecs import hookimpl
from otp_pro.member import Member
from otp_pro.settings import is_loopback_host
from otp_pro.transports import Message, Receipt

from .store import DemoStore


def installed_plugins() -> set[str]:
    """Names of the ``otp_pro`` entry points installed (the companions)."""
    return {ep.name for ep in metadata.entry_points(group="otp_pro")}


class DemoClock:
    """Real time, set back by ``offset`` while demo members are enrolled so their setup codes start no cooldown."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) - self.offset


class _DemoPlugin:
    """Member lookup for the CLI and other tools, from the demo's member table."""

    def __init__(self, store: DemoStore) -> None:
        self.store = store

    @hookimpl
    def otp_pro_member_lookup(self, otp: OtpPro, member_id: str) -> Member | None:
        return self.store.member(member_id)


def _to_outbox(outbox: Any, transport_name: str) -> Callable[[Message], Receipt]:
    def send(message: Message) -> Receipt:
        message.headers = {**message.headers, "X-Otp-Pro-Demo-Transport": transport_name}
        receipt: Receipt = outbox.send(message)
        return receipt

    return send


def passkey_settings(base_url: str) -> dict[str, Any]:
    """``providers.webauthn`` for the demo at ``base_url``, passwordless sign-in on.

    A relying-party id is a domain, never an IP address, and browsers allow WebAuthn over plain http on
    ``localhost`` only: on this machine the demo's passkeys belong to ``localhost`` (open the demo there).
    """
    parts = urlsplit(base_url)
    host = parts.hostname or "localhost"
    if is_loopback_host(host):
        host = "localhost"
    origin = f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
    return {"rp_id": host, "origins": [origin], "passwordless": True}


def build_otp(store: DemoStore, database: str, *, base_url: str, clock: DemoClock,
              overrides: Mapping[str, Any] | None = None, mail_dir: str | None = None,
              to_outbox: bool = True) -> OtpPro:
    """The demo's OtpPro: every installed channel, every transport's delivery routed to the outbox.

    ``to_outbox=False`` leaves the transports alone, so they deliver for real to
    whatever ``overrides["providers"]`` points them at (the load test's loopback SMTP server).
    """
    plugins = installed_plugins()
    channels = ["email:code", "totp"]
    providers: dict[str, Any] = {"outbox": {"directory": mail_dir} if mail_dir else {}}
    if "otp_pro_sms_twilio" in plugins:
        channels.append("sms_twilio:code")
        # Dummy credentials so the channel is offered; delivery is rerouted below, and the API
        # address is the discard port of this machine, so nothing can reach Twilio even so.
        providers["sms_twilio"] = {"account_sid": "AC" + "0" * 32, "auth_token": "demo-not-a-real-token",
                                   "from_number": "+15005550006", "api_base_url": "http://127.0.0.1:9",
                                   "max_retries": 0, "timeout_seconds": 1.0}
    if "otp_pro_magic_links" in plugins:
        channels.append("email:magic_link")
        providers["magic_links"] = {"base_url": base_url}
    if "otp_pro_webauthn" in plugins:
        channels.append("webauthn")
        providers["webauthn"] = passkey_settings(base_url)
    settings: dict[str, Any] = {
        "secret_key": store.meta("otp_secret_key", lambda: secrets.token_urlsafe(48)),
        "database_url": f"sqlite:///{database}",
        "site_name": "otp-pro demo",
        "support_email": "support@demo.test",
        "mode": "visible",
        "channels": channels,
        "default_channel": "email:code",
        "roles": {
            "admin": {"requirement": "required", "channels": ["totp"], "grace_days": 0},
            "editor": {"requirement": "optional"},
            "member": {"requirement": "required", "grace_days": 14},
            "viewer": {"requirement": "not_required"},
            # Passkeys only (when otp-pro-webauthn is installed): forced setup registers one at first sign-in.
            "passkey": {"requirement": "required", "channels": ["webauthn"] if "webauthn" in channels else ["totp"],
                        "grace_days": 0},
        },
        "providers": providers,
    }
    for key, value in (overrides or {}).items():
        settings[key] = value
    otp = OtpPro(settings, plugins=[_DemoPlugin(store)], clock=clock)
    outbox = otp.transports["outbox"]
    for name, transport in otp.transports.items():
        if to_outbox and name != "outbox":
            # Safe mode: the transport still resolves and checks recipients and renders its own
            # message, but delivery goes to the outbox.
            transport.send = _to_outbox(outbox, name)  # type: ignore[method-assign,assignment]
    return otp
