"""``otp-pro members show`` lists a member's factors; ``remove-factor``, ``rename-factor``, ``default-factor``.

The listings and changes run through click's runner on SQLite and, when
OTP_PRO_TEST_POSTGRES_URL is set, on PostgreSQL (the ``backend`` fixture); the
refusals also run in a real process, where what is checked is what an operator
sees: the exit code and one line on standard error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from click.testing import CliRunner
from core_support import SECRET_KEY

from otp_pro import FactorNeedsReconfirming, Member, OtpPro, hookimpl
from otp_pro.cli import cli
from otp_pro.testing import enrol, outbox_code

ANN = Member("42", roles=["editor"], email="ann@example.com", name="Ann")
BOSS = Member("7", roles=["admin"], email="boss@example.com", name="Boss")


class Directory:
    """A member_lookup plugin whose members a test can change (a new address on the profile)."""

    __name__ = "test_factor_directory"

    def __init__(self) -> None:
        self.people = {"42": ANN, "7": BOSS}

    @hookimpl
    def otp_pro_member_lookup(self, member_id: str) -> Member | None:
        return self.people.get(member_id)


def write_config(folder: Path, url: str) -> Path:
    path = folder / "otp-pro.toml"
    path.write_text(
        f'secret_key = "{SECRET_KEY}"\ndatabase_url = "{url}"\n'
        'channels = ["outbox:code", "totp"]\ndefault_channel = "outbox:code"\n'
        'resend_cooldown_seconds = 0\n\n[roles.admin]\nrequirement = "required"\n'
    )
    return path


@pytest.fixture
def site(backend: str, tmp_path: Path) -> Iterator[tuple[OtpPro, Path, Directory]]:
    """An OtpPro with the Directory plugin on the test's database, and a settings file for the same database."""
    config = write_config(tmp_path, backend)
    directory = Directory()
    otp = OtpPro.from_file(str(config), plugins=[directory])
    yield otp, config, directory
    otp.close()


