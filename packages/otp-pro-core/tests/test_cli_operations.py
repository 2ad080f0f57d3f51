"""Operator commands: ``otp-pro members ...`` and ``otp-pro audit ...`` (click's runner and real processes)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from core_support import SECRET_KEY
from sqlalchemy import text

from otp_pro import Member, OtpPro, audit, hookimpl
from otp_pro.audit import AuditEvent
from otp_pro.auditlog import AuditFilter, export, parse_age, parse_when
from otp_pro.cli import cli
from otp_pro.cli.common import os_user
from otp_pro.testing import mailed_code, mailed_text, outbox_code

ANN = Member("42", roles=["editor"], email="ann@example.com", name="Ann")
BOSS = Member("7", roles=["admin"], email="boss@example.com", name="Boss")


class Directory:
    """A member_lookup plugin that knows Ann and Boss."""

    __name__ = "test_directory"

    @hookimpl
    def otp_pro_member_lookup(self, member_id: str) -> Member | None:
        return {"42": ANN, "7": BOSS}.get(member_id)


def write_config(folder: Path, url: str) -> Path:
    path = folder / "otp-pro.toml"
    path.write_text(
        f'secret_key = "{SECRET_KEY}"\ndatabase_url = "{url}"\n'
        'channels = ["outbox:code", "totp"]\ndefault_channel = "outbox:code"\nmax_attempts = 3\n'
        'resend_cooldown_seconds = 0\n\n[roles.admin]\nrequirement = "required"\n'
    )
    return path


@pytest.fixture
def site(backend: str, tmp_path: Path) -> Iterator[tuple[OtpPro, Path]]:
    """An OtpPro with the Directory plugin on the test's database, and a settings file for the same database."""
    config = write_config(tmp_path, backend)
    otp = OtpPro.from_file(str(config), plugins=[Directory()])
    yield otp, config
    otp.close()


