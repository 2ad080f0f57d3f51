"""The docs stay true: every setting, audit event kind, CLI command and web endpoint is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from otp_pro import audit
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
)
EVENT_KINDS = sorted(
    value for name, value in vars(audit).items()
    if name.isupper() and isinstance(value, str) and value not in (audit.OK, audit.FAILED, audit.INFO)
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
    from otp_pro.web.demo_site import create_app

    app = create_app(str(tmp_path / "demo.sqlite3"))
    try:
        endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.startswith("otp_pro")}
        page = (DOCS / "web.md").read_text()
        assert endpoints and not {e for e in endpoints if f"`{e}`" not in page}
    finally:
        app.extensions["otp_pro_demo"].close()
