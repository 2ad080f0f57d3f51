"""Random arguments for the ``otp-pro`` commands: an exit code of 0, 1 or 2, one clean message, no state change.

Hypothesis builds argument lists for ``members show/disable/reset/unlock`` (member
ids of every shape), ``members remove-factor/rename-factor/default-factor`` (odd
factor ids and labels), ``audit list/export`` (odd ``--since``, ``--until``,
``--format``, ``--kind``, ``--limit``, ``--output``), ``audit prune --older-than``, ``stats --since``, ``config check``
with odd ``--config`` paths and ``providers test`` with odd transport names. Each
runs through the real entry point, :func:`otp_pro.cli.main` (the one the
``otp-pro`` script calls), inside click's ``CliRunner`` isolation, and a few fixed
ones through the installed script in a real process. For every run:

* the exit code is 0, 1 or 2 (never 70, "unexpected", nor another number);
* no traceback, and a refusal is one line on standard error starting ``otp-pro:`` (after any warnings);
* a refused command changes nothing in the database (every table compared).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from core_support import SECRET_KEY
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select

from otp_pro import Member, OtpPro
from otp_pro.cli import main
from otp_pro.storage.schema import metadata
from otp_pro.testing import enrol

SCRIPT = Path(sys.executable).with_name("otp-pro")
CLI = settings(max_examples=int(os.environ.get("OTP_PRO_CLI_EXAMPLES", "25")), deadline=None, derandomize=True,
               database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A settings file on a SQLite database with one enrolled, locked member and a trusted device."""
    folder = tmp_path_factory.mktemp("cli-props")
    url = f"sqlite:///{folder}/otp.sqlite3"
    config = folder / "otp-pro.toml"
    config.write_text(
        f'secret_key = "{SECRET_KEY}"\ndatabase_url = "{url}"\n'
        'channels = ["outbox:code", "totp"]\ndefault_channel = "outbox:code"\nmax_attempts = 3\n'
        'resend_cooldown_seconds = 0\nbackup_code_count = 2\n\n[roles.admin]\nrequirement = "required"\n',
        encoding="utf-8")
    with OtpPro.from_file(str(config)) as otp:
        ann = Member("42", email="ann@example.com")
        enrol(otp, ann)
        otp.trust_device(ann, label="Laptop")
        for _ in range(3):
            otp.verify(ann, "000000")
    yield config


def snapshot(config: Path) -> dict[str, list[Any]]:
    """Every row of every otp-pro table."""
    url = next(line.split('"')[1] for line in config.read_text().splitlines() if line.startswith("database_url"))
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t.name: [tuple(r) for r in conn.execute(select(t))] for t in metadata.sorted_tables}
    finally:
        engine.dispose()


def run_main(args: list[str]) -> tuple[int, str, str]:
    """``otp_pro.cli.main(args)`` with captured standard streams: (exit code, stdout, stderr)."""
    runner = CliRunner()
    env = {"OTP_PRO_CONFIG": None, "OTP_PRO_DEBUG": None, "COLUMNS": "120"}
    with runner.isolation(env=env) as streams:
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = streams[0].getvalue(), streams[1].getvalue()
    return code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def check(config: Path, args: list[str], *, changes: bool = False) -> tuple[int, str, str]:
    """Run ``args``; the exit-code and message properties; no change unless accepted and ``changes``."""
    before = snapshot(config)
    code, out, err = run_main(["--config", str(config), *args])
    assert code in (0, 1, 2), (args, code, out, err)
    assert "Traceback" not in out + err, (args, out, err)
    assert "OTP_PRO_DEBUG" not in err, (args, err)  # main()'s answer to an unexpected exception
    if code != 0:
        lines = [line for line in err.splitlines() if not line.startswith(("otp-pro: warning:", "warning: "))]
        assert len(lines) == 1 and lines[0].startswith("otp-pro: "), (args, err)
    if code != 0 or not changes:
        assert snapshot(config) == before, (args, code, err)
    return code, out, err


#: Text of every shape: control characters, separators, other scripts, option-looking, long.
odd_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12),
    st.sampled_from(["", " ", "-", "--", "-x", "--json", "42", " 42", "42\n", "a\tb", "\u202e42", "x" * 300,
                     "../../etc/passwd", "%s%n", "'; DROP TABLE otp_members; --", "\ud7ff",
                     "\u0664\u0662", "\uff14\uff12"]),  # 42 in Arabic-Indic and full-width digits
    st.text(min_size=200, max_size=2000),
)
#: What an operator might type where a date or an age goes.
odd_when = st.one_of(
    odd_text,
    st.from_regex(r"\A\s*\d{1,8}\s*[smhdwy]?\s*\Z"),
    st.sampled_from(["30d", "0d", "9999999d", "999999w", "1000000h", "0001-01-01", "9999-12-31",
                     "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-23:00", "2026-02-30", "2026-13-01",
                     "2026-01-01T25:00", "yesterday", "now", "-1d", "1e3d"]),
    st.datetimes().map(lambda d: d.isoformat()),
)