def invoke(otp: OtpPro | None, config: Path, *args: str, input: str | None = None):
    obj = {"otp": otp} if otp is not None else {}
    return CliRunner().invoke(cli, ["--config", str(config), *args], obj=obj, input=input)


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OTP_PRO_CONFIG", "OTP_PRO_DEBUG")}
    return subprocess.run([sys.executable, "-m", "otp_pro", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=120, stdin=subprocess.DEVNULL)


def one_line_error(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("otp-pro: ")
    return lines[0]


def seed(otp: OtpPro, events: list[AuditEvent]) -> None:
    with otp.db.write() as conn:
        for event in events:
            audit.write(otp.db, conn, event)


# ------------------------------------------------------------------ members


def test_members_show_unlock_reset_disable(site):
    otp, config = site
    otp.begin_setup(ANN, "outbox:code")
    otp.complete_setup(ANN, outbox_code(otp))
    otp.trust_device(ANN, label="Ann's laptop")
    otp.send_challenge(ANN)
    for _ in range(3):
        otp.verify(ANN, "000000")

    shown = invoke(otp, config, "members", "show", "42", "--json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["member"] == {"id": "42", "roles": ["editor"], "roles_known": True, "email": "ann@example.com",
                              "name": "Ann"}
    assert data["requirement"] == "optional" and data["enrolled"] and data["channel"] == "outbox:code"
    assert data["backup_codes_remaining"] == 10
    assert [d["label"] for d in data["trusted_devices"]] == ["Ann's laptop"]
    assert data["locked_until"] is not None
    kinds = [e["kind"] for e in data["events"]]
    assert kinds[0] == "locked_out" and "setup_completed" in kinds and len(kinds) <= 20
    table = invoke(otp, config, "members", "show", "42")
    assert "roles: editor" in table.output and "locked until" in table.output and "10 left" in table.output

    unlocked = invoke(otp, config, "members", "unlock", "42", "--actor", "ops@desk")
    assert unlocked.exit_code == 0 and otp.status(ANN).locked_until is None
    reset = invoke(otp, config, "members", "reset", "42", "--actor", "ops@desk")
    assert reset.exit_code == 0, reset.output
    status = otp.status(ANN)
    assert not status.enrolled and status.backup_codes_remaining == 0 and otp.trusted_devices(ANN) == []
    done = {e.kind: e for e in otp.events(ANN, kinds=["unlocked", "reset"])}
    assert done["unlocked"].actor == "ops@desk" and done["reset"].actor == "ops@desk"
    assert done["reset"].details["devices_revoked"] == 1

    # The admin role requires a second factor: disabling needs --force.
    otp.begin_setup(BOSS, "outbox:code")
    otp.complete_setup(BOSS, outbox_code(otp))
    refused = invoke(otp, config, "members", "disable", "7")
    assert refused.exit_code == 2 and "--force" in refused.output and otp.status(BOSS).enrolled
    forced = invoke(otp, config, "members", "disable", "7", "--force")
    assert forced.exit_code == 0, forced.output
    assert not otp.status(BOSS).enrolled
    event = otp.events(BOSS, kinds=["disabled"])[0]
    assert event.actor  # the OS user by default


def test_members_without_a_lookup_plugin(tmp_path, sqlite_url, smtp_server):
    host, port, mailbox = smtp_server
    config = write_config(tmp_path, sqlite_url)
    config.write_text(config.read_text().replace('channels = ["outbox:code", "totp"]',
                                                 'channels = ["outbox:code", "totp", "email:code"]')
                      + f'\n[providers.email]\nsmtp_host = "{host}"\nsmtp_port = {port}\n'
                        'from_address = "otp@example.com"\n')
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    # An id otp-pro never saw and nobody can look up is a typo, not a member who is "not enrolled".
    missing = one_line_error(run(["members", "show", "99"], tmp_path), code=1)
    assert "no such member '99'" in missing
    with OtpPro.from_file(str(config)) as otp:
        bare = Member("99", email="zed@example.com")  # the site's own login knows the address
        otp.begin_setup(bare, "email:code")
        otp.complete_setup(bare, mailed_code(mailbox, "zed@example.com"))
    shown = run(["members", "show", "99", "--json"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stderr.count("\n") == 1 and "roles and addresses of '99' unknown" in shown.stderr
    assert "member_lookup" in shown.stderr
    data = json.loads(shown.stdout)
    # Unknown, not guessed: no "optional" for a member whose roles nobody told us.
    assert data["member"]["roles_known"] is False and data["member"]["roles"] is None
    assert data["requirement"] is None and data["channels"] is None and data["unavailable"] is None
    assert data["enrolled"] and data["channel"] == "email:code"
    table = run(["members", "show", "99"], tmp_path).stdout
    assert "roles: unknown" in table and "requirement   unknown" in table and "member_lookup" in table
    strict = one_line_error(run(["members", "show", "99", "--strict"], tmp_path))
    assert "no member lookup is set up" in strict and "member_lookup" in strict
    # Without roles the policy cannot be checked, so disabling needs --force.
    refused = run(["members", "disable", "99"], tmp_path)
    assert refused.returncode == 2 and "--force" in refused.stderr and "member_lookup" in refused.stderr
    # A reset goes through, but the member cannot be told: the operator hears it and the audit log keeps it.
    reset = run(["members", "reset", "99", "--actor", "ops"], tmp_path)
    assert reset.returncode == 0 and "cannot be told of the reset" in reset.stderr
    listed = json.loads(run(["audit", "list", "--member", "99", "--json"], tmp_path).stdout)
    unsent = [e for e in listed if e["kind"] == "notification_unsent"]
    assert len(unsent) == 1 and unsent[0]["details"]["reason"] == "no_transport"
    assert unsent[0]["details"]["member_lookup"] is False
    assert unsent[0]["details"]["change"] == "reset"
    assert run(["members", "disable", "99", "--force", "--actor", "ops"], tmp_path).returncode == 0
    assert run(["members", "unlock", "99"], tmp_path).returncode == 0
    listed = json.loads(run(["audit", "list", "--member", "99", "--json"], tmp_path).stdout)
    assert ("disabled", "ops") in [(e["kind"], e["actor"]) for e in listed]


LOOKUP_MODULE = """
from otp_pro import Member

PEOPLE = {
    "7": Member("7", roles=["admin"], email="boss@example.com", name="Boss"),
    "42": Member("42", roles=["editor"], email="ann@example.com", name="Ann"),
}


def load(member_id):
    return PEOPLE.get(member_id)
"""


def test_member_lookup_setting_gives_the_cli_roles_and_addresses(tmp_path, backend, monkeypatch, smtp_server):
    """``member_lookup = "module:function"`` alone, no plugin: the CLI sees the admin's role and address."""
    host, port, mailbox = smtp_server
    (tmp_path / "site_directory.py").write_text(LOOKUP_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = write_config(tmp_path, backend)
    config.write_text('member_lookup = "site_directory:load"\n' + config.read_text()
                      .replace('channels = ["outbox:code", "totp"]', 'channels = ["outbox:code", "totp", "email:code"]')
                      + f'\n[providers.email]\nsmtp_host = "{host}"\nsmtp_port = {port}\n'
                        'from_address = "otp@example.com"\n')
    with OtpPro.from_file(str(config)) as otp:
        assert otp.has_member_lookup and otp.member("7") == BOSS
        otp.begin_setup(BOSS, "outbox:code")
        otp.complete_setup(BOSS, outbox_code(otp))
        shown = invoke(otp, config, "members", "show", "7", "--json")
        assert shown.exit_code == 0, shown.output
        data = json.loads(shown.output)
        assert data["member"]["roles"] == ["admin"] and data["member"]["roles_known"] is True
        assert data["requirement"] == "required"  # admin requires a second factor, not the site's "optional"
        assert "email:code" in data["channels"] and data["unavailable"] == {}  # the address is known
        # Known to the lookup but never seen by otp-pro: a real member who has not enrolled yet.
        fresh = json.loads(invoke(otp, config, "members", "show", "42", "--json").output)
        assert fresh["enrolled"] is False and fresh["requirement"] == "optional"
        missing = invoke(otp, config, "members", "show", "99")
        assert missing.exit_code == 1 and "no such member '99'" in missing.output
        # A support reset tells the member, at the address the lookup gives.
        mailbox.clear()
        reset = invoke(otp, config, "members", "reset", "7", "--actor", "ops@desk")
        assert reset.exit_code == 0, reset.output
        sent = otp.events(BOSS, kinds=["notification_sent"])
        assert sent[0].details["change"] == "reset" and sent[0].details["transport"] == "email"
        assert "was reset" in mailed_text(mailbox, "boss@example.com")


@pytest.mark.parametrize(("value", "expected"), [
    ("site_directory_missing:load", "cannot import 'site_directory_missing:load': ModuleNotFoundError"),
    ("site_directory:nobody", "cannot import 'site_directory:nobody': AttributeError"),
    ("site_directory:PEOPLE", "is a dict, not a function"),
    ("site_directory.load", "is not of the form 'package.module:function'"),
])
def test_member_lookup_setting_that_cannot_be_used_is_refused_at_start_up(tmp_path, sqlite_url, monkeypatch,
                                                                            value, expected):
    from otp_pro.errors import ConfigurationError

    (tmp_path / "site_directory.py").write_text(LOOKUP_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigurationError) as caught:
        OtpPro({"secret_key": SECRET_KEY, "database_url": sqlite_url, "member_lookup": value})
    assert str(caught.value).startswith("member_lookup: ") and expected in str(caught.value)
    assert caught.value.key == "member_lookup"


@pytest.mark.parametrize("bad", ["", "x" * 256, "a\tb", "new\nline"])
def test_bad_member_id_is_one_line(tmp_path, sqlite_url, bad):
    write_config(tmp_path, sqlite_url)
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    for command in ("show", "reset", "unlock", "disable"):
        line = one_line_error(run(["members", command, bad], tmp_path))
        assert "bad member id" in line and "1 to 255 printable characters" in line


# -------------------------------------------------------------------- audit


def test_error_paths_are_one_line(tmp_path, sqlite_url):
    for args in (["members", "show", "42"], ["audit", "list"], ["audit", "export", "-o", "x.csv"],
                 ["audit", "prune", "--older-than", "30d"]):
        assert "no settings file" in one_line_error(run(args, tmp_path))
    write_config(tmp_path, sqlite_url)
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    assert "'--format'" in one_line_error(run(["audit", "export", "--format", "xml", "-o", "x"], tmp_path))
    assert "neither an ISO date" in one_line_error(run(["audit", "list", "--since", "last tuesday"], tmp_path))
    assert "neither an ISO date" in one_line_error(run(["audit", "export", "--until", "2026-13-01", "-o", "x"],
                                                       tmp_path))
    assert "not an age" in one_line_error(run(["audit", "prune", "--older-than", "a year"], tmp_path))
    assert "at least 1d" in one_line_error(run(["audit", "prune", "--older-than", "5m"], tmp_path))
    assert "'--outcome'" in one_line_error(run(["audit", "list", "--outcome", "meh"], tmp_path))
    assert "cannot write" in one_line_error(run(["audit", "export", "-o", "no/such/dir/x.csv"], tmp_path))
    assert "'--output'" in one_line_error(run(["audit", "export"], tmp_path))


def test_parse_when_and_age():
    now = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    assert parse_when("30d", now) == now - timedelta(days=30)
    assert parse_when("12h", now) == now - timedelta(hours=12)
    assert parse_when("2026-01-31", now) == datetime(2026, 1, 31, tzinfo=timezone.utc)
    assert parse_when("2026-01-31T08:30", now) == datetime(2026, 1, 31, 8, 30, tzinfo=timezone.utc)
    assert parse_when("2026-01-31T08:30:00+02:00", now) == datetime(2026, 1, 31, 6, 30, tzinfo=timezone.utc)
    assert parse_when("2026-01-31T08:30:00Z", now) == datetime(2026, 1, 31, 8, 30, tzinfo=timezone.utc)
    assert parse_age("2w") == timedelta(days=14)
    for bad in ("", "30", "d", "-3d", "30y", "yesterday", "2026-02-30"):
        with pytest.raises(ValueError):
            parse_when(bad, now)


def _sample(now: datetime) -> list[AuditEvent]:
    return [
        AuditEvent("verify_ok", now - timedelta(days=40), "ok", "42", "outbox:code"),
        AuditEvent("verify_failed", now - timedelta(days=10), "failed", "42", "totp", details={"reason": "wrong"}),
        AuditEvent("challenge_sent", now - timedelta(days=5), "ok", "43", "outbox:code",
                   user_agent="=HYPERLINK(\"http://evil\")"),
        AuditEvent("locked_out", now - timedelta(hours=2), "failed", "42", None),
        AuditEvent("verify_ok", now - timedelta(hours=1), "ok", "43", "totp"),
    ]


def test_audit_list_filters(site):
    otp, config = site
    now = datetime.now(timezone.utc)
    seed(otp, _sample(now))

    def listed(*args: str) -> list[dict]:
        result = invoke(otp, config, "audit", "list", "--json", *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    assert [e["kind"] for e in listed()] == ["verify_ok", "locked_out", "challenge_sent", "verify_failed",
                                              "verify_ok"]
    assert {e["member_id"] for e in listed("--member", "42")} == {"42"}
    assert [e["kind"] for e in listed("--kind", "locked_out", "--kind", "verify_failed")] == [
        "locked_out", "verify_failed"]
    assert [e["member_id"] for e in listed("--channel", "totp")] == ["43", "42"]
    assert [e["kind"] for e in listed("--outcome", "failed", "--member", "42")] == ["locked_out", "verify_failed"]
    assert len(listed("--since", "30d")) == 4 and len(listed("--since", "12h")) == 2
    assert len(listed("--until", "7d")) == 2
    old = (now - timedelta(days=20)).date().isoformat()
    assert [e["kind"] for e in listed("--until", old)] == ["verify_ok"]
    assert len(listed("--limit", "2")) == 2
    assert listed("--member", "nobody") == []
    table = invoke(otp, config, "audit", "list", "--member", "42", "--kind", "verify_failed")
    assert "verify_failed" in table.output and "reason=wrong" in table.output


def test_audit_export_formats(site, tmp_path):
    otp, config = site
    now = datetime.now(timezone.utc)
    seed(otp, _sample(now))
    sample = ["verify_failed", "challenge_sent", "locked_out", "verify_ok"]
    for done, fmt in enumerate(("csv", "jsonl", "json")):
        out = tmp_path / f"audit.{fmt}"
        result = invoke(otp, config, "audit", "export", "--format", fmt, "-o", str(out), "--since", "30d")
        assert result.exit_code == 0, result.output
        # The sample, then each export's own audit_exported (written before the first row is read).
        assert f"exported {4 + done + 1} events" in result.output
        assert not (tmp_path / f"audit.{fmt}.partial").exists()
        body = out.read_text()
        kinds = sample + ["audit_exported"] * (done + 1)
        if fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(body)))
            assert [r["kind"] for r in rows] == kinds
            assert json.loads(rows[0]["details"]) == {"reason": "wrong"}
            assert rows[1]["user_agent"].startswith("'=")  # no formula for a spreadsheet to run
        elif fmt == "jsonl":
            rows = [json.loads(line) for line in body.splitlines()]
            assert [r["kind"] for r in rows] == kinds
            assert rows[0]["details"] == {"reason": "wrong"} and rows[0]["at"].endswith("+00:00")
        else:
            rows = json.loads(body)
            assert [r["kind"] for r in rows] == kinds and rows[2]["kind"] == "locked_out"
    empty = io.StringIO()
    assert export(otp.db, empty, "json", AuditFilter(member_id="nobody")) == 0 and json.loads(empty.getvalue()) == []
    stdout = invoke(otp, config, "audit", "export", "--format", "jsonl", "-o", "-", "--member", "43")
    assert stdout.exit_code == 0 and stdout.output.count('"member_id": "43"') == 2


def test_audit_export_is_itself_audited_with_the_operator_format_and_filters(site, tmp_path):
    """As the console's download is: who took a copy of the log, and of what, is in the log."""
    otp, config = site
    seed(otp, _sample(datetime.now(timezone.utc)))
    out = tmp_path / "audit.csv"
    result = invoke(otp, config, "audit", "export", "--format", "csv", "-o", str(out), "--member", "42",
                    "--kind", "verify_failed", "--kind", "verify_ok", "--since", "2026-01-01", "--actor", "alice")
    assert result.exit_code == 0, result.output
    [event] = otp.events(kinds=["audit_exported"])
    assert (event.actor, event.member_id, event.outcome) == ("alice", None, "info")
    assert event.details == {"format": "csv", "filters": {
        "member": "42", "kind": ["verify_failed", "verify_ok"], "since": "2026-01-01T00:00:00+00:00"}}
    # Without --actor the OS user is named, as for every other CLI action; standard output too.
    plain = invoke(otp, config, "audit", "export", "--format", "jsonl", "-o", "-", "--outcome", "failed")
    assert plain.exit_code == 0
    newest = otp.events(kinds=["audit_exported"])[0]
    assert newest.actor == os_user() and newest.details == {"format": "jsonl", "filters": {"outcome": "failed"}}
    # A refused export (an unknown kind) reads nothing and records nothing.
    refused = invoke(otp, config, "audit", "export", "-o", "-", "--kind", "no_such_kind")
    assert refused.exit_code == 2 and len(otp.events(kinds=["audit_exported"])) == 2
    # Nor does one refused for its target, a folder: one line naming it, before anything is read.
    folder = invoke(otp, config, "audit", "export", "-o", str(tmp_path))
    assert folder.exit_code == 2 and f"cannot write {tmp_path}: it is a folder" in folder.output
    assert len(otp.events(kinds=["audit_exported"])) == 2


def test_audit_prune(site, tmp_path):
    otp, config = site
    now = datetime.now(timezone.utc)
    seed(otp, _sample(now))
    asked = invoke(otp, config, "audit", "prune", "--older-than", "7d", input="n\n")
    assert asked.exit_code == 1 and "delete 2 audit events" in asked.output and "nothing deleted" in asked.output
    # No terminal, no stdin: refuse at once instead of waiting for an answer.
    started = time.monotonic()
    refused = run(["audit", "prune", "--older-than", "7d"], tmp_path)
    assert time.monotonic() - started < 60
    assert refused.returncode == 1 and "nothing deleted" in refused.stderr and "Traceback" not in refused.stderr
    assert len(otp.events(limit=100)) == 5
    confirmed = invoke(otp, config, "audit", "prune", "--older-than", "7d", "--actor", "ops", input="y\n")
    assert confirmed.exit_code == 0 and "deleted 2 audit events" in confirmed.output
    done = run(["audit", "prune", "--older-than", "1d", "--yes"], tmp_path)
    assert done.returncode == 0 and "deleted 1 audit events" in done.stdout
    left = otp.events(limit=100)
    assert [e.kind for e in left] == ["audit_pruned", "audit_pruned", "verify_ok", "locked_out"]
    assert left[1].actor == "ops" and left[1].details["deleted"] == 2


# ------------------------------------------------------------------ scale

ROWS = 1_000_000


def _generate(otp: OtpPro, rows: int) -> None:
    """``rows`` audit events in one statement: a recursive CTE on SQLite, generate_series on PostgreSQL."""
    columns = "at, kind, outcome, member_id, channel, ip, user_agent, actor, details"
    if otp.db.is_sqlite:
        sql = (
            f"INSERT INTO otp_audit_events ({columns}) "
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows) "
            "SELECT datetime('2026-01-01', '+' || (i / 10) || ' seconds') || '.000000', "
            "CASE i % 3 WHEN 0 THEN 'verify_ok' WHEN 1 THEN 'challenge_sent' ELSE 'verify_failed' END, "
            "CASE i % 3 WHEN 2 THEN 'failed' ELSE 'ok' END, 'member-' || (i % 5000), 'email:code', "
            "'203.0.113.' || (i % 250), 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0', NULL, "
            "'{\"method\": \"code\", \"n\": ' || i || '}' FROM n"
        )
    else:
        sql = (
            f"INSERT INTO otp_audit_events ({columns}) "
            "SELECT timestamp '2026-01-01' + (i / 10) * interval '1 second', "
            "CASE i % 3 WHEN 0 THEN 'verify_ok' WHEN 1 THEN 'challenge_sent' ELSE 'verify_failed' END, "
            "CASE i % 3 WHEN 2 THEN 'failed' ELSE 'ok' END, 'member-' || (i % 5000), 'email:code', "
            "'203.0.113.' || (i % 250), 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0', NULL, "
            "'{\"method\": \"code\", \"n\": ' || i || '}' FROM generate_series(1, :rows) AS i"
        )
    with otp.db.write() as conn:
        conn.execute(text(sql), {"rows": rows})


def test_export_of_a_million_rows_streams_in_constant_memory(site, tmp_path):
    otp, config = site
    started = time.monotonic()
    _generate(otp, ROWS)
    generated = time.monotonic() - started
    out = tmp_path / "audit.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "OTP_PRO_CONFIG"}
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "otp_pro", "--config", str(config), "audit", "export", "--format", "jsonl",
         "--output", str(out)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be the maximum over every child so far).
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.returncode == 0, stderr
    assert f"exported {ROWS + 1} events" in stderr  # and the export's own audit_exported
    peak_mb = usage.ru_maxrss / 1024  # kilobytes on Linux
    with out.open("rb") as handle:
        lines = sum(1 for _ in handle)
    assert lines == ROWS + 1
    print(f"\n[{otp.db.engine.dialect.name}] generated {ROWS:,} rows in {generated:.1f} s; exported in "
          f"{elapsed:.1f} s = {ROWS / elapsed:,.0f} rows/s, peak RSS {peak_mb:.0f} MB, "
          f"{out.stat().st_size / 1e6:.0f} MB written")
    assert peak_mb < 200
