"""``DemoSite``: the demo's store, OtpPro, Flask app and extension, on one SQLite file."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from otp_pro.member import Member

from .accounts import ACCOUNTS, DemoAccount, enroll
from .otp import DemoClock, build_otp
from .pages import make_app
from .store import DemoStore

#: The key of the :class:`DemoSite` in its app's ``extensions``.
EXTENSION_KEY = "otp_pro_demo"


class DemoSite:
    """The demo: its store, OtpPro, Flask app and extension. ``add_member`` makes more members (tests).

    ``clock`` is the OtpPro's clock: real time, whose ``offset`` sets it back (the load test
    enrols its members in the past so their setup codes start no resend cooldown).
    """

    def __init__(self, database: str | None = None, *, base_url: str = "http://127.0.0.1:5000",
                 overrides: Mapping[str, Any] | None = None, seed: bool = True, to_outbox: bool = True) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if database is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="otp-pro-demo-")
            database = str(Path(self._tmp.name) / "demo.sqlite3")
        self.database = database
        self.mail_dir = str(Path(database).with_suffix("")) + "-outbox"
        self.store = DemoStore(database)
        self.clock = DemoClock()
        self.otp = build_otp(self.store, database, base_url=base_url, clock=self.clock, overrides=overrides,
                             mail_dir=self.mail_dir, to_outbox=to_outbox)
        self.outbox: Any = self.otp.transports["outbox"]
        self.app, self.ext = make_app(self)
        if seed and not self.store.has_members():
            for account in ACCOUNTS:
                self.add_account(account)

    def close(self) -> None:
        """Close the OtpPro (its database engine) and remove the temporary folder, if the demo made one."""
        self.otp.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def add_account(self, account: DemoAccount) -> Member | None:
        """Add a demo member (enrolled on its channel when that channel is installed); None when skipped."""
        if any(needed and needed not in self.otp.channels for needed in (account.enroll, account.requires)):
            return None
        member = self.store.add_member(account.email, account.password, account.name, account.roles, account.phone)
        if account.enroll:
            enroll(self.otp, self.clock, member, account.enroll)
        return member

    def add_member(self, email: str, password: str, *, roles: tuple[str, ...] = ("editor",),
                   enroll_on: str | None = None, name: str | None = None, phone: str | None = None) -> Member:
        """Add a member with a password (enrolled on ``enroll_on`` when given)."""
        member = self.add_account(DemoAccount(email, password, name or email.split("@")[0].title(), roles, "",
                                              phone=phone, enroll=enroll_on))
        assert member is not None
        return member

    def accounts(self) -> list[DemoAccount]:
        """The demo logins whose channel is installed."""
        return [a for a in ACCOUNTS
                if all(not needed or needed in self.otp.channels for needed in (a.enroll, a.requires))]


def create_app(database: str | None = None, *, base_url: str = "http://127.0.0.1:5000",
               overrides: Mapping[str, Any] | None = None) -> Flask:
    """The demo's Flask app (its :class:`DemoSite` is ``app.extensions["otp_pro_demo"]``)."""
    site = DemoSite(database, base_url=base_url, overrides=overrides)
    site.app.extensions[EXTENSION_KEY] = site
    return site.app
