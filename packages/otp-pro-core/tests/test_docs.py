"""The docs stay true: every setting, audit event kind, CLI command and web endpoint is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from otp_pro import audit
from otp_pro.builtins import notify
from otp_pro.builtins.email import EmailTransport
from otp_pro.builtins.outbox import OutboxTransport
from otp_pro.settings import CORE_SETTINGS, ROLE_SETTINGS, TOTP_SETTINGS

DOCS = Path(__file__).resolve().parents[3] / "docs"

SETTING_KEYS = (
    [s.name for s in CORE_SETTINGS]
    + [f"totp.{s.name}" for s in TOTP_SETTINGS]
    + [f"roles.<name>.{s.name}" for s in ROLE_SETTINGS]
    + [f"providers.email.{s.name}" for s in EmailTransport.settings]
    + [f"providers.outbox.{s.name}" for s in OutboxTransport.settings]
    + [f"providers.{notify.SECTION}.{s.name}" for s in notify.SETTINGS]
)
EVENT_KINDS = sorted(
    [value for name, value in vars(audit).items()
     if name.isupper() and isinstance(value, str) and value not in (audit.OK, audit.FAILED, audit.INFO)]
    + [notify.NOTIFICATION_SENT, notify.NOTIFICATION_FAILED, notify.NOTIFICATION_UNSENT]  # written by notify
)


@pytest.mark.parametrize("key", SETTING_KEYS)
def test_every_setting_is_in_the_settings_page(key):
    assert f"`{key}`" in (DOCS / "settings.md").read_text()


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_every_audit_event_kind_is_documented(kind):
    assert f"`{kind}`" in (DOCS / "audit-events.md").read_text()


def test_factor_changes_are_documented():
    text = (DOCS / "audit-events.md").read_text()
    for kind in audit.FACTOR_CHANGES:
        assert f"`{kind}`" in text.split("Factor changes")[-1]


def _cli_commands() -> list[str]:
    """Every core command as typed: ``otp-pro members show`` (plugin commands are not core)."""
    import click

    from otp_pro.cli import cli

    def walk(command: click.Command, path: str) -> list[str]:
        if isinstance(command, click.Group):
            return [found for name, sub in command.commands.items() for found in walk(sub, f"{path} {name}")]
        return [path]

    return walk(cli, "otp-pro")


@pytest.mark.parametrize("command", _cli_commands())
def test_every_command_has_an_example_in_the_cli_page(command):
    examples = [line for line in (DOCS / "cli.md").read_text().splitlines() if line.startswith("$ ")]
    assert any(line[2:] == command or line[2:].startswith(command + " ") for line in examples), (
        f"docs/cli.md has no '$ {command} ...' example"
    )


def test_every_web_endpoint_is_in_the_web_page(tmp_path):
    """Every route of the flow layer (``otp_pro.<name>``, the magic-link landing included) is in docs/web.md."""
    from core_support import base_settings

    from otp_pro import OtpPro
    from otp_pro.web.flow import Flow
    from otp_pro.web.flow.routes import ROUTES

    otp = OtpPro(base_settings(f"sqlite:///{tmp_path}/web.sqlite3"), entry_points=False)
    try:
        flow = Flow(otp, load_member=lambda _id: None, check_password=lambda _m, _p: False)
        endpoints = {f"otp_pro.{route.name}" for route in (*flow.routes, *ROUTES)} | {"otp_pro.static",
                                                                                      "otp_pro.magic_link"}
        page = (DOCS / "web.md").read_text()
        assert not {e for e in endpoints if f"`{e}`" not in page}
    finally:
        otp.close()


def test_every_operator_console_route_is_in_its_page() -> None:
    """The console's routes (mounted with ``Flow(operator=...)``) are in docs/operator-console.md, and the page is
    linked from the index and each adapter's page."""
    from otp_pro.web.flow.operator import ROUTES

    page = (DOCS / "operator-console.md").read_text()
    assert not {r.name for r in ROUTES if f"`otp_pro.{r.name}`" not in page}
    for linking in ("index.md", "web-flask.md", "web-starlette.md", "web-django.md", "web.md"):
        assert "(operator-console.md)" in (DOCS / linking).read_text(), linking


# A recipe's verified check must not read "no markers at all" as verified: ``None == None``. Code compares
# with the marker's name right beside the operator (``session["otp_pro_verified"] == ...``).
_MARKER_COMPARISON = re.compile(r"verified\S*\s*(?:==|!=)|(?:==|!=)\s*\S*verified")


def _markdown_pages() -> list[Path]:
    return [*sorted(DOCS.glob("*.md")), DOCS.parent / "README.md"]


def test_the_session_recipes_check_verification_with_a_real_login_marker() -> None:
    recipes = []
    for page in _markdown_pages():
        text = page.read_text()
        for number, line in enumerate(text.splitlines(), 1):
            assert not _MARKER_COMPARISON.search(line), f"{page.name}:{number} compares a verified marker: {line}"
        recipes += [block for block in re.findall(r"```python\n(.*?)```", text, re.S)
                    if "SessionFacts.from_status(" in block]
    assert recipes  # the WSGI recipe
    for block in recipes:
        verified = re.search(r"\bverified=(\S+)", block)
        assert verified and verified.group(1).startswith("SessionFacts.is_verified_login("), block


