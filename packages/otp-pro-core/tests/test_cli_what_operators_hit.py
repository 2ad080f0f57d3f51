"""What operators hit on the command line, each through the real ``otp-pro`` entry point on real files.

Error paths run in a real process (``python -m otp_pro``), so what is checked is what
an operator sees: the exit code and the lines on standard error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SECRET_KEY = "k" * 40


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("OTP_PRO_CONFIG", "OTP_PRO_DEBUG")}
    return subprocess.run([sys.executable, "-m", "otp_pro", *args], cwd=cwd, capture_output=True, text=True,
                          env={**base, **env}, timeout=120, stdin=subprocess.DEVNULL)


def write_config(folder: Path, url: str) -> Path:
    path = folder / "otp-pro.toml"
    path.write_text(f'secret_key = "{SECRET_KEY}"\ndatabase_url = "{url}"\n')
    return path


# ------------------------------------------------------- 1. config check lists every problem


def test_config_check_prints_every_problem_on_its_own_line(tmp_path):
    (tmp_path / "otp-pro.toml").write_text(
        'secret_key = "short"\ncode_length = "six"\ndatabase_url = "mysql://db.example.com/otp"\n'
    )
    result = run(["config", "check"], tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "\\n" not in result.stderr  # no escaped newline: real lines
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "otp-pro: configuration error: invalid settings (3 problems):"
    problems = {line.split(":")[0]: line for line in lines[1:]}
    assert sorted(problems) == ["  code_length", "  database_url", "  secret_key"]
    assert "SQLite or PostgreSQL, not mysql" in problems["  database_url"]


def test_config_check_with_one_problem_stays_one_line(tmp_path):
    write_config(tmp_path, "oracle://db.example.com/otp")
    result = run(["config", "check"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "otp-pro: configuration error: database_url: otp-pro runs on SQLite or PostgreSQL, not oracle"
    ]


# ------------------------------------------------------- 2. audit --kind refuses a typo


def test_audit_list_refuses_an_unknown_kind_and_names_the_known_ones(tmp_path):
    assert run(["init"], tmp_path).returncode == 0
    result = run(["audit", "list", "--kind", "typo"], tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no matching events" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "unknown event kind 'typo'" in line and "verify_failed" in line and "provider_test" in line
    exported = run(["audit", "export", "--kind", "typo", "-o", "-"], tmp_path)
    assert exported.returncode == 2 and "unknown event kind 'typo'" in exported.stderr


def test_audit_list_accepts_a_plugin_kind_that_is_in_the_log(tmp_path):
    from otp_pro import OtpPro

    assert run(["init"], tmp_path).returncode == 0
    otp = OtpPro.from_file(str(tmp_path / "otp-pro.toml"))
    try:
        otp.record_event("notification_sent", "ann")
    finally:
        otp.close()
    known = run(["audit", "list", "--kind", "notification_sent", "--json"], tmp_path)
    assert known.returncode == 0, known.stderr
    assert [e["kind"] for e in json.loads(known.stdout)] == ["notification_sent"]
    core_kind = run(["audit", "list", "--kind", "locked_out"], tmp_path)
    assert core_kind.returncode == 0 and "no matching events" in core_kind.stderr


# ------------------------------------------------------- 3. corrupt or unmigrated SQLite files


def test_a_file_that_is_not_sqlite_is_named(tmp_path):
    (tmp_path / "notes.txt").write_text("not a database\n")
    write_config(tmp_path, "sqlite:///notes.txt")
    for args in (["audit", "list"], ["db", "upgrade"], ["db", "current"], ["stats"]):
        result = run(args, tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        [line] = result.stderr.strip().splitlines()
        assert f"{tmp_path / 'notes.txt'} is not a SQLite database" in line, line
    assert (tmp_path / "notes.txt").read_text() == "not a database\n"


@pytest.mark.parametrize("args", [["audit", "list"], ["stats"], ["members", "show", "ann"],
                                  ["audit", "export", "-o", "-"]])
def test_read_commands_do_not_create_a_sqlite_database(tmp_path, args):
    write_config(tmp_path, "sqlite:///fresh.sqlite3")
    result = run(args, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "run `otp-pro db upgrade`" in line and "fresh.sqlite3" in line
    assert not (tmp_path / "fresh.sqlite3").exists()


def test_read_commands_refuse_a_sqlite_file_without_tables(tmp_path):
    import sqlite3

    sqlite3.connect(tmp_path / "other.sqlite3").execute("CREATE TABLE unrelated (x)").connection.close()
    write_config(tmp_path, "sqlite:///other.sqlite3")
    result = run(["audit", "list"], tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "has no otp-pro tables yet: run `otp-pro db upgrade`" in line
    with sqlite3.connect(tmp_path / "other.sqlite3") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"unrelated"}
    upgraded = run(["db", "upgrade"], tmp_path)  # the way out the message names works
    assert upgraded.returncode == 0, upgraded.stderr
    assert run(["audit", "list"], tmp_path).returncode == 0


def test_read_commands_refuse_a_sqlite_schema_that_is_behind(tmp_path):
    from otp_pro.storage import migrate

    write_config(tmp_path, "sqlite:///old.sqlite3")
    assert run(["db", "upgrade", "--revision", "0001"], tmp_path).returncode == 0
    result = run(["audit", "list"], tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert f"at revision 0001, this otp-pro-core needs {migrate.head_revision()}: run `otp-pro db upgrade`" in line
    current = run(["db", "current"], tmp_path)
    assert "current: 0001" in current.stdout


# ------------------------------------------------------- 4. providers list without settings


def test_providers_list_without_a_settings_file(tmp_path):
    result = run(["providers", "list", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {r["plugin"]: r for r in json.loads(result.stdout)}
    assert rows["otp_pro_email"]["transports"] == ["email"]
    assert rows["otp_pro_email"]["distribution"] == "otp-pro-core"
    assert rows["otp_pro_code"]["payloads"] == ["code"]
    assert rows["otp_pro_factor_types"]["factor_types"] == ["totp", "code", "link"]
    table = run(["providers", "list"], tmp_path)
    assert table.returncode == 0 and "otp_pro_email" in table.stdout
    assert "no settings file" in table.stderr and not list(tmp_path.iterdir())
    named = run(["--config", "missing.toml", "providers", "list"], tmp_path)  # a file asked for must exist
    assert named.returncode == 2 and "no settings file at missing.toml" in named.stderr


# ------------------------------------------------------- 5. providers test of what cannot be tested


def test_providers_test_totp_says_there_is_nothing_to_send(tmp_path):
    assert run(["init"], tmp_path).returncode == 0
    result = run(["providers", "test", "totp", "--to", "ops@example.com"], tmp_path)
    assert result.returncode == 2 and "configuration error" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "totp has nothing to send" in line and "authenticator app" in line


def test_providers_test_of_a_well_known_name_suggests_the_companion(tmp_path):
    assert run(["init"], tmp_path).returncode == 0
    env = {"OTP_PRO_DISABLE_PLUGINS": "otp_pro_sms_twilio"}  # as on a site without the companion
    result = run(["providers", "test", "sms", "--to", "+447400123456"], tmp_path, **env)
    assert result.returncode == 2 and "configuration error" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "no transport called 'sms'" in line and "pip install otp-pro-sms-twilio" in line
    unknown = run(["providers", "test", "pigeon", "--to", "x"], tmp_path, **env)
    assert unknown.returncode == 2 and "no transport called 'pigeon'" in unknown.stderr
    assert "pip install" not in unknown.stderr and "installed: email, outbox" in unknown.stderr


# ------------------------------------------------------- 7. providers list columns


def install_long_named_plugin(folder: Path) -> Path:
    """A real distribution with a long name on a folder put on ``PYTHONPATH``, found through its entry point."""
    site = folder / "site"
    dist = site / "acme_otp_pro_whatsapp_business_cloud-12.3.4rc1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-otp-pro-whatsapp-business-cloud\n"
                                   "Version: 12.3.4rc1\n")
    (dist / "entry_points.txt").write_text("[otp_pro]\nacme_whatsapp_business_transport = acme_whatsapp_plugin\n")
    (site / "acme_whatsapp_plugin.py").write_text('"""A plugin that registers nothing: only its name matters."""\n')
    return site


def test_providers_list_columns_fit_the_longest_values(tmp_path):
    site = install_long_named_plugin(tmp_path)
    result = run(["providers", "list"], tmp_path, PYTHONPATH=os.pathsep.join([str(site), *sys.path]))
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    long = next(line for line in lines if line.startswith("acme_whatsapp_business_transport "))
    short = next(line for line in lines if line.startswith("otp_pro_email "))
    assert "acme-otp-pro-whatsapp-business-cloud 12.3.4rc1" in long
    for marker_long, marker_short in (("acme-otp-pro", "otp-pro-core"), ("12.3.4rc1", "0.1"), ("[", "[")):
        assert long.index(marker_long) == short.index(marker_short), (long, short)


def test_db_current_does_not_create_a_sqlite_database(tmp_path):
    write_config(tmp_path, "sqlite:///fresh.sqlite3")
    result = run(["db", "current"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "current: empty" in result.stdout and "run `otp-pro db upgrade`" in result.stdout
    assert not (tmp_path / "fresh.sqlite3").exists()
