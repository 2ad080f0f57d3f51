"""The ``otp-pro`` command line: real processes for the entry point, click's runner for the rest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from otp_pro.cli import cli, main


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {**os.environ, **(env or {})}
    full_env.pop("OTP_PRO_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "otp_pro", *args], cwd=cwd, capture_output=True, text=True,
                          env=full_env, timeout=120, stdin=subprocess.DEVNULL)


def test_init_then_config_check_show_and_db(tmp_path):
    result = run(["init", "--site-name", "Acme"], tmp_path)
    assert result.returncode == 0, result.stderr
    config = tmp_path / "otp-pro.toml"
    assert config.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "otp-pro.sqlite3").exists()
    secret = next(line for line in config.read_text().splitlines() if line.startswith("secret_key")).split('"')[1]
    check = run(["config", "check"], tmp_path)
    assert check.returncode == 0 and "settings OK" in check.stdout
    show = run(["config", "show"], tmp_path)
    assert show.returncode == 0 and secret not in show.stdout
    assert json.loads(show.stdout)["secret_key"] == "********"
    current = run(["db", "current"], tmp_path)
    assert "up to date" in current.stdout
    again = run(["init"], tmp_path)
    assert again.returncode == 2 and "exists" in again.stderr and "Traceback" not in again.stderr


def test_db_upgrade_creates_the_schema_of_an_empty_database(tmp_path):
    (tmp_path / "otp-pro.toml").write_text(
        'secret_key = "' + "k" * 40 + '"\ndatabase_url = "sqlite:///fresh.sqlite3"\n'
    )
    before = run(["db", "current"], tmp_path)
    assert before.returncode == 0 and "current: empty" in before.stdout
    upgraded = run(["db", "upgrade"], tmp_path)
    assert upgraded.returncode == 0 and "(was empty)" in upgraded.stdout
    after = run(["db", "current"], tmp_path)
    assert "up to date" in after.stdout
    again = run(["db", "upgrade"], tmp_path)
    assert again.returncode == 0 and "was empty" not in again.stdout


def test_errors_are_one_line_without_traceback(tmp_path):
    missing = run(["config", "check"], tmp_path)
    assert missing.returncode == 2 and "no settings file" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "otp-pro.toml").write_text('secret_key = "short"\ncode_length = "six"\nmode = "sometimes"\n')
    bad = run(["config", "check"], tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    for key in ("secret_key", "code_length", "mode"):
        assert key in bad.stderr
    (tmp_path / "otp-pro.toml").write_text("secret_key = [unclosed\n")
    broken = run(["config", "show"], tmp_path)
    assert broken.returncode == 2 and "not valid TOML" in broken.stderr
    usage = run(["providers", "test"], tmp_path)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_providers_list_and_test(tmp_path):
    assert run(["init"], tmp_path).returncode == 0
    listed = run(["providers", "list", "--format", "json"], tmp_path)
    rows = {r["plugin"]: r for r in json.loads(listed.stdout)}
    assert rows["otp_pro_email"]["transports"] == ["email"] and rows["otp_pro_email"]["builtin"]
    dry = run(["providers", "test", "email", "--to", "ops@example.com", "--actor", "ops"], tmp_path)
    assert dry.returncode == 0 and "dry run via email to ops@example.com" in dry.stdout
    bad = run(["providers", "test", "email", "--to", "not-an-address"], tmp_path)
    assert bad.returncode == 1 and "not an email address" in bad.stderr
    unknown = run(["providers", "test", "fax", "--to", "x"], tmp_path)
    assert unknown.returncode == 2 and "no transport called 'fax'" in unknown.stderr


def test_demo_runs_on_an_embedded_sqlite_file(tmp_path):
    result = run(["demo", "--script", "--database", str(tmp_path / "demo.sqlite3")], tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "right code  -> ok via code" in out
    assert "same again  -> refused" in out
    assert "app code    -> ok via totp" in out
    assert "replayed    -> refused" in out
    assert "5th failure -> refused (locked" in out
    assert (tmp_path / "demo.sqlite3").exists()


def test_unexpected_error_is_reported_without_traceback(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OTP_PRO_DEBUG", raising=False)

    def explode(*_a, **_k):
        raise RuntimeError("internal detail")

    import otp_pro.demo

    monkeypatch.setattr(otp_pro.demo, "run_demo", explode)
    with pytest.raises(SystemExit) as info:
        main(["demo", "--script"])
    assert info.value.code == 70
    err = capsys.readouterr().err
    assert "unexpected RuntimeError" in err and "Traceback" not in err


def test_help_lists_commands():
    result = CliRunner().invoke(cli, ["--help"])
    for command in ("init", "db", "config", "providers", "demo"):
        assert command in result.output


def test_settings_handed_in_by_an_embedding_program_are_used_instead_of_a_file(tmp_path, monkeypatch):
    # Django's ``manage.py otp_pro`` runs this CLI with the site's settings object: no file is read.
    from otp_pro.settings import Settings

    monkeypatch.chdir(tmp_path)  # no otp-pro.toml here
    settings = Settings.from_mapping({"secret_key": "k" * 40, "database_url": f"sqlite:///{tmp_path}/e.sqlite3",
                                      "site_name": "Embedded"})
    upgraded = CliRunner().invoke(cli, ["db", "upgrade"], obj={"settings": settings})
    assert upgraded.exit_code == 0, upgraded.output
    shown = CliRunner().invoke(cli, ["config", "show"], obj={"settings": settings})
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["site_name"] == "Embedded"
    assert not (tmp_path / "otp-pro.toml").exists()


def test_main_takes_the_embedding_programs_name_and_object(tmp_path, monkeypatch, capsys):
    from otp_pro.settings import Settings

    monkeypatch.chdir(tmp_path)
    settings = Settings.from_mapping({"secret_key": "k" * 40, "database_url": f"sqlite:///{tmp_path}/m.sqlite3"})
    main(["db", "upgrade"], prog_name="manage.py otp_pro", obj={"settings": settings})
    assert "database at" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        main(["members", "show"], prog_name="manage.py otp_pro", obj={"settings": settings})
    assert exited.value.code == 2 and "manage.py otp_pro members show --help" in capsys.readouterr().err


def test_demo_without_a_demo_site_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """The site comes from the otp_pro.demo_site entry-point group (otp-pro-flask); none installed (as in the
    core's own test environment; the group is emptied here so the test holds beside otp-pro-flask too)."""
    from importlib import metadata

    import otp_pro.cli.demo as demo

    every = metadata.entry_points
    # The command imports importlib.metadata when it runs: the module's own function is what it calls.
    monkeypatch.setattr(metadata, "entry_points", lambda group: [] if group == demo.DEMO_SITE_GROUP
                        else every(group=group))
    result = CliRunner().invoke(cli, ["demo", "--port", "0"])
    assert result.exit_code == 2 and "pip install otp-pro-flask" in result.output and "--script" in result.output
    assert "Traceback" not in result.output


def test_demo_serves_the_installed_demo_site(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``otp-pro demo`` hands its options to the entry point's ``serve``, whatever distribution brings it."""
    from importlib import metadata

    import otp_pro.cli.demo as demo

    site = metadata.EntryPoint("test_site", f"{__name__}:serve_for_test", demo.DEMO_SITE_GROUP)
    monkeypatch.setattr(metadata, "entry_points", lambda group: [site])
    SERVED.clear()
    result = CliRunner().invoke(cli, ["demo", "--port", "0", "--database", str(tmp_path / "d.sqlite3")])
    assert result.exit_code == 0, result.output
    assert SERVED["port"] == 0 and SERVED["host"] == "127.0.0.1" and SERVED["database"] == str(tmp_path / "d.sqlite3")


#: What :func:`serve_for_test` was called with: a demo site's ``serve`` that only records its options.
SERVED: dict[str, object] = {}


def serve_for_test(**options: object) -> None:
    SERVED.update(options)
