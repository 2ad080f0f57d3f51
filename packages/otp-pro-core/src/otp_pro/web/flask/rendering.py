"""What every page view of the extension starts or ends with: the signed-in member, their status, a rendered page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from flask import flash, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ...member import Member
from ...results import MemberStatus
from .security import secure
from .texts import SIGN_IN_FIRST_TEXT

if TYPE_CHECKING:
    from .extension import OtpProFlask


def page(template: str, http_status: int = 200, /, **context: Any) -> Response:
    """``template`` rendered with ``context``, answered with ``http_status``."""
    return make_response(render_template(template, **context), http_status)


def need_member(ext: OtpProFlask) -> Member | Response:
    """The signed-in member, or a redirect to the site's login page."""
    member = ext.current_member()
    if member is None:
        flash(SIGN_IN_FIRST_TEXT, "error")
        # Quoted: a CR or LF in the path must not reach the Location header (werkzeug refuses it with a 500).
        return redirect(f"{ext.login_url}?{urlencode({'next': request.path}, quote_via=quote)}", 303)
    return member


def current_status(ext: OtpProFlask) -> MemberStatus:
    """The status of the member :func:`need_member` found."""
    status = ext.status()
    assert status is not None
    return status


def message(http_status: int, title: str, text: str, link: str) -> Response:
    """A page that only says ``text``, with a link on."""
    return secure(page("otp_pro/message.html", http_status, title=title, message=text, link=link))


def back_to_settings(text: str, category: str) -> Response:
    """Back to the settings page, which shows ``text`` (``info`` or ``error``)."""
    flash(text, category)
    return redirect(url_for("otp_pro.settings"), 303)
