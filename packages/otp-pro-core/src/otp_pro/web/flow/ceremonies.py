"""Factors answered in the browser, not typed: the pages' part of a factor type whose input is not a code.

A factor type says how it is answered (:meth:`~otp_pro.factor_types.FactorType.describe`, ``input``):
``"code"`` (a text box), ``"link"`` (a click in a message), or a browser ceremony of its own, such as
``"webauthn"``. For the last kind the flow, knowing nothing of the type, does the same three things:

* it asks the core for a challenge when the page asks (the JSON route ``api_challenge``:
  :meth:`OtpPro.begin_challenge <otp_pro.OtpPro.begin_challenge>` with this login's binding) and hands the
  browser the challenge's ``show``; a setup's ``show`` is put in the confirm page itself;
* its static script ``otp_pro_ceremony.js`` runs the ceremony the input kind names (``webauthn``: the
  web standard's ``navigator.credentials.create/get``, in every adapter alike) and posts the result as the
  form field ``answer``;
* the verify, setup-confirm and re-authentication handlers pass ``answer`` to the core as they pass a
  typed code, with this login's binding, so the core's rules (single use, this session, short lived,
  counted) apply unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ... import i18n
from ...core import OtpPro
from ...errors import ChannelUnavailable, FactorNotEnrolled, LockedOut
from ...i18n import gettext as _
from ...results import MemberStatus
from . import state
from .inputs import MAX_JSON_BYTES, InputError, string_field
from .interface import Json
from .outcome import lock_minutes
from .texts import FACTOR_NOT_ENROLLED_TEXT, SIGN_IN_FIRST_TEXT, channel_refused_text, locked_text

if TYPE_CHECKING:
    from .visit import Visit

#: Inputs the pages ask for with a text box or a message: every other input kind is a browser ceremony.
TYPED_INPUTS = ("code", "link")
#: The longest browser answer read (a credential with its attestation certificates fits); a little under the
#: flow's body limit, so that a JSON body with a longer one is refused naming the field, not as too large.
MAX_ANSWER = MAX_JSON_BYTES - 192
#: The longest channel name read (the core's channel names are far shorter).
MAX_CHANNEL = 100


def input_kind(core: OtpPro, channel: str | None) -> str:
    """How a factor on ``channel`` is answered: its type's ``describe().input`` (``code`` without a type)."""
    definition = core.channels.get(channel) if channel else None
    factor_type = definition.factor_type if definition is not None else None
    if factor_type is None or factor_type.delivers:
        return "code"
    return factor_type.describe().input


def is_ceremony(core: OtpPro, channel: str | None) -> bool:
    """Whether a factor on ``channel`` is answered by a browser ceremony (not typed, not clicked)."""
    return input_kind(core, channel) not in TYPED_INPUTS


def offered(core: OtpPro, status: MemberStatus) -> list[dict[str, Any]]:
    """The member's usable factors answered in the browser, one entry per channel, the default's first:
    ``{"channel", "input", "label", "hint"}`` for the verify page's buttons."""
    found: dict[str, dict[str, Any]] = {}
    for factor in sorted(status.factors, key=lambda f: not f.is_default):
        if factor.usable and factor.kind not in found and is_ceremony(core, factor.kind):
            factor_type = core.channels[factor.kind].factor_type
            assert factor_type is not None
            found[factor.kind] = {"channel": factor.kind, "input": input_kind(core, factor.kind),
                                  "label": i18n.label(core.channels[factor.kind].label),
                                  "hint": factor_type.describe().hint}
    return list(found.values())


def posted_answer(v: Visit) -> str | None:
    """The form's browser answer (field ``answer``), or None when the form carries a typed code instead.
    One longer than :data:`MAX_ANSWER` is cut, so that the core refuses it as malformed."""
    value = v.request.form.get("answer")
    if not isinstance(value, str) or not value.strip():
        return None
    return value[:MAX_ANSWER]


def answer_refused_text(reason: str | None) -> str:
    """What a member reads when their browser answer was refused (the reason is a short snake_case word)."""
    why = (reason or "invalid").replace("_", " ")
    return _("That did not work (%(why)s). Try again, or use another method.", why=why)


def challenge(v: Visit) -> Json:
    """``POST`` ``{"channel"}``: a fresh challenge of the member's factor on ``channel`` for the browser to
    answer: ``{"ok": true, "channel", "input", "show", "expires_at"}``; the answer is posted to the verify
    page (or ``api_verify``) as ``answer``."""
    try:
        channel = string_field(v.request.json_object(), "channel", max_length=MAX_CHANNEL)
    except InputError as exc:
        return Json(body=exc.as_json(), status=exc.status)
    member = v.member()
    if member is None:
        return Json(body={"ok": False, "error": "signed_out", "message": _(SIGN_IN_FIRST_TEXT)}, status=401)
    core = v.core
    if not channel or channel not in core.channels or not is_ceremony(core, channel):
        return Json(body={"ok": False, "error": "channel", "field": "channel",
                          "message": _("That method is not answered in the browser.")}, status=400)
    try:
        issued = core.begin_challenge(member, channel, binding=state.binding(v.session), **v.client())
    except LockedOut as exc:
        minutes = lock_minutes(exc.locked_until, core.clock())
        return Json(body={"ok": False, "error": "locked", "message": locked_text(minutes),
                          "locked_minutes": minutes}, status=429)
    except FactorNotEnrolled:
        return Json(body={"ok": False, "error": "factor_not_enrolled", "message": _(FACTOR_NOT_ENROLLED_TEXT)},
                    status=400)
    except ChannelUnavailable as exc:
        return Json(body={"ok": False, "error": "channel", "message": channel_refused_text(exc.reason or exc)},
                    status=400)
    return Json(body={"ok": True, "channel": channel, "input": input_kind(core, channel), "show": issued.show,
                      "expires_at": issued.expires_at.isoformat()})
