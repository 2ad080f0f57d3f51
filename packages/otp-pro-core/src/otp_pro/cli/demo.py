"""``otp-pro demo``: the demo site (embedded SQLite, dev mailbox) or the scripted walk-through.

The site comes from the ``otp_pro.demo_site`` entry-point group (``otp-pro-flask`` registers
``flask = "otp_pro_flask.demo_site:serve"``), so the core names no web framework: ``serve(host=, port=,
database=, echo=)`` runs a site until interrupted.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .common import CliError

#: The entry-point group of demo sites: a name and a ``serve(host=, port=, database=, echo=)`` callable.
DEMO_SITE_GROUP = "otp_pro.demo_site"
#: What to install when no demo site is.
NO_DEMO_SITE_TEXT = ("the demo site needs a web adapter: pip install otp-pro-flask (it brings the demo site), "
                     "or run `otp-pro demo --script` for the walk-through in the terminal")


def _demo_site() -> Callable[..., Any]:
    """The installed demo site's ``serve`` (the first by name), or a :class:`CliError` saying what to install."""
    from importlib import metadata  # a tenth of ``otp-pro --help``'s start: imported by the command alone

    found = sorted(metadata.entry_points(group=DEMO_SITE_GROUP), key=lambda ep: ep.name)
    if not found:
        raise CliError(NO_DEMO_SITE_TEXT, exit_code=2)
    try:
        serve: Callable[..., Any] = found[0].load()
    except ImportError as exc:
        raise CliError(f"the demo site {found[0].value} cannot be loaded ({exc}): {NO_DEMO_SITE_TEXT}",
                       exit_code=2) from None
    return serve


@click.command()
@click.option("--database", metavar="FILE", default=None, help="SQLite file to use (default: a temporary one)")
@click.option("--host", default="127.0.0.1", show_default=True, help="address the demo site listens on")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535), help="port (0: a free one)")
@click.option("--script", is_flag=True, help="run the scripted walk-through in the terminal instead of the site")
def demo(database: str | None, host: str, port: int, script: bool) -> None:
    """Start the demo site (otp-pro-flask: embedded SQLite, dev mailbox); --script runs the terminal walk-through."""
    if not script:
        serve = _demo_site()
        try:
            serve(host=host, port=port, database=database, echo=click.echo)
        except OSError as exc:
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (try --port 0)",
                           exit_code=1) from None
        return
    from ..demo import run_demo

    folder = None
    if database is None:
        folder = tempfile.TemporaryDirectory(prefix="otp-pro-demo-")
        database = str(Path(folder.name) / "demo.sqlite3")
    try:
        run_demo(database, echo=click.echo)
    finally:
        if folder is not None:
            folder.cleanup()
