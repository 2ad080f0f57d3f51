"""What every page handler of the flow starts or ends with: the signed-in member, their status, a message."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...i18n import gettext as _
from ...member import Member
from ...results import MemberStatus
from .interface import Page, Redirect
from .texts import SIGN_IN_FIRST_TEXT

if TYPE_CHECKING:
    from .visit import Visit


def page(template: str, status: int = 200, /, **context: Any) -> Page:
    """``template`` with ``context``, answered with ``status``."""
    return Page(template=template, context=context, status=status)


def need_member(v: Visit) -> Member | Redirect:
    """The signed-in member, or a redirect to the site's login page."""
    member = v.member()
    if member is None:
        v.flash(_(SIGN_IN_FIRST_TEXT), "error")
        return Redirect(location=v.login_redirect())
    return member


def current_status(v: Visit) -> MemberStatus:
    """The status of the member :func:`need_member` found."""
    status = v.status()
    assert status is not None
    return status


def message(status: int, title: str, text: str, link: str) -> Page:
    """A page that only says ``text``, with a link on."""
    return page("otp_pro/message.html", status, title=title, message=text, link=link)


def back_to_settings(v: Visit, text: str, category: str) -> Redirect:
    """Back to the settings page, which shows ``text`` (``info`` or ``error``)."""
    v.flash(text, category)
    return Redirect(location=v.url("settings"))