@CLI
@given(command=st.sampled_from(["show", "disable", "reset", "unlock"]), member_id=odd_text,
       dash=st.booleans(), flags=st.lists(st.sampled_from(["--json", "--force", "--strict", "--actor", "x"]),
                                          max_size=2))
@example(command="show", member_id="a\tb", dash=False, flags=[])
@example(command="disable", member_id="x" * 300, dash=False, flags=[])
@example(command="disable", member_id="42", dash=False, flags=[])  # roles unknown, no --force: refused
def test_members_commands_with_odd_ids(site: Path, command: str, member_id: str, dash: bool,
                                       flags: list[str]) -> None:
    if command != "show":
        flags = [f for f in flags if f != "--json"]
    if command != "disable":
        flags = [f for f in flags if f != "--force"]
    args = ["members", command, *flags, *(["--"] if dash else []), member_id]
    code, _out, err = check(site, args, changes=command != "show")
    if not flags and not dash and member_id in ("a\tb", "x" * 300):
        assert code == 2 and "bad member id" in err, err


@CLI
@given(command=st.sampled_from(["remove-factor", "rename-factor", "default-factor"]), member_id=odd_text,
       factor_id=st.one_of(odd_text, st.sampled_from(["1", "#1", "0", "-1", "007", "999999", "9" * 30])),
       label=odd_text, flags=st.lists(st.sampled_from(["--force", "--strict", "--actor", "x"]), max_size=2))
@example(command="remove-factor", member_id="42", factor_id="1", label="", flags=[])  # roles unknown: refused
@example(command="rename-factor", member_id="42", factor_id="1", label="x" * 300, flags=[])
@example(command="default-factor", member_id="42", factor_id="\u0664", label="", flags=[])
def test_factor_commands_with_odd_arguments(site: Path, command: str, member_id: str, factor_id: str, label: str,
                                            flags: list[str]) -> None:
    if command != "remove-factor":
        flags = [f for f in flags if f != "--force"]
    args = ["members", command, *flags, "--", member_id, factor_id, *([label] if command == "rename-factor" else [])]
    check(site, args, changes=True)


@CLI
@given(since=odd_when, until=st.none() | odd_when, kinds=st.lists(odd_text, max_size=2),
       limit=st.none() | st.sampled_from(["0", "-1", "1", "100001", "x", "1e3", "99999999999999999999"]),
       outcome=st.none() | st.sampled_from(["ok", "failed", "info", "OK", "", "bad"]))
@example(since="999999d", until=None, kinds=[], limit=None, outcome=None)
@example(since="0001-01-01T00:00:00+01:00", until=None, kinds=[], limit=None, outcome=None)
@example(since="30d", until="9999-12-31T23:59:59-23:00", kinds=[], limit=None, outcome=None)
def test_audit_list_with_odd_filters(site: Path, since: str, until: str | None, kinds: list[str],
                                     limit: str | None, outcome: str | None) -> None:
    args = ["audit", "list", "--since", since]
    if until is not None:
        args += ["--until", until]
    for kind in kinds:
        args += ["--kind", kind]
    if limit is not None:
        args += ["--limit", limit]
    if outcome is not None:
        args += ["--outcome", outcome]
    check(site, args)


@CLI
@given(fmt=st.sampled_from(["csv", "jsonl", "json", "xml", "", "CSV", "json "]), since=st.none() | odd_when,
       kind=st.none() | odd_text, output=st.sampled_from(["-", "file", "missing-folder", "folder"]))
@example(fmt="csv", since="9999999d", kind=None, output="-")
def test_audit_export_with_odd_options(site: Path, tmp_path_factory: pytest.TempPathFactory, fmt: str,
                                       since: str | None, kind: str | None, output: str) -> None:
    folder = tmp_path_factory.mktemp("export")
    target = {"-": "-", "file": str(folder / "out.txt"), "missing-folder": str(folder / "no" / "such" / "out.txt"),
              "folder": str(folder)}[output]
    args = ["audit", "export", "--format", fmt, "-o", target]
    if since is not None:
        args += ["--since", since]
    if kind is not None:
        args += ["--kind", kind]
    before = snapshot(site)
    code, _out, _err = check(site, args, changes=True)
    if code != 0:
        # A refused export leaves no file, not even a half-written one (and no audit row: check() saw none).
        assert not list(folder.rglob("*")), list(folder.rglob("*"))
    else:  # the export's one change: its own audit_exported row
        after = snapshot(site)
        added = after["otp_audit_events"][len(before["otp_audit_events"]):]
        assert {**after, "otp_audit_events": after["otp_audit_events"][:len(before["otp_audit_events"])]} == before
        assert [row[2] for row in added] == ["audit_exported"], added


@CLI
@given(age=odd_when, yes=st.booleans())
@example(age="999999d", yes=False)
@example(age="9999999w", yes=True)  # was "unexpected OverflowError"
def test_audit_prune_with_odd_ages(site: Path, age: str, yes: bool) -> None:
    """Every event here is minutes old, so no prune may delete (or audit) anything, whatever the age typed."""
    code, out, _err = check(site, ["audit", "prune", "--older-than", age, *(["--yes"] if yes else [])])
    assert code != 0 or "no events older than" in out


