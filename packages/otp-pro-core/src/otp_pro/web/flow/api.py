"""The flow's JSON API for AJAX pages: status, send, delivery and verify (under ``<url_prefix>/api/``).

Every answer is a JSON object with ``ok`` and, on a refusal, ``error`` (a short
word) and ``message`` (for the member); a malformed body is refused with
``error`` ``bad_request`` and the ``field`` at fault. A POST carries the CSRF
token in the ``X-CSRF-Token`` header. ``openapi.json`` describes every endpoint
(:mod:`.openapi`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...errors import OtpProError
from ...i18n import gettext as _
from ...transports import TOTP
from . import codes, openapi, state
from .ceremonies import MAX_ANSWER
from .inputs import InputError, bool_field, string_field
from .interface import Json
from .outcome import Outcome, lock_minutes, with_retry_after
from .state import MAX_FIELD
from .texts import SIGN_IN_FIRST_TEXT

if TYPE_CHECKING:
    from .visit import Visit

log = logging.getLogger("otp_pro.web")

#: The longest channel name the API reads (the core's channel names are far shorter).
MAX_CHANNEL = 100


def _json(data: Mapping[str, Any], status: int = 200) -> Json:
    return Json(body=dict(data), status=status)


def _outcome(outcome: Outcome, payload: Mapping[str, Any] | None = None) -> Json:
    """``outcome`` as JSON; a 429 says in ``Retry-After`` when to try again, if that is known."""
    return with_retry_after(_json(payload if payload is not None else outcome.as_json(), outcome.status), outcome)


def status(v: Visit) -> Json:
    """``GET``: where this session stands (for AJAX pages), with the CSRF token to send back."""
    member_status = v.status()
    base: dict[str, Any] = {"csrf_token": v.csrf_token(), "signed_in": member_status is not None}
    if member_status is None:
        return _json(base)
    sent = state.last_sent(v.session) or {}
    facts = v.facts()
    # For a page, "verification needed" is about this session: the member's policy asks for the second
    # step and this login has not passed it (a code, a finished setup) nor skipped it (a trusted device).
    # MemberStatus.verification_needed alone is the member's policy, true again right after a setup.
    needed = facts.verification_needed and not facts.verified and not facts.trusted_device
    base.update(
        verified=facts.verified, verification_needed=needed,
        must_setup=member_status.must_setup, in_grace=member_status.in_grace, channel=member_status.channel,
        recipient_hint=sent.get("hint"), sent_channel=sent.get("channel"), resend_in=v.resend_in(),
        locked_minutes=lock_minutes(member_status.locked_until, v.core.clock()),
        next=v.next_url(),
        # The member's own factors: what an AJAX page may offer as "use another method".
        factors=[{"id": f.id, "kind": f.kind, "label": f.label, "recipient_hint": f.recipient_hint,
                  "is_default": f.is_default, "usable": f.usable, "needs_reconfirming": f.needs_reconfirming,
                  "channel": f.kind if f.kind != TOTP else None} for f in member_status.factors],
    )
    return _json(base)


def send(v: Visit) -> Json:
    """``POST`` ``{"channel": optional}``: send a code; ``{"ok", "message", "retry_after"}``."""
    try:
        channel = string_field(v.request.json_object(), "channel", max_length=MAX_CHANNEL)
    except InputError as exc:
        return _json(exc.as_json(), exc.status)
    outcome = codes.send_code(v, channel or None)
    payload = outcome.as_json()
    if outcome.ok:
        sent = state.last_sent(v.session) or {}
        payload.update(recipient_hint=sent.get("hint"), channel=sent.get("channel"))
    return _outcome(outcome, payload)


def delivery(v: Visit) -> Json:
    """``GET``: the delivery of this login's last code, polled by the verify page.

    ``{"ok": true, "status": "sending"|"sent"|"failed"|"replaced", "done", "message", "error_code",
    "fallback": [{"channel", "label"}]}``; ``{"ok": false, "error": "signed_out"|"nothing_sent"}`` otherwise.
    """
    if v.member() is None:
        return _json({"ok": False, "error": "signed_out", "message": _(SIGN_IN_FIRST_TEXT)}, 401)
    try:
        found = codes.delivery(v)
    except OtpProError:  # a database hiccup: the page keeps polling
        log.warning("otp-pro delivery status could not be read")
        return _json({"ok": False, "error": "unavailable", "message": _("Try again in a moment.")}, 503)
    if found is None:
        return _json({"ok": False, "error": "nothing_sent", "message": _("No code was sent yet.")}, 404)
    return _json({"ok": True, **found})


def verify(v: Visit) -> Json:
    """``POST`` ``{"code": "...", "trust_device": false}``: ``{"ok": true, "location"}`` or the refusal.

    A factor answered in the browser posts ``{"answer": "<the ceremony's JSON>"}`` instead of ``code``,
    after :func:`.ceremonies.challenge`."""
    try:
        data = v.request.json_object()
        code = string_field(data, "code", max_length=MAX_FIELD, default="")
        answer = string_field(data, "answer", max_length=MAX_ANSWER, default="")
        trust_device = bool_field(data, "trust_device")
    except InputError as exc:
        return _json(exc.as_json(), exc.status)
    if v.member() is not None and v.is_verified() and not state.step_up_pending(v.session):
        return _json({"ok": True, "message": _("Already verified."), "location": v.next_url()})
    outcome, token = codes.verify_code(v, answer or code, trust_device=trust_device, answer=bool(answer))
    response = _outcome(outcome)
    if token:
        response.cookies.append(v.device_cookie(token))
    return response


def openapi_document(v: Visit) -> Json:
    """``GET``: the OpenAPI document of these endpoints, with this site's prefix and session cookie in it."""
    return _json(openapi.document(v.request.root + v.flow.url_prefix, session_cookie=v.flow.session_cookie))
