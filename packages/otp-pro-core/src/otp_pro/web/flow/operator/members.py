"""The console's member pages: search by id or email, a member's page, and the support actions on it.

Everything shown comes from :mod:`otp_pro.support` (what ``otp-pro members show --json`` prints) and every
action is the :class:`~otp_pro.OtpPro` method the CLI calls, with the operator as ``actor``
(``console:<id>``) and the operator's address and browser in the audit row. Each action is a page that
says what will happen (GET) and a CSRF-protected POST that does it; the member is told by the
notifications built-in, as for the CLI (disable, reset and a removed factor are factor changes; an unlock
is only audited).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .... import support
from ....errors import PluginError, PolicyError, UnknownFactor
from ....member import InvalidMember, Member
from ..interface import Answer, Redirect
from ..pages import message, page
from .access import actor, current

if TYPE_CHECKING:
    from ..visit import Visit

#: The actions on a member: what the confirmation page says each does, and whether it can be forced.
ACTIONS: dict[str, dict[str, Any]] = {
    "disable": {"title": "Disable two-step verification",
                "text": "Every factor, the backup codes and the trusted devices of this member are removed, and "
                        "two-step verification is switched off for them.", "button": "Disable", "force": True},
    "reset": {"title": "Reset two-step verification",
              "text": "Every factor, the backup codes, the trusted devices and any lockout of this member are "
                      "cleared; they set two-step verification up again at their next sign-in.", "button": "Reset",
              "force": False},
    "unlock": {"title": "Lift the lockout",
               "text": "The member may try codes again at once (this lifts the hard lock after 100 failures too).",
               "button": "Unlock", "force": False},
    "remove-factor": {"title": "Remove a factor",
                      "text": "This factor stops working: its unused codes and links too. The member's trusted "
                              "devices are revoked.", "button": "Remove", "force": True},
}
#: What ``force`` says on the confirmation page.
FORCE_TEXT = "Even if the member's role requires two-step verification"


def _id(v: Visit) -> str:
    """The member id of the request: ``?id=`` on a page, the ``member_id`` field in a POST."""
    value = v.form_field("member_id") if v.request.method == "POST" else v.request.args.get("id", "")
    return value.strip()[:255] if isinstance(value, str) else ""


def _found(v: Visit, member_id: str) -> tuple[Member, bool] | Answer:
    """The member and whether their roles are known: the core's member lookup, else the site's ``load_member``
    (which every adapter has: the console knows the members the site's sessions know)."""
    try:
        member, known = support.find_member(v.core, member_id)
        if not known:
            loaded = v.flow.load_member(member.id)
            if isinstance(loaded, Member):
                return loaded, True
        return member, known
    except InvalidMember:
        return message(400, "No such member", "That is not a member id.", v.url("operator_members"))
    except PluginError:
        return message(503, "Member lookup failed", "The site's member lookup failed; try again shortly.",
                       v.url("operator_members"))


def members(v: Visit) -> Answer:
    """``GET ?q=``: search members by id (exact or prefix) or by the email a factor was confirmed at."""
    query = v.request.args.get("q", "")
    query = query.strip()[:255] if isinstance(query, str) else ""
    matches = support.search(v.core, query) if query else []
    return page("otp_pro/operator/members.html", query=query, matches=matches, searched=bool(query))


def member(v: Visit) -> Answer:
    """``GET ?id=``: the member's requirement, grace, lock, factors, trusted devices and recent events."""
    found = _found(v, _id(v))
    if not isinstance(found, tuple):
        return found
    who, known = found
    report = support.member_report(v.core, who, known)
    if not known and not report["seen"]:
        return message(404, "No such member", "No member lookup knows this id and otp-pro holds nothing for it.",
                       v.url("operator_members"))
    return page("otp_pro/operator/member.html", report=report, known=known,
                unknown_reason=None if known else support.unknown_reason(v.core), actions=ACTIONS)


def action(v: Visit, verb: str) -> Answer:
    """``GET``: the confirmation page of action ``verb``; ``POST`` (confirmed, CSRF-checked): do it."""
    name = verb
    operator = current(v)
    spec = ACTIONS.get(name)
    if spec is None:
        return message(404, "Page not found", "There is no such action.", v.url("operator_members"))
    found = _found(v, _id(v))
    if not isinstance(found, tuple):
        return found
    who, known = found
    raw_factor = v.form_field("factor_id") if v.request.method == "POST" else v.request.args.get("factor", "")
    factor_id = int(raw_factor) if isinstance(raw_factor, str) and raw_factor.isascii() and raw_factor.isdigit() \
        and 0 < len(raw_factor) < 19 else None
    factor = None
    if name == "remove-factor":
        factor = next((f for f in v.core.factors(who) if f.id == factor_id), None)
        if factor is None:
            v.flash("This member has no such factor (any more).", "error")
            return Redirect(location=v.url("operator_member", id=who.id))
    if v.request.method != "POST":
        return page("otp_pro/operator/confirm.html", action=name, spec=spec, member_id=who.id, factor=factor,
                    known=known, force_text=FORCE_TEXT)
    force = spec["force"] and v.form_field("force") == "yes"
    if spec["force"] and not known and not force:
        v.flash("The member's roles are unknown, so their policy cannot be checked: tick the box to go on anyway.",
                "error")
        return Redirect(location=v.url("operator_action", verb=name, id=who.id, factor=factor_id))
    return _perform(v, operator, name, who, factor_id, force)


def _perform(v: Visit, operator: Member, name: str, who: Member, factor_id: int | None, force: bool) -> Answer:
    core, by, client = v.core, actor(operator), v.client()
    try:
        if name == "disable":
            core.disable(who, actor=by, force=force, **client)
            done = "Two-step verification is disabled for this member."
        elif name == "reset":
            core.reset(who, actor=by, **client)
            done = "Reset: the member sets two-step verification up again at their next sign-in."
        elif name == "unlock":
            core.unlock(who, actor=by, **client)
            done = "The lockout is lifted."
        else:
            assert factor_id is not None  # action() found the factor
            core.remove_factor(who, factor_id, actor=by, force=force, **client)
            done = f"Factor #{factor_id} is removed."
    except PolicyError as error:
        v.flash(f"{error}. Tick the box to do it anyway.", "error")
        return Redirect(location=v.url("operator_action", verb=name, id=who.id, factor=factor_id))
    except UnknownFactor:
        v.flash("This member has no such factor (any more).", "error")
        return Redirect(location=v.url("operator_member", id=who.id))
    v.flash(done, "info")
    return Redirect(location=v.url("operator_member", id=who.id))