def invoke(otp: OtpPro, config: Path, *args: str):
    return CliRunner().invoke(cli, ["--config", str(config), *args], obj={"otp": otp})


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OTP_PRO_CONFIG", "OTP_PRO_DEBUG")}
    return subprocess.run([sys.executable, "-m", "otp_pro", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=120, stdin=subprocess.DEVNULL)


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("otp-pro: ")
    return lines[0]


def add_app(otp: OtpPro, member: Member, label: str | None = None) -> None:
    info = otp.begin_setup(member, "totp", label=label)
    assert info.secret is not None
    otp.complete_setup(member, pyotp.TOTP(info.secret).at(otp.clock()))


def shown(otp: OtpPro, config: Path, member_id: str) -> dict:
    result = invoke(otp, config, "members", "show", member_id, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


# ------------------------------------------------------------------ members show


def test_show_lists_every_factor_in_json_and_in_the_table(site):
    otp, config, _directory = site
    enrol(otp, ANN, "outbox:code")
    add_app(otp, ANN, label="Phone app")
    otp.send_challenge(ANN)
    assert otp.verify(ANN, outbox_code(otp)).ok

    data = shown(otp, config, "42")
    mail, app = data["factors"]
    assert mail["kind"] == "outbox:code" and mail["default"] is True and app["default"] is False
    assert mail["recipient_hint"] and "ann@example.com" not in json.dumps(data["factors"])  # masked, never whole
    assert mail["last_used_at"] is not None  # the code just used (an app's last use is its setup's step)
    assert app["kind"] == "totp" and app["label"] == "Phone app" and app["own_label"] == "Phone app"
    assert mail["own_label"] is None and mail["label"]  # the channel's own label
    for factor in (mail, app):
        assert factor["created_at"] and factor["needs_reconfirming"] is False and factor["usable"] is True
        assert factor["reason"] is None and isinstance(factor["id"], int)
    assert [f["id"] for f in data["factors"]] == [f.id for f in otp.factors(ANN)]
    assert data["enrolled"] and data["channel"] == "outbox:code"

    table = invoke(otp, config, "members", "show", "42").output
    assert "factors       2" in table
    mail_line = next(line for line in table.splitlines() if line.startswith(f"  #{mail['id']} "))
    app_line = next(line for line in table.splitlines() if line.startswith(f"  #{app['id']} "))
    assert "outbox:code" in mail_line and "default" in mail_line and mail["recipient_hint"] in mail_line
    assert "last used never" not in mail_line
    assert '"Phone app"' in app_line and "default" not in app_line and f"added {app['created_at']}" in app_line


def test_show_says_which_factor_needs_reconfirming(site):
    otp, config, directory = site
    enrol(otp, ANN, "outbox:code")
    add_app(otp, ANN)
    directory.people["42"] = Member("42", roles=["editor"], email="someone@example.net", name="Ann")
    moved = directory.people["42"]
    with pytest.raises(FactorNeedsReconfirming):
        otp.send_challenge(moved, channel="outbox:code")

    data = shown(otp, config, "42")
    mail, app = data["factors"]
    assert mail["needs_reconfirming"] is True and mail["usable"] is False and "another address" in mail["reason"]
    assert app["needs_reconfirming"] is False and app["usable"] is True
    table = invoke(otp, config, "members", "show", "42").output
    assert "NEEDS RE-CONFIRMING" in next(line for line in table.splitlines() if f"#{mail['id']} " in line)
    assert "NEEDS RE-CONFIRMING" not in next(line for line in table.splitlines() if f"#{app['id']} " in line)


def test_show_of_a_member_without_factors_lists_none(site):
    otp, config, _directory = site
    data = shown(otp, config, "42")
    assert data["factors"] == [] and data["enrolled"] is False
    assert "factors       0" in invoke(otp, config, "members", "show", "42").output


def test_a_label_cannot_write_to_the_terminal(site):
    otp, config, _directory = site
    enrol(otp, ANN, "outbox:code")
    [factor] = otp.factors(ANN)
    otp.rename_factor(ANN, factor.id, "work\u202e\x7f")
    table = invoke(otp, config, "members", "show", "42").output
    line = next(line for line in table.splitlines() if f"#{factor.id} " in line)
    assert "\u202e" not in line and "\x7f" not in line and "\\u202e" in line


# ------------------------------------------------------------------ remove-factor


def test_remove_factor_removes_one_and_audits_the_operator(site):
    otp, config, _directory = site
    enrol(otp, ANN, "outbox:code")
    add_app(otp, ANN)
    otp.trust_device(ANN, label="Laptop")
    mail, app = otp.factors(ANN)

    removed = invoke(otp, config, "members", "remove-factor", "42", str(mail.id), "--actor", "ops@desk")
    assert removed.exit_code == 0, removed.output
    assert f"removed factor #{mail.id} (outbox:code) of 42" in removed.output and "1 factor(s) left" in removed.output
    assert [f.id for f in otp.factors(ANN)] == [app.id]
    assert otp.factors(ANN)[0].is_default  # the default went with the removed factor
    assert otp.trusted_devices(ANN) == []
    event = otp.events(ANN, kinds=["factor_removed"])[0]
    assert event.actor == "ops@desk" and event.details["factor_id"] == mail.id
    assert otp.status(ANN).enrolled and otp.status(ANN).backup_codes_remaining == 10

    # The very last factor of an optional member: they are no longer enrolled, backup codes gone.
    last = invoke(otp, config, "members", "remove-factor", "42", f"#{app.id}")
    assert last.exit_code == 0, last.output
    assert "no factor left" in last.output
    status = otp.status(ANN)
    assert not status.enrolled and status.factors == () and status.backup_codes_remaining == 0
    assert otp.events(ANN, kinds=["factor_removed"])[0].actor  # the OS user by default


def test_remove_factor_refuses_a_required_members_last_factor_without_force(site):
    otp, config, _directory = site
    enrol(otp, BOSS, "outbox:code")
    [factor] = otp.factors(BOSS)
    refused = invoke(otp, config, "members", "remove-factor", "7", str(factor.id))
    assert refused.exit_code == 2 and "--force" in refused.output and "add another factor first" in refused.output
    assert [f.id for f in otp.factors(BOSS)] == [factor.id]
    assert otp.events(BOSS, kinds=["factor_removed"]) == []

    # With a second factor the first can go without --force.
    add_app(otp, BOSS)
    assert invoke(otp, config, "members", "remove-factor", "7", str(factor.id)).exit_code == 0
    [app] = otp.factors(BOSS)
    forced = invoke(otp, config, "members", "remove-factor", "7", str(app.id), "--force", "--actor", "ops")
    assert forced.exit_code == 0, forced.output
    assert otp.factors(BOSS) == [] and not otp.status(BOSS).enrolled


def test_remove_factor_of_another_member_or_an_unknown_id_is_no_such_factor(site):
    otp, config, _directory = site
    enrol(otp, ANN, "outbox:code")
    enrol(otp, BOSS, "outbox:code")
    [bosses] = otp.factors(BOSS)
    for member_id, factor_id in (("42", str(bosses.id)), ("42", "999999"), ("99", "1")):
        result = invoke(otp, config, "members", "remove-factor", member_id, factor_id)
        assert result.exit_code == 1, result.output
        assert f"has no factor #{factor_id}" in result.output and "members show" in result.output
    assert len(otp.factors(BOSS)) == 1 and len(otp.factors(ANN)) == 1


# ------------------------------------------------------------------ rename-factor and default-factor


def test_rename_and_default_factor(site):
    otp, config, _directory = site
    enrol(otp, ANN, "outbox:code")
    add_app(otp, ANN)
    mail, app = otp.factors(ANN)

    renamed = invoke(otp, config, "members", "rename-factor", "42", str(app.id), "  Work   phone ", "--actor", "ops")
    assert renamed.exit_code == 0, renamed.output
    assert 'is now labelled "Work phone"' in renamed.output
    assert otp.factors(ANN)[1].own_label == "Work phone"
    assert otp.events(ANN, kinds=["factor_renamed"])[0].actor == "ops"
    cleared = invoke(otp, config, "members", "rename-factor", "42", str(app.id), "")
    assert cleared.exit_code == 0 and otp.factors(ANN)[1].own_label is None
    too_long = invoke(otp, config, "members", "rename-factor", "42", str(app.id), "x" * 101)
    assert too_long.exit_code == 2 and "bad label" in too_long.output and "100 characters" in too_long.output

    made = invoke(otp, config, "members", "default-factor", "42", str(app.id), "--actor", "ops")
    assert made.exit_code == 0, made.output
    assert f"factor #{app.id} (totp) is now the default of 42" in made.output
    assert [f.is_default for f in otp.factors(ANN)] == [False, True]
    assert otp.status(ANN).channel == "totp"
    assert otp.events(ANN, kinds=["factor_default_changed"])[0].actor == "ops"
    assert invoke(otp, config, "members", "default-factor", "7", str(mail.id)).exit_code == 1


# ------------------------------------------------------------------ in a real process


def test_factor_commands_refuse_in_one_line_in_a_real_process(tmp_path, sqlite_url):
    config = write_config(tmp_path, sqlite_url)
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    with OtpPro.from_file(str(config)) as otp:
        bare = Member("99", email="zed@example.com")  # the site's own login knows the address
        enrol(otp, bare, "outbox:code")
        [factor] = otp.factors(bare)

    # Without a member lookup the factors are listed, but whether they count is unknown, not guessed.
    listed = run(["members", "show", "99", "--json"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    [entry] = json.loads(listed.stdout)["factors"]
    assert entry["id"] == factor.id and entry["kind"] == "outbox:code" and entry["default"] is True
    assert entry["needs_reconfirming"] is None and entry["usable"] is None and entry["reason"] is None
    table = run(["members", "show", "99"], tmp_path).stdout
    assert f"#{factor.id} outbox:code" in table and "RE-CONFIRMING" not in table and "not usable" not in table

    # Roles unknown: the policy cannot be checked, so removing needs --force (as disabling does).
    refused = one_line_error(run(["members", "remove-factor", "99", str(factor.id)], tmp_path), code=2)
    assert "--force" in refused and "member_lookup" in refused
    for args in (["members", "remove-factor", "99", "12345"], ["members", "default-factor", "99", "12345"],
                 ["members", "rename-factor", "99", "12345", "Work"]):
        assert "has no factor #12345" in one_line_error(run(args, tmp_path), code=1)
    for bad in ("abc", "0", "\u0664\u0662", "99999999999999999999", "1.5"):
        line = one_line_error(run(["members", "remove-factor", "99", "--", bad], tmp_path), code=2)
        assert "is not a factor id" in line
    assert "bad member id" in one_line_error(run(["members", "remove-factor", "a\tb", "1"], tmp_path), code=2)
    assert "bad label" in one_line_error(
        run(["members", "rename-factor", "99", str(factor.id), "x" * 101], tmp_path), code=2)
    missing = one_line_error(run(["members", "remove-factor", "99"], tmp_path), code=2)
    assert "FACTOR_ID" in missing

    forced = run(["members", "remove-factor", "99", str(factor.id), "--force", "--actor", "ops"], tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert "no factor left" in forced.stdout and "cannot be told of the change" in forced.stderr
    again = run(["members", "show", "99", "--json"], tmp_path)
    assert json.loads(again.stdout)["factors"] == []


# ------------------------------------------------------------------ stats


@pytest.mark.parametrize("roles", ["--roles", "--no-roles"])
def test_stats_count_a_member_with_two_factors_once_and_under_each_kind(site, roles):
    otp, config, _directory = site
    enrol(otp, ANN, "outbox:code")
    add_app(otp, ANN)
    enrol(otp, BOSS, "outbox:code")
    result = invoke(otp, config, "stats", "--json", roles)
    assert result.exit_code == 0, result.output
    everyone = next(a for a in json.loads(result.output)["adoption"] if a["role"] == "*")
    assert everyone["enrolled"] == 2 and everyone["channels"] == {"outbox:code": 2, "totp": 1}
    table = invoke(otp, config, "stats", roles).output
    assert "outbox:code=2 totp=1" in table
