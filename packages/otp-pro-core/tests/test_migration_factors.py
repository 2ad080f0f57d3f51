"""Migration 0005 (factors) on a database the one-channel code filled: every member signs in as before.

The database is built at revision 0004 by Alembic and filled with the rows the
code before factors wrote (``otp_members.channel``, ``totp_seed`` and
``totp_last_step``; setup and sign-in challenges with their keyed hashes; backup
codes issued by the real backup-code module; trusted devices; audit rows), then
upgraded by ``otp-pro db upgrade``. Each test runs on SQLite and, when
OTP_PRO_TEST_POSTGRES_URL is set, on PostgreSQL.

The trusted devices of migrated members stay trusted: a change of factors revokes
them, and the migration changes none (each member keeps the one factor they had,
moved to ``otp_factors``); an upgrade that signed every member out of their
trusted browsers would punish the site for upgrading.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from alembic import command
from click.testing import CliRunner
from core_support import base_settings
from sqlalchemy import Engine, MetaData, create_engine, func, select

from otp_pro import FactorNeedsReconfirming, Member, OtpPro, audit, totp
from otp_pro._engine import backup_codes
from otp_pro.cli import cli
from otp_pro.crypto import new_token
from otp_pro.results import ChallengeStatus, Purpose
from otp_pro.storage import migrate
from otp_pro.testing import (
    PG_SKIP_REASON,
    Clock,
    Mailbox,
    mailed_code,
    outbox_code,
    settings_toml,
    temporary_pg_database,
)

BEFORE = "0004"
CHANNEL = "email:code"
#: The tables the one-channel code wrote, whose rows the migration must keep.
KEPT_TABLES = ("otp_members", "otp_challenges", "otp_backup_codes", "otp_trusted_devices", "otp_audit_events")


@dataclasses.dataclass
class OldSite:
    """A database at 0004 holding what the one-channel code wrote, and what its members hold."""

    url: str
    engine: Engine
    members: dict[str, Member]
    #: Backup codes shown to each enrolled member at setup.
    backup: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    #: Codes sent before the upgrade and not yet typed, by member.
    pending: dict[str, str] = dataclasses.field(default_factory=dict)
    #: The TOTP members' authenticator apps, and the step each last signed in with.
    apps: dict[str, pyotp.TOTP] = dataclasses.field(default_factory=dict)
    last_steps: dict[str, int] = dataclasses.field(default_factory=dict)
    #: A live trusted-device token and a revoked one.
    device: str = ""
    revoked_device: str = ""
    #: The keyed hash of the address each enrolled member's latest setup confirmed (None: none left).
    confirmed: dict[str, str | None] = dataclasses.field(default_factory=dict)
    #: The otp_members rows as the one-channel code left them, by member.
    old_rows: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


def _naive(moment: datetime) -> datetime:
    """A time as the schema stores it (naive UTC)."""
    return moment.replace(tzinfo=None)


class OldWriter:
    """Writes rows as the one-channel code (the releases before 0005) wrote them, through the reflected 0004 tables."""

    def __init__(self, engine: Engine, keys_otp: OtpPro, now: datetime) -> None:
        self.engine = engine
        self.rt = keys_otp._rt
        self.now = now
        self.tables = MetaData()
        self.tables.reflect(engine)
        assert "channel" in self.tables.tables["otp_members"].c, "the database is not at the one-channel schema"

    def recipient_hash(self, channel: str, member: Member) -> str:
        # messages.outgoing: the transport's recipient, hashed stripped and lower-cased.
        recipient = self.rt.transports[channel.split(":")[0]].recipient(member)
        return self.rt.keys.hash("recipient", recipient.strip().lower())

    def member(self, conn: Any, member_id: str, **values: Any) -> None:
        row = {"member_id": member_id, "failures": 0, "consecutive_failures": 0, "created_at": _naive(self.now),
               "updated_at": _naive(self.now), **values}
        conn.execute(self.tables.tables["otp_members"].insert().values(**row))

    def challenge(self, conn: Any, member: Member, channel: str, purpose: str, code: str, *, at: datetime,
                  consumed: bool, recipient_of: Member | None = None) -> None:
        """A challenge as deliver() recorded it and mark_sent() marked it (and consume() consumed it)."""
        conn.execute(self.tables.tables["otp_challenges"].insert().values(
            member_id=member.id, channel=channel, payload="code", purpose=purpose,
            secret_hash=self.rt.keys.hash("challenge", code),
            recipient_hash=self.recipient_hash(channel, recipient_of or member), binding_hash=None,
            status=ChallengeStatus.SENT, created_at=_naive(at), expires_at=_naive(at + timedelta(minutes=10)),
            sent_at=_naive(at), consumed_at=_naive(at + timedelta(seconds=30)) if consumed else None,
            provider_message_id=None, message=None, attempts=0))

    def audit(self, conn: Any, kind: str, member_id: str, channel: str | None) -> None:
        conn.execute(self.tables.tables["otp_audit_events"].insert().values(
            at=_naive(self.now), kind=kind, member_id=member_id, channel=channel, outcome=audit.OK,
            details=json.dumps({})))

    def enrolled(self, conn: Any, member: Member, channel: str, *, at: datetime, **values: Any) -> list[str]:
        """A member whose setup of ``channel`` completed at ``at``, with the backup codes it issued."""
        self.member(conn, member.id, channel=channel, enrolled_at=_naive(at), updated_at=_naive(at), **values)
        codes = backup_codes.issue(self.rt, conn, member.id, at)  # the real module: same salt, pepper and KDF
        self.audit(conn, audit.SETUP_COMPLETED, member.id, channel)
        return codes


def build_old_site(url: str, keys_otp: OtpPro, now: datetime) -> OldSite:
    """Migrate ``url`` to 0004 and fill it as the one-channel code would have."""
    engine = create_engine(url)
    migrate.upgrade(engine, BEFORE)
    people = {
        # Email: set up a week ago at the address the record shows (mixed case, hashed lower-cased).
        "ann": Member(id="email-ann", roles=["editor"], email="Ann@Example.com", name="Ann"),
        # Email, with a code sent a minute before the upgrade and not yet typed.
        "pia": Member(id="email-pia", roles=["editor"], email="pia@example.com", name="Pia"),
        # The outbox, set up twice: first at an old address, then at the one the record shows.
        "ola": Member(id="outbox-ola", roles=["editor"], email="ola.new@example.com", name="Ola"),
        # An authenticator app.
        "tom": Member(id="totp-tom", roles=["editor"], email="tom@example.com", name="Tom"),
        # An authenticator app, with an emailed fallback code pending (the one-channel code sent one on request).
        "tia": Member(id="totp-tia", roles=["editor"], email="tia@example.com", name="Tia"),
        # Email, whose setup challenge has been pruned: bound at the first send after the upgrade.
        "gus": Member(id="email-gus", roles=["editor"], email="gus@example.com", name="Gus"),
        # Email, confirmed at an address the record no longer shows.
        "mo": Member(id="email-mo", roles=["editor"], email="mo.new@example.com", name="Mo"),
        # Disabled: no factor, no codes, devices revoked.
        "dan": Member(id="disabled-dan", roles=["editor"], email="dan@example.com", name="Dan"),
        # Mid-setup of email: a confirmation code sent, not yet typed.
        "sam": Member(id="setup-sam", roles=["editor"], email="sam@example.com", name="Sam"),
    }
    site = OldSite(url=url, engine=engine, members=people)
    old = OldWriter(engine, keys_otp, now)
    week = now - timedelta(days=7)
    with engine.begin() as conn:
        for key in ("ann", "pia", "mo"):
            site.backup[key] = old.enrolled(conn, people[key], CHANNEL, at=week)
        old.challenge(conn, people["ann"], CHANNEL, Purpose.SETUP, "111111", at=week, consumed=True)
        old.challenge(conn, people["pia"], CHANNEL, Purpose.SETUP, "222222", at=week, consumed=True)
        site.pending["pia"] = "482913"
        old.challenge(conn, people["pia"], CHANNEL, Purpose.VERIFY, site.pending["pia"],
                      at=now - timedelta(minutes=1), consumed=False)
        old.challenge(conn, people["mo"], CHANNEL, Purpose.SETUP, "333333", at=week, consumed=True,
                      recipient_of=dataclasses.replace(people["mo"], email="mo.old@example.com"))

        site.backup["ola"] = old.enrolled(conn, people["ola"], "outbox:code", at=now - timedelta(days=2))
        old.challenge(conn, people["ola"], "outbox:code", Purpose.SETUP, "444444", at=week - timedelta(days=30),
                      consumed=True, recipient_of=dataclasses.replace(people["ola"], email="ola.old@example.com"))
        old.challenge(conn, people["ola"], "outbox:code", Purpose.SETUP, "555555", at=now - timedelta(days=2),
                      consumed=True)

        for key in ("tom", "tia"):
            seed = pyotp.random_base32()
            site.apps[key] = pyotp.TOTP(seed)
            # The step of the code the member last signed in with, a minute ago.
            site.last_steps[key] = totp.match(seed, site.apps[key].at(now - timedelta(minutes=1)),
                                              now - timedelta(minutes=1), keys_otp.settings.totp, after_step=None)
            site.backup[key] = old.enrolled(conn, people[key], "totp", at=week,
                                            totp_seed=keys_otp.keys.encrypt(seed),
                                            totp_last_step=site.last_steps[key])
        site.pending["tia"] = "606060"
        old.challenge(conn, people["tia"], CHANNEL, Purpose.VERIFY, site.pending["tia"],
                      at=now - timedelta(minutes=2), consumed=False)

        site.backup["gus"] = old.enrolled(conn, people["gus"], CHANNEL, at=now - timedelta(days=400))

        old.member(conn, people["dan"].id, disabled_at=_naive(week), updated_at=_naive(week))
        old.audit(conn, audit.DISABLED, people["dan"].id, CHANNEL)

        old.member(conn, people["sam"].id, pending_channel=CHANNEL,
                   pending_expires_at=_naive(now + timedelta(minutes=8)))
        site.pending["sam"] = "717171"
        old.challenge(conn, people["sam"], CHANNEL, Purpose.SETUP, site.pending["sam"],
                      at=now - timedelta(minutes=2), consumed=False)
        old.audit(conn, audit.SETUP_STARTED, people["sam"].id, CHANNEL)

        devices = old.tables.tables["otp_trusted_devices"]
        site.device, site.revoked_device = new_token(32), new_token(32)
        for member_id, token, revoked in ((people["ann"].id, site.device, None),
                                          (people["tom"].id, site.revoked_device, _naive(week))):
            conn.execute(devices.insert().values(
                member_id=member_id, token_hash=keys_otp.keys.hash("device", token), label="Firefox on Linux",
                created_at=_naive(week), expires_at=_naive(now + timedelta(days=23)), revoked_at=revoked))
            old.audit(conn, audit.DEVICE_TRUSTED, member_id, None)
        site.confirmed = {key: None for key in ("tom", "tia", "gus")}
        site.confirmed.update(
            ann=old.recipient_hash(CHANNEL, people["ann"]), pia=old.recipient_hash(CHANNEL, people["pia"]),
            ola=old.recipient_hash("outbox:code", people["ola"]),
            mo=old.recipient_hash(CHANNEL, dataclasses.replace(people["mo"], email="mo.old@example.com")))
        members = old.tables.tables["otp_members"]
        site.old_rows = {row.member_id: dict(row._mapping) for row in conn.execute(select(members))}
    return site


@pytest.fixture(params=["sqlite", "postgresql"])
def old_url(request: pytest.FixtureRequest, tmp_path: Path, pg_url: str | None) -> Iterator[str]:
    """An empty database of its own (the migration needs one not at head)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/old.sqlite3"
        return
    if pg_url is None:
        pytest.skip(PG_SKIP_REASON)
    with temporary_pg_database(pg_url, "otp_pro_mig5") as url:
        yield url


