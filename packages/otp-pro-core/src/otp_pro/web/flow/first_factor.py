"""Signing in with a factor alone (a passkey's "Sign in with a passkey"), where the site turns it on.

For a factor type that signs members in on its own
(:meth:`OtpPro.first_factor_channels <otp_pro.OtpPro.first_factor_channels>`), the login page offers a
button next to the password form. Its ceremony runs in the browser as on the verify page
(:mod:`.ceremonies`), over a challenge for no member from ``api_first_factor``; the answer is posted to
``first_factor``, which asks :meth:`OtpPro.verify_first_factor <otp_pro.OtpPro.verify_first_factor>`, loads
the member it proved (``load_member``), checks that their policy still counts that factor, and then hands
the member to the site: the flow's own login (a new session, the second step passed, since the factor
answered both) and the site's ``on_first_factor(visit, member)`` for a site with a login of its own
(Django's ``auth.login``). :func:`sign_in` is that hand-off for an adapter's own view, and
:func:`buttons_html` the buttons for a login page the site renders itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ... import i18n
from ...errors import ChannelUnavailable, ThrottledError
from ...i18n import N_
from ...i18n import gettext as _
from ...member import Member
from . import state
from .ceremonies import MAX_CHANNEL, answer_refused_text, input_kind, posted_answer
from .inputs import InputError, string_field
from .interface import Answer, Json, Redirect
from .login import login
from .outcome import Outcome, lock_minutes
from .render import environment
from .texts import locked_text, network_limit_text

if TYPE_CHECKING:
    from .visit import Visit

NOT_OFFERED_TEXT = N_("Signing in this way is not offered here.")
NOT_ALLOWED_TEXT = N_("This passkey cannot sign you in: sign in with your password.")


def challenge(v: Visit) -> Json:
    """``POST`` ``{"channel"}``: a challenge for no member, bound to this browser's session:
    ``{"ok": true, "channel", "input", "show"}``."""
    try:
        channel = string_field(v.request.json_object(), "channel", max_length=MAX_CHANNEL)
    except InputError as exc:
        return Json(body=exc.as_json(), status=exc.status)
    core = v.core
    if not channel or channel not in core.first_factor_channels():
        return Json(body={"ok": False, "error": "channel", "field": "channel", "message": _(NOT_OFFERED_TEXT)},
                    status=400)
    try:
        issued = core.begin_first_factor_challenge(channel, binding=state.binding(v.session), **v.client())
    except ThrottledError as exc:
        return Json(body={"ok": False, "error": "throttled", "message": network_limit_text(exc.retry_after,
                                                                                          sends=True),
                          "retry_after": exc.retry_after}, status=429, headers=[("Retry-After", str(exc.retry_after))])
    except ChannelUnavailable:
        return Json(body={"ok": False, "error": "channel", "message": _(NOT_OFFERED_TEXT)}, status=400)
    return Json(body={"ok": True, "channel": channel, "input": input_kind(core, channel), "show": issued.show,
                      "expires_at": issued.expires_at.isoformat()})


def sign_in(v: Visit, channel: str, answer: str, *, next: str | None = None) -> tuple[Outcome, Member | None]:
    """Judge ``answer`` (to this session's first-factor challenge on ``channel``) and, when it proves a member
    whose policy counts that factor, sign them in (second step passed) and hand them to the site's
    ``on_first_factor``. The outcome's ``location`` is where to go next."""
    core = v.core
    if channel not in core.first_factor_channels():
        return Outcome(False, _(NOT_OFFERED_TEXT), 400, error="channel"), None
    result = core.verify_first_factor(channel, answer, binding=state.current_binding(v.session), **v.client())
    if not result.ok:
        if result.reason == "locked":
            minutes = lock_minutes(result.locked_until, core.clock())
            return Outcome(False, locked_text(minutes), 429, result, error="locked", locked_minutes=minutes), None
        if result.reason == "rate_limited":
            wait = result.retry_after or 3600
            return Outcome(False, network_limit_text(wait, sends=False), 429, result, error="rate_limited",
                           retry_after=wait), None
        http_status = 400 if result.reason == "malformed" else 200
        return Outcome(False, answer_refused_text(result.reason), http_status, result, error=result.reason), None
    member = v.flow.load_member(result.member_id) if result.member_id else None
    policy = core.status(member) if member is not None else None
    if member is None or policy is None or not any(f.id == result.factor_id and f.usable for f in policy.factors):
        # The site no longer knows the member, or their role no longer counts this factor.
        return Outcome(False, _(NOT_ALLOWED_TEXT), 403, result, error="not_allowed"), None
    target = login(v, member, next=next, send=False)
    if target != v.url("setup"):
        state.mark_verified(v)  # the factor answered both steps: something held, the user verified
        target = v.next_url()
    if v.flow.on_first_factor is not None:
        v.flow.on_first_factor(v, member)
    return Outcome(True, _("Signed in."), 200, result, location=target), member


def buttons_html(v: Visit, *, next: str | None = None, messages: bool = True) -> str:
    """The "Sign in with a passkey" forms and their script, as HTML for a login page of the site's own
    (``otp_pro/_first_factor.html``); empty when no factor signs members in on its own here. ``next`` is
    where to go once signed in; ``messages`` puts the flow's pending messages first, which say why the last
    try was refused (the flow sends the browser back to the login page with one)."""
    options = v.flow.first_factor_options()
    if not options:
        return ""
    with i18n.using(v.flow.language(v)):  # the page's language, as Flow.render chooses it
        context = {**v.flow.template_context(v), "first_factor_options": options, "next": next,
                   "first_factor_messages": messages}
        return environment().get_template("otp_pro/_first_factor.html").render(context)


def page(v: Visit) -> Answer:
    """``POST`` (``channel``, ``answer``, ``next``) from the login page's button: signed in, to ``next``; or
    back to the login page saying why."""
    answer = posted_answer(v)
    outcome, member = sign_in(v, v.form_field("channel"), answer or "", next=v.form_field("next") or None)
    if member is None:
        v.flash(outcome.message, "error")
        return Redirect(location=v.request.root + v.flow.login_url)
    return Redirect(location=outcome.location or v.flow.home_url)
