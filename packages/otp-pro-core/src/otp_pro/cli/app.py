"""The root ``otp-pro`` group with every core command group added, and :func:`main`, the script's entry point.

The command modules import only click and light parts of otp_pro when loaded; the core,
SQLAlchemy and the plugins are imported inside the commands that need them, so adding
the groups here keeps ``otp-pro --help`` and ``otp-pro providers list`` fast.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import click

from ..errors import ConfigurationError, OtpProError, StorageError
from .audit import audit_group
from .common import CONFIG_ENV, DEFAULT_CONFIG, echo_error, echo_problems
from .config import config
from .db import db
from .demo import demo
from .init import init
from .keys import keys
from .members import members
from .new_transport import new_transport
from .plugin_commands import PluginCommandGroup
from .providers import providers
from .stats import stats_command
from .templates import templates_group


@click.group(cls=PluginCommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "-c", metavar="FILE", help=f"settings file (default ${CONFIG_ENV} or ./{DEFAULT_CONFIG})")
@click.version_option(package_name="otp-pro-core", prog_name="otp-pro")
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    """otp-pro: multi-factor authentication for Python web applications.

    Installed plugins may add commands of their own (the otp_pro_cli_commands hook).
    """
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


cli.add_command(init)
cli.add_command(db)
cli.add_command(config)
cli.add_command(providers)
cli.add_command(members)
cli.add_command(keys)
cli.add_command(audit_group)
cli.add_command(stats_command)
cli.add_command(templates_group)
cli.add_command(demo)
cli.add_command(new_transport)


def main(argv: list[str] | None = None, *, prog_name: str = "otp-pro", obj: dict[str, Any] | None = None) -> None:
    """Entry point of the ``otp-pro`` script: typed errors become one-line messages.

    A program that runs the CLI inside itself (Django's ``manage.py otp_pro``) names itself with
    ``prog_name`` and hands in ``obj`` (``{"settings": Settings}``: see ``common.load_settings``).
    """
    try:
        cli.main(args=argv, prog_name=prog_name, standalone_mode=False, obj=obj)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.UsageError as exc:
        # One line: the problem and where to look, not click's usage block.
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        echo_error(f"{exc.format_message()}{where}")
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigurationError as exc:
        echo_problems("configuration error", exc)
        sys.exit(2)
    except StorageError as exc:  # the database went away or refuses us: as an OperationalError below
        echo_error(f"cannot use the database: {exc}")
        sys.exit(2)
    except OtpProError as exc:
        echo_error(f"{type(exc).__name__}: {exc}")
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - never a bare traceback
        if os.environ.get("OTP_PRO_DEBUG"):
            traceback.print_exc()
        from sqlalchemy.exc import OperationalError

        if isinstance(exc, OperationalError):  # the database went away or refuses us: say so, on one line
            echo_error("cannot use the database: " + " ".join(str(exc.orig).split()))
            sys.exit(2)
        echo_error(f"unexpected {type(exc).__name__}; set OTP_PRO_DEBUG=1 for details")
        sys.exit(70)