@pytest.fixture
def site_settings(old_url: str, smtp_server: tuple[str, int, Mailbox]) -> dict[str, Any]:
    host, port, _mailbox = smtp_server
    return base_settings(old_url, providers={
        "email": {"smtp_host": host, "smtp_port": port, "from_address": "otp@example.com"}})


@pytest.fixture
def old_site(old_url: str, site_settings: dict[str, Any], tmp_path: Path, clock: Clock) -> Iterator[OldSite]:
    # The same secret key as the site's, on a scratch file: the keys the one-channel code hashed with.
    keys_otp = OtpPro({**site_settings, "database_url": f"sqlite:///{tmp_path}/keys.sqlite3"}, clock=clock)
    try:
        site = build_old_site(old_url, keys_otp, clock())
    finally:
        keys_otp.close()
    yield site
    site.engine.dispose()


def db_upgrade(settings: dict[str, Any], tmp_path: Path, revision: str = "head") -> str:
    """``otp-pro db upgrade`` as an operator runs it, with the site's settings file; its output."""
    config = tmp_path / "otp-pro.toml"
    config.write_text(settings_toml(settings))
    result = CliRunner().invoke(cli, ["--config", str(config), "db", "upgrade", "--revision", revision])
    assert result.exit_code == 0, result.output
    return result.output