@CLI
@given(since=odd_when, fmt=st.none() | st.sampled_from(["table", "json", "xml", ""]), json_flag=st.booleans())
@example(since="999999d", fmt=None, json_flag=False)
@example(since="0001-01-01T00:00:00+01:00", fmt="json", json_flag=False)
@example(since="2999-01-01", fmt=None, json_flag=False)  # the future: was "unexpected ValueError"
def test_stats_with_odd_since(site: Path, since: str, fmt: str | None, json_flag: bool) -> None:
    args = ["stats", "--since", since, "--no-roles"]
    if fmt is not None:
        args += ["--format", fmt]
    if json_flag:
        args.append("--json")
    check(site, args)


def test_stats_since_the_year_1_stays_small(site: Path) -> None:
    """``--since 0001-01-01`` built a dict per day since the year 1 (a gigabyte); ``daily`` keeps the last ten years."""
    import json
    import resource

    from otp_pro.stats import MAX_DAILY_DAYS

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code, out, err = check(site, ["stats", "--since", "0001-01-01", "--json", "--no-roles"])
    assert code == 0, err
    data = json.loads(out)
    assert len(data["daily"]) == MAX_DAILY_DAYS and data["totals"]["verify_failed"] >= 3
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 100  # MB


@CLI
@given(path=odd_text.filter(lambda p: "\x00" not in p), kind=st.sampled_from(["missing", "folder", "odd-toml",
                                                                               "as-given"]))
def test_config_check_with_odd_paths(site: Path, tmp_path_factory: pytest.TempPathFactory, path: str,
                                     kind: str) -> None:
    folder = tmp_path_factory.mktemp("config")
    if kind == "missing":
        target = str(folder / "no-such.toml")
    elif kind == "folder":
        target = str(folder)
    elif kind == "odd-toml":
        target = str(folder / "odd.toml")
        Path(target).write_text(path, encoding="utf-8")
    else:
        target = path
    before = snapshot(site)
    code, out, err = run_main(["--config", target, "config", "check"])
    assert code in (1, 2) or (code == 0 and kind == "as-given"), (target, code, out, err)
    assert "Traceback" not in out + err and "OTP_PRO_DEBUG" not in err, (target, err)
    if code != 0:
        assert len(err.strip().splitlines()) == 1 and err.startswith("otp-pro: "), err
    assert snapshot(site) == before


@CLI
@given(name=odd_text, to=odd_text, mode=st.sampled_from(["--dry-run", None]))
@example(name="fax", to="x", mode="--dry-run")
@example(name="outbox", to="", mode="--dry-run")
def test_providers_test_with_odd_names(site: Path, name: str, to: str, mode: str | None) -> None:
    args = ["providers", "test", *(["--"] if name.startswith("-") else []), name, "--to", to]
    code, _out, err = check(site, args + ([mode] if mode else []), changes=True)
    if name not in ("outbox", "email", "sms_twilio"):
        assert code == 2, err


@given(text=odd_when)
@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@example(text="9999999d")
@example(text="0001-01-01T00:00:00+01:00")
@example(text="9999-12-31T23:59:59-23:00")
def test_parse_when_gives_an_aware_utc_instant_or_a_value_error(text: str) -> None:
    """What ``--since``/``--until`` parse: an instant the database can compare, or ``ValueError`` (a usage error)."""
    from datetime import datetime, timezone

    from otp_pro.auditlog import parse_when

    try:
        when = parse_when(text, datetime(2026, 11, 23, 12, tzinfo=timezone.utc))
    except ValueError as exc:
        assert str(exc)
    else:
        assert when.tzinfo is not None and when.astimezone(timezone.utc) == when


# ------------------------------------------------------------ the same properties through the real script

REAL_PROCESS_CASES = [
    ["members", "show", "a\tb"],
    ["members", "reset", "x" * 300],
    ["members", "unlock", "--", "-42"],
    ["members", "disable", "42"],
    ["audit", "list", "--since", "999999d"],
    ["audit", "export", "--format", "xml", "-o", "-"],
    ["stats", "--since", "0001-01-01T00:00:00+01:00"],
    ["providers", "test", "\u202efax", "--to", "x"],
]


@pytest.mark.parametrize("args", REAL_PROCESS_CASES, ids=[" ".join(a)[:30] for a in REAL_PROCESS_CASES])
def test_odd_arguments_in_a_real_process(site: Path, args: list[str]) -> None:
    before = snapshot(site)
    env = {k: v for k, v in os.environ.items() if k not in ("OTP_PRO_CONFIG", "OTP_PRO_DEBUG")}
    done = subprocess.run([str(SCRIPT), "--config", str(site), *args], capture_output=True, text=True, env=env,
                          timeout=120, stdin=subprocess.DEVNULL, cwd=site.parent)
    assert done.returncode in (0, 1, 2), (args, done.returncode, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if not line.startswith("warning: ")]
        assert len(lines) == 1 and lines[0].startswith("otp-pro: "), done.stderr
        assert snapshot(site) == before