# ------------------------------------------------------------- docs/security.md's requirements map

ROOT = DOCS.parent
_REF = re.compile(r"`([\w./-]+\.py)::(\w+)`")
_CODE = re.compile(r"`([a-z_][\w.]*):([A-Za-z_][\w.]*)`")


def _requirement_rows() -> list[list[str]]:
    """The rows of the tables under '## Requirements map': [section, requirement, status, code, tests]."""
    text = (DOCS / "security.md").read_text()
    assert "\n## Requirements map\n" in text, "docs/security.md has no '## Requirements map' section"
    section = text.split("\n## Requirements map\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith("| § ") or set(line) <= set("|-: "):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        assert len(cells) == 5, f"a requirements row needs 5 cells: {line}"
        rows.append(cells)
    return rows


def _test_file(path: str) -> Path:
    return ROOT / path if path.startswith("packages/") else Path(__file__).resolve().parent / path


def _source_file(module: str) -> Path | None:
    parts = module.split(".")
    for package in (ROOT / "packages").iterdir():
        candidate = package.joinpath("src", *parts).with_suffix(".py")
        if candidate.is_file():
            return candidate
    return None


def _defines(text: str, name: str) -> bool:
    return re.search(rf"^\s*(?:async\s+def|def|class)\s+{name}\b|^{name}\s*(?::[^=\n]*)?=", text, re.M) is not None


def test_every_test_in_the_requirements_map_exists() -> None:
    rows = _requirement_rows()
    sections = {row[0] for row in rows}
    # Both standards, and the sections that bear on a second factor (SP 800-63B 5.1.2 to 5.2.8; ASVS 4.0.3 V2.7,
    # V2.8, V6).
    for needed in ("5.1.2.2", "5.1.3.2", "5.1.4.1", "5.2.2", "5.2.8", "V2.7.2", "V2.8.4", "V6.2.8", "V6.3.1",
                   "V6.4.1"):
        assert any(needed in section for section in sections), f"no row for {needed}"
    missing: list[str] = []
    cited = 0
    for section, _requirement, status, code, tests in rows:
        refs, functions = _REF.findall(tests), _CODE.findall(code)
        if status.startswith(("**Met", "**Partly")):
            if not refs or not functions:
                missing.append(f"{section}: a met or partly met requirement cites no test or no code")
        for path, name in refs:
            cited += 1
            file = _test_file(path)
            if not file.is_file():
                missing.append(f"{section}: {path} does not exist")
            elif not re.search(rf"^\s*(?:async\s+)?def {name}\(", file.read_text(), re.M):
                missing.append(f"{section}: {path} has no 'def {name}('")
        for module, dotted in functions:
            source = _source_file(module)
            if source is None:
                missing.append(f"{section}: no module {module} under packages/*/src")
                continue
            text = source.read_text()
            for name in dotted.split("."):
                if not _defines(text, name):
                    missing.append(f"{section}: {module} defines no {name}")
    assert cited >= 40 and not missing, "\n".join(missing)


# ------------------------------------------------- docs/tutorial-transport.md names its tools

# The shell and Python itself (pip comes with every virtual environment): not tools a reader installs.
_GIVEN_COMMANDS = {"cd", "cat", "echo", "export", ".", "source", "python", "pip"}


def _tutorial_commands(text: str) -> set[str]:
    """The commands the tutorial's ``sh`` blocks run: ``twine``, ``otp-pro``, and ``build`` for ``python -m build``."""
    found: set[str] = set()
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        block = re.sub(r"<<'(\w+)'\n.*?\n\1\n", "\n", block, flags=re.S)  # a here-document's body is data
        for line in block.splitlines():
            # Quoted text and $(...) are arguments, not commands this line runs; a comment is prose.
            line = re.sub(r"\$\([^)]*\)", "", re.sub(r"\"[^\"]*\"|'[^']*'", "''", line)).split("#", 1)[0]
            for segment in re.split(r"&&|\|\|?|;", line):
                words = [word for word in segment.split() if word != "\\"]
                while words and re.match(r"^\w+=", words[0]):  # VAR=value before the command
                    words.pop(0)
                if not words:
                    continue
                command = words[0].rsplit("/", 1)[-1]  # /tmp/try/bin/otp-pro runs otp-pro
                if command == "python" and words[1:2] == ["-m"] and len(words) > 2:
                    command = words[2]
                if command not in _GIVEN_COMMANDS:
                    found.add(command)
    return found


def test_the_transport_tutorial_says_how_to_install_every_tool_it_runs() -> None:
    text = (DOCS / "tutorial-transport.md").read_text()
    assert "\n## What you need\n" in text, "docs/tutorial-transport.md has no '## What you need' section"
    needs = text.split("\n## What you need\n", 1)[1].split("\n## ", 1)[0]
    commands = _tutorial_commands(text)
    assert {"otp-pro", "pytest", "build", "twine", "venv"} <= commands  # the parser still sees the steps
    rows = [line for line in needs.splitlines() if line.startswith("| `")]
    missing = [c for c in sorted(commands) if not any(f"`{c}`" in row.split(" | ")[0] for row in rows)]
    assert not missing, f"the 'What you need' table of docs/tutorial-transport.md does not name {missing}"
    for row in rows:
        assert "install" in row or "pip" in row or "standard library" in row, f"no way to install in: {row}"