def counts(engine: Engine) -> dict[str, int]:
    tables = MetaData()
    tables.reflect(engine)
    with engine.connect() as conn:
        return {name: conn.execute(select(func.count()).select_from(tables.tables[name])).scalar_one()
                for name in (*KEPT_TABLES, "otp_factors") if name in tables.tables}


def factor_rows(engine: Engine) -> dict[str, dict[str, Any]]:
    tables = MetaData()
    tables.reflect(engine)
    with engine.connect() as conn:
        return {row.member_id: dict(row._mapping) for row in conn.execute(select(tables.tables["otp_factors"]))}


ENROLLED = ("ann", "pia", "ola", "tom", "tia", "gus", "mo")


def test_upgrade_keeps_every_row_and_makes_each_channel_a_default_factor(old_site, site_settings, tmp_path):
    before = counts(old_site.engine)
    assert "otp_factors" not in before
    assert db_upgrade(site_settings, tmp_path).strip() == f"database at {migrate.head_revision()} (was {BEFORE})"
    assert migrate.current_revision(old_site.engine) == migrate.head_revision()
    after = counts(old_site.engine)
    assert {name: after[name] for name in KEPT_TABLES} == before
    assert after["otp_factors"] == len(ENROLLED)

    people, old = old_site.members, old_site.old_rows
    factors = factor_rows(old_site.engine)
    assert set(factors) == {people[key].id for key in ENROLLED}
    for key in ENROLLED:
        factor, row = factors[people[key].id], old[people[key].id]
        assert factor["kind"] == row["channel"] and factor["is_default"] and factor["label"] is None
        assert factor["secret"] == row["totp_seed"] and factor["last_step"] == row["totp_last_step"]
        assert factor["created_at"] == row["enrolled_at"]
    # A delivered factor is bound to the address its latest consumed setup confirmed (Ola's second, Mo's
    # old one); an app has none, and Gus's setup challenge is gone: his factor is bound at its first send.
    assert {key: factors[people[key].id]["recipient_hash"] for key in ENROLLED} == old_site.confirmed
    assert old_site.confirmed["gus"] is None and old_site.confirmed["mo"] is not None

    tables = MetaData()
    tables.reflect(old_site.engine)
    challenges = tables.tables["otp_challenges"]
    with old_site.engine.connect() as conn:
        tied = {(row.member_id, row.purpose, row.consumed_at is None): row.factor_id
                for row in conn.execute(select(challenges))}
    # The code pending for Pia is tied to her factor; consumed setups and a mid-setup confirmation are not.
    assert tied[(people["pia"].id, Purpose.VERIFY, True)] == factors[people["pia"].id]["id"]
    assert tied[(people["pia"].id, Purpose.SETUP, False)] is None
    assert tied[(people["sam"].id, Purpose.SETUP, True)] is None
    # Tia's fallback code was sent on a channel she has no factor of: tied to none.
    assert tied[(people["tia"].id, Purpose.VERIFY, True)] is None


