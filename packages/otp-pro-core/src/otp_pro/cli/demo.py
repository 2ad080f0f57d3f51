"""``otp-pro demo``: the demo site (Flask, embedded SQLite, dev mailbox) or the scripted walk-through."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from .common import CliError


@click.command()
@click.option("--database", metavar="FILE", default=None, help="SQLite file to use (default: a temporary one)")
@click.option("--host", default="127.0.0.1", show_default=True, help="address the demo site listens on")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535), help="port (0: a free one)")
@click.option("--script", is_flag=True, help="run the scripted walk-through in the terminal instead of the site")
def demo(database: str | None, host: str, port: int, script: bool) -> None:
    """Start the demo site (Flask, embedded SQLite, dev mailbox); --script runs the terminal walk-through."""
    if not script:
        try:
            from ..web.demo_site import serve
        except ImportError as exc:
            raise CliError(f"the demo site needs Flask ({exc}): pip install 'otp-pro-core[flask]', "
                           "or run `otp-pro demo --script`", exit_code=2) from None
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
