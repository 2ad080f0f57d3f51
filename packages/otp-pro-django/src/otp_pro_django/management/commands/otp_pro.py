"""``manage.py otp_pro ...``: the ``otp-pro`` command line, run inside the Django project.

Every command and option of ``otp-pro`` (docs/cli.md) works the same; the settings are
``settings.OTP_PRO`` (no ``otp-pro.toml``), the database is Django's, and members are
the site's users (the ``member_lookup`` of :mod:`otp_pro_django.conf`), so ``members show 42``
knows user 42's roles and addresses. ``db upgrade`` works, but ``manage.py migrate``
is the usual way.
"""

from __future__ import annotations

import argparse
from typing import Any, ClassVar

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "otp-pro's command line inside this project: manage.py otp_pro --help lists the commands."
    # The otp-pro commands check what they need themselves (a missing table is a one-line error).
    requires_system_checks: ClassVar[list[str]] = []
    requires_migrations_checks = False

    def run_from_argv(self, argv: list[str]) -> None:
        # Everything after the command name goes to otp-pro's own parser, --help included.
        from django.db import connections

        try:
            self._run(argv[2:], prog_name=f"{argv[0].rsplit('/', 1)[-1]} {argv[1]}")
        finally:
            connections.close_all()

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("args", nargs=argparse.REMAINDER, help="an otp-pro command and its options")

    def handle(self, *args: Any, **options: Any) -> None:
        """For ``call_command("otp_pro", "members", "show", "42")``: a failure is a ``CommandError``."""
        try:
            self._run([str(a) for a in args], prog_name="manage.py otp_pro")
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise CommandError(f"otp-pro exited with {exc.code}",
                                   returncode=exc.code if isinstance(exc.code, int) else 1) from None

    def _run(self, args: list[str], *, prog_name: str) -> None:
        from otp_pro.cli import main
        from otp_pro.cli.common import echo_problems
        from otp_pro.errors import ConfigurationError

        from ... import conf

        try:
            settings = conf.otp_settings()
        except ConfigurationError as exc:
            echo_problems("configuration error (settings.OTP_PRO)", exc)
            raise SystemExit(2) from None
        main(args, prog_name=prog_name, obj={"settings": settings})