@pytest.fixture
def upgraded(old_site: OldSite, site_settings: dict[str, Any], tmp_path: Path, otp_factory: Any) -> OtpPro:
    """The site after ``otp-pro db upgrade``, at the moment of the upgrade."""
    db_upgrade(site_settings, tmp_path)
    return otp_factory(site_settings)


def test_members_sign_in_after_the_upgrade_as_before(upgraded, old_site, mailbox, clock):
    otp, people = upgraded, old_site.members
    factor_of = {key: otp.factors(people[key]) for key in ENROLLED}
    assert all(len(found) == 1 and found[0].is_default for found in factor_of.values())
    for key in ENROLLED:
        state = otp.status(people[key])
        assert state.enrolled and state.channel == old_site.old_rows[people[key].id]["channel"], key

    # Email: a code at the confirmed address (the record's, in its own case), then verified.
    ann = people["ann"]
    otp.send_challenge(ann)
    signed = otp.verify(ann, mailed_code(mailbox, "Ann@Example.com"))
    assert signed.ok and signed.method == "code" and signed.factor_id == factor_of["ann"][0].id
    # The code sent a minute before the upgrade still signs in, once.
    pia = people["pia"]
    pending = otp.verify(pia, old_site.pending["pia"])
    assert pending.ok and pending.factor_id == factor_of["pia"][0].id
    assert not otp.verify(pia, old_site.pending["pia"]).ok
    # The outbox member set up twice: the later address is the bound one.
    ola = people["ola"]
    otp.send_challenge(ola)
    assert otp.verify(ola, outbox_code(otp, "ola.new@example.com")).ok

    # Authenticator apps: the next step's code verifies; the step used before the upgrade stays used.
    tom = people["tom"]
    last_code = old_site.apps["tom"].at(clock() - timedelta(minutes=1))
    assert not otp.verify(tom, last_code).ok
    clock.advance(otp.settings.totp.period)
    by_app = otp.verify(tom, old_site.apps["tom"].at(clock()))
    assert by_app.ok and by_app.method == "totp" and by_app.factor_id == factor_of["tom"][0].id
    # A fallback code emailed to an app member just before the upgrade: tied to no factor (the migration
    # ties a pending code to the member's factor of its channel only), it still verifies until it expires.
    tia = people["tia"]
    fallback = otp.verify(tia, old_site.pending["tia"])
    assert fallback.ok and fallback.channel == CHANNEL and fallback.factor_id is None
    assert otp.verify(tia, old_site.apps["tia"].at(clock())).ok

    # Backup codes issued before the upgrade still work, once.
    for key in ENROLLED:
        used = otp.verify(people[key], old_site.backup[key][0])
        assert used.ok and used.method == "backup_code" and used.backup_codes_remaining == 9, key
    assert not otp.verify(ann, old_site.backup["ann"][0]).ok

    # Trusted devices stay as they were: the migration changes no member's factors.
    assert otp.is_trusted(ann, old_site.device)
    assert not otp.is_trusted(tom, old_site.revoked_device)

    # Disabled stays disabled, with no factor.
    dan = otp.status(people["dan"])
    assert dan.disabled and not dan.enrolled and otp.factors(people["dan"]) == []


