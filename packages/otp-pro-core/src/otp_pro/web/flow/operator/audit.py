"""The console's audit log: filters, keyset paging over any number of rows, and the streaming export.

The filters are :class:`~otp_pro.auditlog.AuditFilter`'s (member, kind, outcome, IP, actor, time); a page
is :func:`~otp_pro.auditlog.page_events` (``id < before``, newest first, never an ``OFFSET``, never a
count), and the export is :func:`~otp_pro.auditlog.export_chunks`, CSV or JSON Lines, read in batches as
the browser takes it: what ``otp-pro audit list`` and ``otp-pro audit export`` do. An export is itself
audited (``audit_exported``, with the operator, the format and the filters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .... import audit as kinds
from ....auditlog import AuditFilter, export_chunks, page_events, parse_when
from ..interface import Answer, Download
from ..pages import page
from .access import actor, current

if TYPE_CHECKING:
    from ..visit import Visit

#: Events on one page.
PAGE_SIZE = 50
#: The export formats the console offers: the ``format`` value, its media type and file suffix.
EXPORTS = {"csv": ("text/csv; charset=utf-8", "csv"), "jsonl": ("application/x-ndjson; charset=utf-8", "jsonl")}
OUTCOMES = ("ok", "failed", "info")
#: The query fields of the filter form.
FIELDS = ("member", "kind", "outcome", "ip", "actor", "since", "until")


def _arg(v: Visit, name: str, limit: int = 255) -> str:
    value = v.request.args.get(name, "")
    return value.strip()[:limit] if isinstance(value, str) else ""


def read_filter(v: Visit) -> tuple[AuditFilter, dict[str, str], list[str]]:
    """The filter of the request's query, the values to show back in the form, and what could not be read."""
    shown = {name: _arg(v, name) for name in FIELDS}
    errors: list[str] = []
    now = v.core.clock()
    when: dict[str, Any] = {}
    for name in ("since", "until"):
        if shown[name]:
            try:
                when[name] = parse_when(shown[name], now)
            except ValueError as error:
                errors.append(f"{name}: {error}")
    outcome = shown["outcome"] if shown["outcome"] in OUTCOMES else None
    if shown["outcome"] and outcome is None:
        errors.append("outcome: choose ok, failed or info")
    where = AuditFilter(member_id=shown["member"] or None, kinds=(shown["kind"],) if shown["kind"] else (),
                        outcome=outcome, ip=shown["ip"] or None, actor=shown["actor"] or None,
                        since=when.get("since"), until=when.get("until"))
    return where, shown, errors


def _before(v: Visit) -> int | None:
    raw = _arg(v, "before", 19)
    return int(raw) if raw.isascii() and raw.isdigit() and raw else None


def audit_log(v: Visit) -> Answer:
    """``GET``: the newest matching events, :data:`PAGE_SIZE` a page, with a link to the older ones."""
    where, shown, errors = read_filter(v)
    before = _before(v)
    found = page_events(v.core.db, where, before=before, limit=PAGE_SIZE) if not errors else None
    query = {name: value for name, value in shown.items() if value}
    return page("otp_pro/operator/audit.html", 400 if errors else 200, shown=shown, errors=errors, query=query,
                events=found.events if found else [], older=found.older if found else None, first=before is None,
                outcomes=OUTCOMES, kinds=sorted(kinds.KINDS), exports=tuple(EXPORTS))


def audit_export(v: Visit) -> Answer:
    """``GET ?format=csv|jsonl`` and the filters: the matching events, oldest first, streamed as a file."""
    operator = current(v)
    fmt = _arg(v, "format", 10) or "csv"
    where, shown, errors = read_filter(v)
    if fmt not in EXPORTS or errors:
        return page("otp_pro/operator/audit.html", 400, shown=shown,
                    errors=errors or ["format: choose csv or jsonl"], query={}, events=[], older=None, first=True,
                    outcomes=OUTCOMES, kinds=sorted(kinds.KINDS), exports=tuple(EXPORTS))
    media, suffix = EXPORTS[fmt]
    # Who took a copy of the log, and of what, is itself in the log (written before the first row is read).
    v.core.record_event(kinds.AUDIT_EXPORTED, actor=actor(operator), format=fmt,
                        filters={name: value for name, value in shown.items() if value}, **v.client())
    stamp = v.core.clock().strftime("%Y%m%d-%H%M%S")
    return Download(chunks=export_chunks(v.core.db, fmt, where), content_type=media,
                    filename=f"otp-pro-audit-{stamp}.{suffix}")
