"""What the command modules share: the error they raise, loading the settings and the ``OtpPro``, events as text.

Importing it stays cheap: the core (and with it SQLAlchemy) is imported inside :func:`load_otp`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigurationError
from ..settings import Settings

#: The environment variable naming the settings file, and the file used without it or ``--config``.
CONFIG_ENV = "OTP_PRO_CONFIG"
DEFAULT_CONFIG = "otp-pro.toml"


class CliError(click.ClickException):
    """A command's refusal or failure: one line on standard error, exit code 2 unless given."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            vars(self)["exit_code"] = exit_code  # click types exit_code as a class variable

    def show(self, file: Any = None) -> None:
        echo_error(self.format_message())


def echo_error(text: str) -> None:
    """The one line of an error on standard error; the prefix is red on a terminal only (click strips styles)."""
    # Errors quote what the operator typed (a path, an argument): a newline there would break the one line,
    # an escape sequence would reach the terminal. Both are shown escaped, as repr() writes them.
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    click.echo(click.style("otp-pro:", fg="red", bold=True) + " " + text, err=True)


def echo_problems(what: str, error: ConfigurationError) -> None:
    """A configuration error: one problem on the error's one line; several under a heading, one per line."""
    heading = str(error).split("\n", 1)[0].rstrip(":")
    if len(error.problems) == 1:
        echo_error(f"{what}: {heading}")
        return
    echo_error(f"{what}: {heading} ({len(error.problems)} problems):")
    for problem in error.problems:
        # Escaped as echo_error escapes its text: a value quoted from the file cannot add lines of its own.
        click.echo("  " + "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in problem), err=True)


def config_path(config: str | None) -> Path:
    """The settings file: ``--config``, else ``$OTP_PRO_CONFIG``, else ``./otp-pro.toml``."""
    return Path(config or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_settings(ctx: click.Context) -> Settings:
    """The settings of the file :func:`config_path` names; a missing file is a :class:`CliError`.

    A program that runs the CLI inside itself (Django's ``manage.py otp_pro``) hands its own
    :class:`Settings` in as ``obj={"settings": ...}``; no file is read then.
    """
    given = ctx.obj.get("settings")
    if isinstance(given, Settings):
        return given
    path = config_path(ctx.obj.get("config"))
    try:
        found = path.exists()
    except OSError as exc:  # a name too long for the file system, for one
        raise CliError(f"cannot read the settings file {str(path)[:80]!r}: {exc.strerror}") from None
    if not found:
        raise CliError(f"no settings file at {path}: run `otp-pro init` or pass --config")
    return Settings.from_file(path)


def load_otp(ctx: click.Context, **kwargs: Any) -> Any:
    """The command's ``OtpPro`` (``kwargs`` go to its constructor), made once and closed when the command ends."""
    from ..core import OtpPro

    if "otp" not in ctx.obj:
        settings = load_settings(ctx)
        if "migrate_database" not in kwargs:
            kwargs["migrate_database"] = _require_schema(settings.database_url)
        otp = ctx.obj["otp"] = OtpPro(settings, plugins=ctx.obj.get("plugins", ()), **kwargs)
        # Made here, closed here: its pooled connections and transports go when the command ends
        # (an OtpPro passed in by the caller stays the caller's to close).
        ctx.find_root().call_on_close(otp.close)
    return ctx.obj["otp"]


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite ``database_url`` (None for another database, an in-memory one or a URL not parsed)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:  # whoever opens the database reports it
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


def _require_schema(url: str) -> bool | None:
    """Refuse a SQLite database the command would otherwise create or migrate; ``migrate_database`` for OtpPro.

    ``OtpPro`` creates and migrates a SQLite file by itself, which suits an application but not an
    operator's command: ``audit list`` against a mistyped path would leave an empty database there.
    Only ``otp-pro init`` and ``otp-pro db upgrade`` create or migrate, so a command refuses a missing
    file, one without otp-pro's tables and one whose schema is behind, as ``OtpPro`` refuses on
    PostgreSQL (where the default, None, already does).
    """
    from ..storage import migrate
    from ..storage.db import Database

    path = sqlite_file(url)
    if path is None:
        return None
    database = Database(url)  # checks the folder and the file's header; creates nothing until it connects
    try:
        if not path.exists():
            raise ConfigurationError(
                f"no database at {path}: run `otp-pro db upgrade` (or `otp-pro init`) to create it", key="database_url"
            )
        problem = migrate.schema_problem(database.engine, where=f"the database {path}")
    finally:
        database.dispose()
    if problem is not None:
        raise ConfigurationError(problem, key="database_url")
    return False


def os_user() -> str:
    """The operator's OS user name, the default ``--actor`` in the audit log."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "unknown"


#: ``--actor NAME``: the operator named in the audit log.
actor_option = click.option("--actor", default=None, help="operator named in the audit log (default: OS user)")


_OUTCOME_COLOURS = {"ok": "green", "failed": "red"}


def event_line(e: Any, colour: bool = False) -> str:
    """One event on one line; with ``colour`` the outcome is green or red (shown on a terminal only)."""
    details = " ".join(f"{k}={v}" for k, v in sorted(e.details.items()))
    at = e.at.strftime("%Y-%m-%d %H:%M:%S")
    outcome = f"{e.outcome:<6}"
    if colour and e.outcome in _OUTCOME_COLOURS:
        outcome = click.style(outcome, fg=_OUTCOME_COLOURS[e.outcome])
    return (f"{at}  {e.kind:<22} {outcome} {e.member_id or '-':<16} {e.channel or '-':<14} "
            f"{('by ' + e.actor) if e.actor else ''} {details}").rstrip()
