"""``otp-pro new-transport``: write the skeleton of a transport distribution."""

from __future__ import annotations

import click

from .common import CliError


@click.command("new-transport")
@click.argument("name")
@click.option("--directory", "-d", metavar="DIR", default=None, help="where to write it (default ./otp-pro-NAME)")
def new_transport(name: str, directory: str | None) -> None:
    """Write the skeleton of a transport distribution NAME whose contract tests pass as generated."""
    from ..scaffold import ScaffoldError
    from ..scaffold import new_transport as write_skeleton

    try:
        names, target, files = write_skeleton(name, directory)
    except (ScaffoldError, OSError) as exc:
        raise CliError(str(exc)) from None
    click.echo(f"wrote {names.distribution} (transport {names.name!r}, module {names.module}) to {target}:")
    for path in files:
        click.echo(f"  {path.relative_to(target)}")
    click.echo(f"next: cd {target} && pip install -e '.[test]' && pytest")
