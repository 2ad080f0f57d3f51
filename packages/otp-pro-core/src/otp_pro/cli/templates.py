"""``otp-pro templates``: preview messages with sample values; copy the sample web templates for editing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .common import CliError, load_otp

#: Message kinds ``templates preview`` renders: (core message kind, payload, purpose).
TEMPLATE_KINDS: dict[str, tuple[str, str | None, str | None]] = {
    "code": ("challenge", "code", "verify"),
    "setup": ("challenge", "code", "setup"),
    "magic_link": ("challenge", "magic_link", "verify"),
    "notification": ("notification", None, None),
    "test": ("test", "code", None),
}
SAMPLE_CODE = "492817"
SAMPLE_LINK = "https://example.com/otp/link?token=SAMPLE-TOKEN"
SAMPLE_NOTICE = "Two-step verification was set up on your account."


def _preview_channel(otp: Any, payload: str | None, wanted: str | None) -> tuple[str, Any]:
    """The channel and transport to render with: ``wanted``, else the first email channel for the payload."""
    if wanted is not None:
        transport = otp.transports.get(wanted.partition(":")[0])
        if transport is None:
            raise CliError(f"no transport for channel {wanted!r} (transports: {', '.join(otp.transports) or 'none'})")
        return wanted, transport
    suffix = f":{payload or 'code'}"
    candidates = [(name, c.transport) for name, c in otp.channels.items()
                  if c.transport is not None and name.endswith(suffix)]
    candidates += [(f"{t.name}{suffix}", t) for t in otp.transports.values()]
    for name, transport in candidates:
        if transport.message_format == "email":
            return name, transport
    if candidates:
        return candidates[0]
    raise CliError("no transport is installed to render a message with")


@click.group("templates")
def templates_group() -> None:
    """Preview messages; copy the sample web templates."""


@templates_group.command("preview")
@click.argument("kind", metavar="KIND", type=click.Choice(list(TEMPLATE_KINDS)))
@click.option("--format", "fmt", type=click.Choice(["text", "html", "subject"]), default="text", show_default=True)
@click.option("--output", "-o", metavar="FILE", default=None, help="write to FILE instead of standard output")
@click.option("--channel", default=None, help="render for this channel's transport (default: an email channel)")
@click.option("--var", "-v", "overrides", metavar="NAME=VALUE", multiple=True, help="replace a sample variable")
@click.pass_context
def templates_preview(ctx: click.Context, kind: str, fmt: str, output: str | None, channel: str | None,
                      overrides: tuple[str, ...]) -> None:
    """Render the KIND message with sample values through the installed templating plugins; nothing is sent."""
    from datetime import timedelta

    from ..member import Member

    extra_vars: dict[str, str] = {}
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--var")
        extra_vars[name] = value
    otp = load_otp(ctx, migrate_database=False)
    core_kind, payload, purpose = TEMPLATE_KINDS[kind]
    channel, transport = _preview_channel(otp, payload, channel)
    member = Member("preview", email="ann@example.com", name="Ann Example", fields={"phone": "+14155550123"})
    now = otp.clock()
    try:
        recipient = transport.recipient(member)
    except Exception:  # noqa: BLE001 - a transport that cannot address the sample member still renders
        recipient = member.email or ""
    extra: dict[str, Any] = {
        "recipient": recipient, "issued_at": now, "purpose": purpose, "payload_kind": payload,
        "payload": SAMPLE_LINK if payload == "magic_link" else (SAMPLE_CODE if payload else None),
        "payload_is_link": payload == "magic_link",
        "expires_at": now + timedelta(seconds=otp.settings.code_ttl_seconds) if payload else None,
    }
    if core_kind == "notification":
        from ..builtins.notify import preview_variables  # the variables the built-in notifications pass

        extra.update(preview_variables(otp))
        extra["notice"] = SAMPLE_NOTICE
    extra.update(extra_vars)
    message = otp.render_message(transport, member, channel, core_kind, extra)
    if fmt == "html" and not message.html:
        raise CliError(f"the {kind} message for {channel} has no HTML version (plain text only; "
                       "otp-pro-html-email renders HTML email)", exit_code=1)
    if fmt == "subject" and not message.subject:
        raise CliError(f"the {kind} message for {channel} has no subject", exit_code=1)
    text = {"text": message.text, "html": message.html or "", "subject": message.subject}[fmt]
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    try:
        Path(output).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror}") from None
    click.echo(f"wrote the {kind} {fmt} preview ({channel}) to {output}", err=True)


def sample_templates() -> Any:
    """The folder of sample web templates shipped in the package (``otp_pro/web/templates``)."""
    from importlib.resources import files

    return files("otp_pro").joinpath("web").joinpath("templates")


def _template_files(folder: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every file under ``folder`` (a resources Traversable) as (relative parts, file), sorted; caches left out."""
    out: list[tuple[tuple[str, ...], Any]] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name == "__pycache__" or entry.name.endswith(".pyc"):
            continue
        if entry.is_dir():
            out += _template_files(entry, (*prefix, entry.name))
        elif entry.is_file():
            out.append(((*prefix, entry.name), entry))
    return out


@templates_group.command("install")
@click.argument("directory", metavar="DIR")
@click.option("--force", is_flag=True, help="overwrite files that already exist")
def templates_install(directory: str, force: bool) -> None:
    """Copy the sample web templates (login, verify, settings pages, ...) into DIR for editing."""
    source = sample_templates()
    files = _template_files(source) if source.is_dir() else []
    if not files:
        raise CliError("this installation ships no sample web templates (otp_pro/web/templates is missing or empty)")
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise CliError(f"{target} exists and is not a folder")
    existing = [Path(*parts) for parts, _ in files if (target / Path(*parts)).exists()]
    if existing and not force:
        shown = ", ".join(str(p) for p in existing[:3]) + (", ..." if len(existing) > 3 else "")
        raise CliError(f"{len(existing)} of the {len(files)} files already exist in {target} ({shown}); "
                       "nothing was written; pass --force to overwrite them")
    for parts, entry in files:
        path = target / Path(*parts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(entry.read_bytes())
        except OSError as exc:
            raise CliError(f"cannot write {path}: {exc.strerror}") from None
        click.echo(f"wrote {path}")
    click.echo(f"{len(files)} files in {target}" + (f" ({len(existing)} overwritten)" if existing else ""), err=True)