def test_a_factor_with_no_setup_left_is_bound_at_its_first_send(upgraded, old_site, mailbox):
    otp, gus = upgraded, old_site.members["gus"]
    assert otp.factors(gus)[0].recipient_hint is None and not otp.factors(gus)[0].needs_reconfirming
    otp.send_challenge(gus)
    assert otp.verify(gus, mailed_code(mailbox, "gus@example.com")).ok
    bound = otp.events(gus, kinds=[audit.FACTOR_BOUND])
    assert len(bound) == 1 and bound[0].channel == CHANNEL
    assert bound[0].details["factor_id"] == otp.factors(gus)[0].id
    assert bound[0].details["recipient"] == "g***@example.com"
    assert otp.factors(gus)[0].recipient_hint == "g***@example.com"
    # Bound once: a later send is not a new binding.
    otp.send_challenge(gus)
    assert len(otp.events(gus, kinds=[audit.FACTOR_BOUND])) == 1
    # The address the record shows after that is refused until it is confirmed.
    moved = dataclasses.replace(gus, email="gus.elsewhere@example.com")
    sent_before = len(mailbox.messages)
    with pytest.raises(FactorNeedsReconfirming):
        otp.send_challenge(moved)
    assert len(mailbox.messages) == sent_before and mailbox.to("gus.elsewhere@example.com") == []
    assert otp.factors(moved)[0].needs_reconfirming


