"""``otp-pro stats``, ``otp-pro templates``, plugin commands, colours, and every error path as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from core_support import SECRET_KEY

from otp_pro import DeliveryError, Member, OtpPro, hookimpl
from otp_pro.cli import cli, sample_templates
from otp_pro.stats import collect
from otp_pro.testing import enrol, free_port, outbox_code

ANN = Member("42", roles=["editor"], email="ann@example.com", name="Ann")
EVE = Member("13", roles=["editor"], email="eve@example.com", name="Eve")
BOSS = Member("7", roles=["admin"], email="boss@example.com", name="Boss")
CAROL = Member("9", roles=["admin"], email="carol@example.com", name="Carol")
DAN = Member("11", email="dan@example.com", name="Dan")  # not known to the Directory plugin
SCRIPT = Path(sys.executable).with_name("otp-pro")  # the installed console script


class Directory:
    """A member_lookup plugin that knows everyone but Dan."""

    __name__ = "test_directory"

    @hookimpl
    def otp_pro_member_lookup(self, member_id: str) -> Member | None:
        return {m.id: m for m in (ANN, EVE, BOSS, CAROL)}.get(member_id)


def write_config(folder: Path, url: str, smtp_port: int | None = None) -> Path:
    """Settings for ``url``; the email transport points at ``smtp_port`` on loopback (closed by default)."""
    path = folder / "otp-pro.toml"
    path.write_text(
        f'secret_key = "{SECRET_KEY}"\ndatabase_url = "{url}"\n'
        'channels = ["outbox:code", "totp", "email:code"]\ndefault_channel = "outbox:code"\nmax_attempts = 3\n'
        'resend_cooldown_seconds = 0\n\n[roles.admin]\nrequirement = "required"\ngrace_days = 7\n\n'
        f'[providers.email]\nsmtp_host = "127.0.0.1"\nsmtp_port = {smtp_port or free_port()}\n'
        'smtp_timeout_seconds = 5\n'
        'from_address = "otp@example.com"\n'
    )
    return path


@pytest.fixture
def site(backend: str, tmp_path: Path, clock) -> Iterator[tuple[OtpPro, Path]]:
    config = write_config(tmp_path, backend)
    otp = OtpPro.from_file(str(config), plugins=[Directory()], clock=clock)
    yield otp, config
    otp.close()


def invoke(otp: OtpPro | None, config: Path, *args: str, color: bool = False, obj: dict | None = None):
    obj = {**({"otp": otp} if otp is not None else {}), **(obj or {})}
    return CliRunner().invoke(cli, ["--config", str(config), *args], obj=obj, color=color)


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed ``otp-pro`` script in a real process, standard streams piped (not a terminal)."""
    base = {k: v for k, v in os.environ.items() if k not in ("OTP_PRO_CONFIG", "OTP_PRO_DEBUG")}
    return subprocess.run([str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, env={**base, **env},
                          timeout=120, stdin=subprocess.DEVNULL)


def one_line_error(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "\x1b[" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("otp-pro: ")
    return lines[0]


# -------------------------------------------------------------------- stats


def make_history(otp: OtpPro, clock) -> None:
    """Two days of real activity through the public API (see the counts asserted below)."""
    # Day 1: Ann sets up and signs in with a code; Eve sets up and is disabled; Dan's email cannot be
    # delivered (nothing listens on the SMTP port); Boss is seen while required (grace starts).
    enrol(otp, ANN)  # challenge_sent 1
    otp.send_challenge(ANN)  # challenge_sent 2
    assert otp.verify(ANN, outbox_code(otp)).ok  # verify_ok outbox:code
    enrol(otp, EVE)  # challenge_sent 3
    otp.disable(EVE, actor="ops")
    with pytest.raises(DeliveryError):
        otp.begin_setup(DAN, "email:code")  # delivery_failed email / TransientDeliveryError / connection_refused
    assert otp.status(BOSS).in_grace
    clock.advance(days=1)
    # Day 2: Ann gets a code and types three wrong ones (locked out); Carol sets up TOTP, signs in with a backup code.
    otp.send_challenge(ANN)  # challenge_sent 4
    for _ in range(3):
        assert not otp.verify(ANN, "000000").ok  # verify_failed x3, then locked_out
    backup = enrol(otp, CAROL, "totp")
    assert otp.verify(CAROL, backup[0]).ok  # backup_code_used, verify_ok totp


def test_stats_counts_real_activity(site, clock):
    otp, config = site
    make_history(otp, clock)
    day1, day2 = (clock() - timedelta(days=1)).date().isoformat(), clock().date().isoformat()

    stats = collect(otp, timedelta(days=2))
    assert stats.roles_known
    adoption = {a.role: a.as_dict() for a in stats.adoption}
    assert adoption == {
        "*": {"role": "*", "subjects": 5, "enrolled": 2, "required_not_enrolled": 1, "in_grace": 1, "disabled": 1,
              "channels": {"outbox:code": 1, "totp": 1}},
        "admin": {"role": "admin", "subjects": 2, "enrolled": 1, "required_not_enrolled": 1, "in_grace": 1,
                  "disabled": 0, "channels": {"totp": 1}},
        "editor": {"role": "editor", "subjects": 2, "enrolled": 1, "required_not_enrolled": 0, "in_grace": 0,
                   "disabled": 1, "channels": {"outbox:code": 1}},
        "(unknown)": {"role": "(unknown)", "subjects": 1, "enrolled": 0, "required_not_enrolled": 0, "in_grace": 0,
                      "disabled": 0, "channels": {}},
    }
    assert [c.as_dict() for c in stats.channels] == [
        {"channel": "outbox:code", "challenges_sent": 4, "verify_ok": 1, "verify_failed": 3, "success_rate": 0.25,
         "failure_rate": 0.75},
        {"channel": "totp", "challenges_sent": 0, "verify_ok": 1, "verify_failed": 0, "success_rate": 1.0,
         "failure_rate": 0.0},
    ]
    assert stats.totals == {"challenges_sent": 4, "verify_ok": 2, "verify_failed": 3, "lockouts": 1,
                            "backup_codes_used": 1, "delivery_failures": 1}
    assert [f.as_dict() for f in stats.delivery_failures] == [
        {"provider": "email", "error": "TransientDeliveryError", "provider_code": "connection_refused", "count": 1}]
    zero = {"challenges_sent": 0, "verify_ok": 0, "verify_failed": 0, "lockouts": 0, "backup_codes_used": 0,
            "delivery_failures": 0}
    day0 = (clock() - timedelta(days=2)).date().isoformat()
    assert stats.daily == [
        {"day": day0, **zero},
        {"day": day1, **zero, "challenges_sent": 3, "verify_ok": 1, "delivery_failures": 1},
        {"day": day2, **zero, "challenges_sent": 1, "verify_ok": 1, "verify_failed": 3, "lockouts": 1,
         "backup_codes_used": 1},
    ]

    # Without roles: one row from what the core recorded; "required" is Boss (recorded as required),
    # and the site-wide grace_days (0) says his grace is over.
    bare = collect(otp, timedelta(days=2), roles=False)
    assert not bare.roles_known
    assert [a.as_dict() for a in bare.adoption] == [
        {"role": "*", "subjects": 5, "enrolled": 2, "required_not_enrolled": 1, "in_grace": 0, "disabled": 1,
         "channels": {"outbox:code": 1, "totp": 1}}]

    # The period: only day 2 since 12 hours ago.
    recent = collect(otp, clock() - timedelta(hours=12))
    assert recent.totals["challenges_sent"] == 1 and recent.totals["delivery_failures"] == 0
    assert [d["day"] for d in recent.daily] == [day2]

    # The command: --json and --format json are the same document; the table carries the same figures.
    as_json = invoke(otp, config, "stats", "--since", "2d", "--json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output) == stats.as_dict()
    assert json.loads(invoke(otp, config, "stats", "--since", "2d", "--format", "json").output) == stats.as_dict()
    assert json.loads(invoke(otp, config, "stats", "--no-roles", "--json").output)["roles_known"] is False
    table = invoke(otp, config, "stats", "--since", "2d")
    assert table.exit_code == 0, table.output
    out = table.output
    assert "Adoption by role" in out and "\x1b[" not in out
    assert [line.split()[:7] for line in out.splitlines() if line.startswith("admin ")] == [
        ["admin", "2", "1", "1", "1", "0", "totp=1"]]
    assert any(line.split() == ["outbox:code", "4", "1", "3", "25.0%", "75.0%"] for line in out.splitlines())
    assert any(line.split() == ["email", "TransientDeliveryError", "connection_refused", "1"]
               for line in out.splitlines())
    assert any(line.split() == [day2, "1", "1", "3", "1", "1", "0"] for line in out.splitlines())
    assert "lockouts 1   backup codes used 1   delivery failures 1" in out
    assert "Per day (2 of 3 days had activity" in out

    # A past period: --until ends it (an age or a date), checked against --since and now.
    past = invoke(otp, config, "stats", "--since", "2d", "--until", "12h", "--json")
    assert past.exit_code == 0, past.output
    expected = collect(otp, clock() - timedelta(days=2), until=clock() - timedelta(hours=12))
    assert json.loads(past.output) == expected.as_dict()
    assert expected.totals["challenges_sent"] == stats.totals["challenges_sent"] - 1  # the last 12 h's send is out
    backwards = invoke(otp, config, "stats", "--since", "12h", "--until", "2d")
    assert backwards.exit_code != 0 and "--since 12h is after the end of the period (--until 2d)" in backwards.output
    ahead = invoke(otp, config, "stats", "--until", "2999-01-01")
    assert ahead.exit_code != 0 and "--until 2999-01-01 is in the future" in ahead.output
    assert "neither an ISO date" in invoke(otp, config, "stats", "--until", "soon").output


def test_stats_grace_ends(site, clock):
    otp, _config = site
    assert otp.status(BOSS).in_grace
    assert collect(otp).adoption[0].in_grace == 1
    clock.advance(days=8)
    first = collect(otp).adoption[0]
    assert (first.required_not_enrolled, first.in_grace) == (1, 0)


# ---------------------------------------------------------------- templates


def test_templates_preview_renders_through_the_hooks(site, tmp_path):
    otp, config = site
    subject = invoke(otp, config, "templates", "preview", "setup", "--format", "subject")
    assert subject.exit_code == 0, subject.output
    assert subject.output.strip().endswith("your verification code")
    text = invoke(otp, config, "templates", "preview", "code", "--var", "member_name=Bob")
    assert "492817" in text.output and "Bob" in text.output
    link = invoke(otp, config, "templates", "preview", "magic_link")
    assert "https://example.com/otp/link?token=SAMPLE-TOKEN" in link.output
    notice = invoke(otp, config, "templates", "preview", "notification", "-o", str(tmp_path / "n.txt"))
    assert notice.exit_code == 0 and "Two-step verification was set up" in (tmp_path / "n.txt").read_text()
    # Whatever renders HTML (otp-pro-html-email when installed) is what is shown; plain text only says so.
    html = invoke(otp, config, "templates", "preview", "code", "--format", "html")
    if any(p.name == "otp_pro_html_email" and p.enabled and not p.error for p in otp.plugins()):
        assert html.exit_code == 0 and "<html" in html.output and "492817" in html.output
    else:
        assert html.exit_code == 1 and "has no HTML version" in html.output
    bad = invoke(otp, config, "templates", "preview", "code", "--channel", "fax:code")
    assert bad.exit_code == 2 and "no transport for channel 'fax:code'" in bad.output
    assert not list(otp.events(kinds=["challenge_sent"]))  # nothing was sent


class Branded:
    """A templating plugin that renders HTML for every email."""

    __name__ = "test_branding"

    @hookimpl
    def otp_pro_render_message(self, transport, kind, variables):
        from otp_pro import Message

        if transport.message_format != "email":
            return None
        return Message(recipient=str(variables["recipient"]), subject=f"[Acme] {kind}", text="text body",
                       html=f"<p>{variables['payload']} for {variables['member_name']}</p>", kind=kind)


def test_templates_preview_shows_the_templating_plugin_html(backend, tmp_path):
    config = write_config(tmp_path, backend)
    with OtpPro.from_file(str(config), plugins=[Branded()]) as otp:
        html = invoke(otp, config, "templates", "preview", "code", "--format", "html")
        assert html.output.strip() == "<p>492817 for Ann Example</p>"
        assert invoke(otp, config, "templates", "preview", "test", "--format", "subject").output == "[Acme] test\n"


def package_files() -> dict[str, bytes]:
    folder = Path(str(sample_templates()))
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"} if folder.is_dir() else {}
    assert files, f"no sample web templates in the package folder {folder}: the web templates are not shipped"
    return files


def test_templates_install_copies_every_sample_file(tmp_path):
    expected = package_files()
    target = tmp_path / "site-templates"
    result = run(["templates", "install", str(target)], tmp_path)
    assert result.returncode == 0, result.stderr
    written = {p.relative_to(target).as_posix(): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert written == expected  # every file, byte for byte, nothing else
    assert sorted(line.removeprefix("wrote ") for line in result.stdout.splitlines()) == sorted(
        str(target / name) for name in expected)
    # A second run refuses to overwrite, writes nothing, and --force does overwrite.
    first = sorted(expected)[0]
    (target / first).write_bytes(b"edited by the site")
    again = one_line_error(run(["templates", "install", str(target)], tmp_path))
    assert f"{len(expected)} of the {len(expected)} files already exist" in again and "--force" in again
    assert (target / first).read_bytes() == b"edited by the site"
    forced = run(["templates", "install", str(target), "--force"], tmp_path)
    assert forced.returncode == 0 and (target / first).read_bytes() == expected[first]
    (tmp_path / "a-file").write_text("x")
    assert "is not a folder" in one_line_error(run(["templates", "install", str(tmp_path / "a-file")], tmp_path))


# ----------------------------------------------------------- colours, --json


def test_colours_only_when_asked_or_on_a_terminal(site):
    otp, config = site
    enrol(otp, ANN)
    assert not otp.verify(ANN, "000000").ok
    for args in (["stats"], ["audit", "list"], ["providers", "list"]):
        plain = invoke(otp, config, *args)
        coloured = invoke(otp, config, *args, color=True)
        assert plain.exit_code == coloured.exit_code == 0, (plain.output, coloured.output)
        assert "\x1b[" not in plain.output and "\x1b[" in coloured.output, args
    assert "\x1b[31mfailed" in invoke(otp, config, "audit", "list", color=True).output
    piped = run(["--config", str(config), "stats"], config.parent)
    assert piped.returncode == 0 and "\x1b[" not in piped.stdout and "Adoption" in piped.stdout


def test_json_on_every_listing_command(site):
    otp, config = site
    enrol(otp, ANN)
    for args in (["providers", "list"], ["members", "show", "42"], ["audit", "list"], ["stats"]):
        result = invoke(otp, config, *args, "--json")
        assert result.exit_code == 0, (args, result.output)
        json.loads(result.output)
    assert invoke(otp, config, "providers", "list", "--json").output == invoke(
        otp, config, "providers", "list", "--format", "json").output


# -------------------------------------------------------- commands from plugins


class Greeter:
    """Adds ``otp-pro greet`` and tries to take the core's ``db``."""

    __name__ = "acme_greeter"

    @hookimpl
    def otp_pro_cli_commands(self, register):
        import click

        @click.command("greet")
        @click.argument("name")
        def greet(name: str) -> None:
            click.echo(f"hello {name} (config {click.get_current_context().find_root().obj['config']})")

        register(greet)
        register(click.Command("db", callback=lambda: click.echo("hijacked")))


class Broken:
    __name__ = "acme_broken"

    @hookimpl
    def otp_pro_cli_commands(self, register):
        raise RuntimeError("no commands today")


def test_the_instance_a_command_builds_is_closed_when_it_ends(backend, tmp_path):
    config = write_config(tmp_path, backend)
    # Commands other than init and db upgrade never create the database.
    assert CliRunner().invoke(cli, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    obj: dict = {}  # the command's own context object, to look at what it built
    result = CliRunner().invoke(cli, ["--config", str(config), "stats", "--json"], obj=obj)
    assert result.exit_code == 0, result.output
    built = obj["otp"]
    # Closed: its pool was disposed (a new, empty one) and nothing kept (SQLite keeps idle connections
    # between operations), not left holding the command's connection.
    assert built.db.engine.pool.checkedin() == 0
    assert built.db.connections_kept == 0
    # An instance the caller passed in is the caller's: still open afterwards.
    with OtpPro.from_file(str(config)) as mine:
        assert invoke(mine, config, "stats", "--json").exit_code == 0
        assert mine.db.engine.pool.checkedin() + mine.db.connections_kept >= 1


def test_plugin_commands_without_building_an_instance(tmp_path, sqlite_url, monkeypatch):
    config = write_config(tmp_path, sqlite_url)

    def refuse(*_a, **_k):
        raise AssertionError("discovering commands must not build an OtpPro")

    monkeypatch.setattr(OtpPro, "__init__", refuse)
    plugins = {"plugins": [Greeter(), Broken()]}
    greeted = invoke(None, config, "greet", "Ann", obj=plugins)
    assert greeted.exit_code == 0, greeted.output
    assert f"hello Ann (config {config})" in greeted.output
    warnings = [line for line in greeted.output.splitlines() if "warning" in line]
    assert warnings == ["otp-pro: warning: plugin acme_greeter: command 'db' refused: it is a core otp-pro command",
                        "otp-pro: warning: plugin acme_broken failed to add commands: RuntimeError: no commands today"]
    helped = invoke(None, config, "--help", obj=plugins)
    assert "greet" in helped.output and helped.exit_code == 0
    # Core commands never look for plugin commands.
    assert "warning" not in invoke(None, config, "db", "--help", obj=plugins).output
    monkeypatch.setenv("OTP_PRO_DISABLE_PLUGINS", "acme_greeter")
    missing = invoke(None, config, "greet", "Ann", obj=plugins)
    assert missing.exit_code == 2 and "No such command 'greet'" in missing.output


def test_help_with_a_broken_settings_file_and_no_database(tmp_path):
    (tmp_path / "otp-pro.toml").write_text('database_url = "sqlite:///never.sqlite3"\ndisable_plugins = [\n')
    helped = run(["--help"], tmp_path)
    assert helped.returncode == 0 and "stats" in helped.stdout and "templates" in helped.stdout
    assert not (tmp_path / "never.sqlite3").exists()


# ------------------------------------------------------ errors, as processes


def test_every_error_path_is_one_line(backend, tmp_path, sqlite_url):
    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (["members", "show", "42"], ["stats"], ["templates", "preview", "code"]):
        assert "no settings file at otp-pro.toml" in one_line_error(run(args, empty))
    config = write_config(tmp_path, backend)
    c = ["--config", str(config)]
    assert run([*c, "db", "upgrade"], tmp_path).returncode == 0
    assert "bad member id" in one_line_error(run([*c, "members", "show", "a\tb"], tmp_path))
    assert "bad member id" in one_line_error(run([*c, "members", "reset", "x" * 300], tmp_path))
    assert "no transport called 'fax'" in one_line_error(run([*c, "providers", "test", "fax", "--to", "x"], tmp_path))
    unreachable = run([*c, "providers", "test", "email", "--to", "x@example.com", "--send"], tmp_path)
    assert "refused the connection" in one_line_error(unreachable)
    assert "neither an ISO date" in one_line_error(run([*c, "stats", "--since", "yesterday"], tmp_path))
    assert "'--format'" in one_line_error(run([*c, "stats", "--format", "xml"], tmp_path))
    assert "'KIND'" in one_line_error(run([*c, "templates", "preview", "fax"], tmp_path))
    assert "No such command 'statz'" in one_line_error(run([*c, "statz"], tmp_path))
    # Broken settings files.
    bad = tmp_path / "bad.toml"
    bad.write_text("secret_key = [unclosed\n")
    assert "not valid TOML" in one_line_error(run(["--config", str(bad), "stats"], tmp_path))
    for url, words in (("postgresql+psycopg://postgres@127.0.0.1:1/none", "Connection refused"),
                       ("nosuchdb://x", "runs on SQLite or PostgreSQL"),
                       ("sqlite:////no/such/folder/x.sqlite3", "does not exist"),
                       ("not a url at all", "database_url")):
        bad.write_text(f'secret_key = "{SECRET_KEY}"\ndatabase_url = "{url}"\n')
        for args in (["stats"], ["db", "current"], ["members", "show", "42"]):
            assert words in one_line_error(run(["--config", str(bad), *args], tmp_path)), (url, args)


def test_a_database_that_fails_mid_command_is_one_line_and_exit_2(tmp_path):
    """A StorageError (here a table gone from under the command) reads like any other database refusal."""
    import sqlite3

    database = tmp_path / "broken.sqlite3"
    config = write_config(tmp_path, f"sqlite:///{database}")
    assert run(["--config", str(config), "db", "upgrade"], tmp_path).returncode == 0
    with sqlite3.connect(database) as db:
        db.execute("DROP TABLE otp_audit_events")
    line = one_line_error(run(["--config", str(config), "audit", "list"], tmp_path))
    assert line.startswith("otp-pro: cannot use the database: SQLite error")
    assert "SELECT" not in line and "otp_audit_events" not in line
