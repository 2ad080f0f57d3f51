"""``otp-pro init``: write a commented settings file with a fresh secret key and create the database."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import click

from ..settings import CORE_SETTINGS, DEFAULT_DATABASE_URL, TOTP_SETTINGS, Settings
from .common import CliError, config_path

# The settings file ``init`` writes. Its values are the defaults of the Setting specs
# (:func:`settings_file`), so that a default is written once, in otp_pro.settings.
SETTINGS_TEMPLATE = """\
# otp-pro settings. Every key is optional except secret_key.
# A secret may be read from the environment: smtp_password = {{ env = "SMTP_PASSWORD" }}

secret_key = "{secret_key}"    # keep it secret; rotate with previous_secret_keys
database_url = "{database_url}"
site_name = "{site_name}"
# support_email = "help@example.com"

mode = "{mode}"                 # hidden | visible | required
default_channel = "{default_channel}"
# channels = ["email:code", "totp"]   # default: every installed channel
# grace_days = 7                 # days before a newly required member must set up

code_length = {code_length}                  # 6 to 10 digits
code_ttl_seconds = {code_ttl_seconds}
max_attempts = {max_attempts}                 # at most 100 (NIST SP 800-63B)
lockout_seconds = {lockout_seconds}
resend_cooldown_seconds = {resend_cooldown_seconds}     # 0 switches the cooldown off
max_sends_per_hour = {max_sends_per_hour}
backup_code_count = {backup_code_count}
trusted_device_days = {trusted_device_days}

[totp]
digits = {totp_digits}
period = {totp_period}
algorithm = "{totp_algorithm}"               # SHA1 | SHA256 | SHA512 (most apps only do SHA1)

# [roles.admin]
# requirement = "required"       # not_required | optional | required
# grace_days = 0
# channels = ["totp"]

[providers.email]
smtp_host = "localhost"
# smtp_port = 587
# smtp_starttls = true
# smtp_username = "otp"
# smtp_password = {{ env = "SMTP_PASSWORD" }}
from_address = "no-reply@example.com"
"""


@click.command()
@click.option("--path", "path", default=None, metavar="FILE", help="where to write the settings file")
@click.option("--database-url", default=DEFAULT_DATABASE_URL, show_default=True)
@click.option("--site-name", default="My site", show_default=True)
@click.option("--force", is_flag=True, help="overwrite an existing file")
@click.pass_context
def init(ctx: click.Context, path: str | None, database_url: str, site_name: str, force: bool) -> None:
    """Write a commented settings file with a fresh secret key and create the database."""
    target = Path(path) if path else config_path(ctx.obj.get("config"))
    if target.exists() and not force:
        raise CliError(f"{target} exists; pass --force to overwrite it")
    text = settings_file(secret_key=secrets.token_urlsafe(48), database_url=database_url, site_name=site_name)
    settings = Settings.from_mapping(_toml_loads(text), base_dir=target.resolve().parent)
    try:
        target.write_text(text, encoding="utf-8")
        os.chmod(target, 0o600)
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror}") from None
    from ..storage import migrate
    from ..storage.db import Database

    db = Database(settings.database_url)
    migrate.upgrade(db.engine)
    db.dispose()
    click.echo(f"wrote {target} (mode 600) and created the database at revision {migrate.head_revision()}")


def settings_file(*, secret_key: str, database_url: str, site_name: str) -> str:
    """:data:`SETTINGS_TEMPLATE` filled in: these three values, and every other value its setting's default."""
    defaults = {spec.name: spec.default for spec in CORE_SETTINGS}
    defaults.update((f"totp_{spec.name}", spec.default) for spec in TOTP_SETTINGS)
    defaults.update(secret_key=secret_key, database_url=database_url.replace('"', '\\"'),
                    site_name=site_name.replace('"', '\\"'))
    return SETTINGS_TEMPLATE.format(**defaults)


def _toml_loads(text: str) -> dict[str, Any]:
    from ..settings import tomllib

    return tomllib.loads(text)