def test_an_address_changed_since_the_setup_is_not_sent_to_after_the_upgrade(upgraded, old_site, mailbox):
    """Before factors a code went to whatever the record showed; after the upgrade, to the confirmed address
    only. A member whose address changed since the setup signs in with a backup code (or an operator's
    reset) and confirms the new address."""
    otp, mo = upgraded, old_site.members["mo"]
    assert otp.factors(mo)[0].needs_reconfirming
    with pytest.raises(FactorNeedsReconfirming):
        otp.send_challenge(mo)
    assert mailbox.to("mo.new@example.com") == [] and mailbox.to("mo.old@example.com") == []
    assert otp.verify(mo, old_site.backup["mo"][0]).ok
    factor = otp.factors(mo)[0]
    otp.begin_setup(mo, CHANNEL, reconfirm=factor.id)
    otp.complete_setup(mo, mailed_code(mailbox, "mo.new@example.com"))
    assert [f.id for f in otp.factors(mo)] == [factor.id] and not otp.factors(mo)[0].needs_reconfirming
    otp.send_challenge(mo)
    assert otp.verify(mo, mailed_code(mailbox, "mo.new@example.com")).ok


def test_a_setup_begun_before_the_upgrade_completes_after_it(upgraded, old_site, mailbox):
    otp, sam = upgraded, old_site.members["sam"]
    assert not otp.status(sam).enrolled
    codes = otp.complete_setup(sam, old_site.pending["sam"])
    assert len(codes) == otp.settings.backup_code_count
    [factor] = otp.factors(sam)
    assert factor.kind == CHANNEL and factor.is_default
    # Its confirmation was sent before the setup kept the address: bound at the first send, as a carried-over one.
    otp.send_challenge(sam)
    assert otp.verify(sam, mailed_code(mailbox, "sam@example.com")).ok
    assert len(otp.events(sam, kinds=[audit.FACTOR_BOUND])) == 1


def test_downgrade_to_the_one_channel_schema_and_up_again(old_site, site_settings, tmp_path, old_url):
    db_upgrade(site_settings, tmp_path)
    factors = factor_rows(old_site.engine)
    cfg = migrate.alembic_config()
    with old_site.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, BEFORE)
        conn.commit()
    assert migrate.current_revision(old_site.engine) == BEFORE
    back = counts(old_site.engine)
    assert "otp_factors" not in back and back == {name: back[name] for name in KEPT_TABLES}
    tables = MetaData()
    tables.reflect(old_site.engine)
    with old_site.engine.connect() as conn:
        rows = {row.member_id: dict(row._mapping) for row in conn.execute(select(tables.tables["otp_members"]))}
    assert rows == old_site.old_rows
    db_upgrade(site_settings, tmp_path)
    again = factor_rows(old_site.engine)
    assert {k: {c: v for c, v in row.items() if c != "id"} for k, row in again.items()} == \
        {k: {c: v for c, v in row.items() if c != "id"} for k, row in factors.items()}
