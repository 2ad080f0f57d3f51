"""``otp-pro stats``: adoption, verification rates, lockouts and delivery failures over a period, as tables or JSON."""

from __future__ import annotations

import json
from typing import Any

import click

from .common import CliError, load_otp


class _SinceText(click.ParamType):
    """An ISO date or an age (``30d``), checked at once but resolved later against the instance's clock."""

    name = "WHEN"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from datetime import datetime, timezone

        from ..auditlog import parse_when

        try:
            parse_when(str(value), datetime.now(timezone.utc))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return str(value)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _heading(text: str) -> None:
    click.echo("\n" + click.style(text, bold=True))


def _print_table(header: list[str], rows: list[list[Any]]) -> None:
    """Numbers right-aligned, text left-aligned; widths from the plain (unstyled) text."""
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(click.unstyle(row[i])) for row in cells) for i in range(len(header))]
    plain = [[click.unstyle(cell) for cell in row] for row in cells[1:]]
    numeric = [i > 0 and all(row[i] == "-" or row[i].rstrip("%").replace(".", "").isdigit() for row in plain)
               for i in range(len(header))]

    def line(row: list[str]) -> str:
        out = []
        for i, cell in enumerate(row):
            pad = " " * (widths[i] - len(click.unstyle(cell)))
            out.append(pad + cell if numeric[i] else cell + pad)
        return "  ".join(out).rstrip()

    click.echo(click.style(line(header), underline=True))
    for row in cells[1:]:
        click.echo(line(row))


@click.command("stats")
@click.option("--since", default="30d", show_default=True, type=_SinceText(),
              help="start of the period: an age (30d, 12h) or an ISO date (2026-01-01)")
@click.option("--until", default=None, type=_SinceText(),
              help="end of the period: an age (7d) or an ISO date (2026-02-01); default now")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON (same as --format json)")
@click.option("--roles/--no-roles", default=True, show_default=True,
              help="split adoption by role through the member_lookup plugin, when one is installed")
@click.pass_context
def stats_command(ctx: click.Context, since: str, until: str | None, fmt: str, as_json: bool, roles: bool) -> None:
    """Adoption by role and channel; challenges, verification rates, lockouts, backup codes, delivery failures,
    per-IP limits."""
    from ..auditlog import parse_when
    from ..stats import collect

    otp = load_otp(ctx)
    now = otp.clock()
    start = parse_when(since, now)
    end = parse_when(until, now) if until is not None else now
    if end > now:
        raise CliError(f"--until {until} is in the future: statistics end now at the latest")
    if start > end:  # collect() refuses a period that ends before it starts
        raise CliError(f"--since {since} is after the end of the period ({'--until ' + until if until else 'now'})")
    result = collect(otp, start, until=end, roles=roles)
    if fmt == "json" or as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
        return
    click.echo(click.style("otp-pro statistics", bold=True) +
               f"  {result.since:%Y-%m-%d %H:%M} to {result.until:%Y-%m-%d %H:%M} UTC")
    _heading("Adoption " + ("by role (roles from member_lookup)" if result.roles_known else
                            "(roles unknown: every member otp-pro recorded; see docs/cli.md)"))
    _print_table(
        ["role", "subjects", "enrolled", "required, not enrolled", "in grace", "disabled", "enrolled by channel"],
        [[a.role, a.subjects, a.enrolled, a.required_not_enrolled, a.in_grace, a.disabled,
          " ".join(f"{k}={v}" for k, v in sorted(a.channels.items())) or "-"] for a in result.adoption],
    )
    _heading("Channels")
    if result.channels:
        _print_table(
            ["channel", "challenges sent", "verified", "failed", "success", "failure"],
            [[c.channel, c.challenges_sent, c.verify_ok, c.verify_failed,
              click.style(_rate(c.success_rate), fg="green"),
              click.style(_rate(c.failure_rate), fg="red" if c.verify_failed else None)] for c in result.channels],
        )
    else:
        click.echo("no challenges or verifications in the period")
    t = result.totals
    click.echo(f"\nlockouts {t['lockouts']}   backup codes used {t['backup_codes_used']}   "
               f"delivery failures {t['delivery_failures']}")
    if result.delivery_failures:
        _heading("Delivery failures")
        _print_table(["provider", "error", "provider code", "count"],
                     [[f.provider, f.error, f.provider_code or "-", click.style(str(f.count), fg="red")]
                      for f in result.delivery_failures])
    _heading("Per-IP limits (refusals in the period; addresses over the cap now)")
    _print_table(["limit", "cap per hour", "refusals", "addresses refused", "over now"],
                 [[i.limit, i.cap, click.style(str(i.refusals), fg="red") if i.refusals else "0", i.addresses,
                   i.over_now] for i in result.ip_limits])
    active = [d for d in result.daily if any(v for k, v in d.items() if k != "day")]
    _heading(f"Per day ({len(active)} of {len(result.daily)} days had activity; the others are left out)")
    if active:
        _print_table(
            ["day", "sent", "verified", "failed", "lockouts", "backup codes", "delivery failures"],
            [[d["day"], d["challenges_sent"], d["verify_ok"], d["verify_failed"], d["lockouts"],
              d["backup_codes_used"], d["delivery_failures"]] for d in active],
        )
