"""One request seen by the flow: the request, the session, the member and their status (looked up once).

A :class:`Visit` is what every handler receives and what an adapter's facade
(``OtpProFlask.current_member()``, Django's ``request.otp_pro``) calls: the
member of the session, where the second step stands, the CSRF token, the
messages for the next page, the addresses of the flow's pages. It lives for
one request; the session holds everything that outlives it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import quote, urlencode

from ...core import OtpPro
from ...i18n import Language
from ...member import Member
from ...results import MemberStatus, Standing
from ...settings import is_loopback_host
from ..gate import SessionFacts
from . import security, state
from .interface import Cookie, Request, Session

if TYPE_CHECKING:
    from .engine import Flow


class Client(TypedDict):
    """The request's address and user agent, passed to the core as keywords."""

    ip: str | None
    user_agent: str | None


class Visit:
    """One request of the flow: ``request``, ``session`` (the mapping) and the per-request lookups."""

    def __init__(self, flow: Flow, request: Request, session: Session) -> None:
        self.flow = flow
        self.request = request
        self._session = session
        self._member: Member | None = None
        self._member_loaded = False
        self._status: MemberStatus | None = None
        self._status_loaded = False
        self._standing: Standing | None = None
        self._standing_loaded = False
        #: Cookies to set on whatever the adapter answers (the trusted-device cookie after a login).
        self.cookies: list[Cookie] = []
        #: The gate's notice for this request ("set up soon"), shown by the base template.
        self.notice: str | None = None
        #: The language of this request's texts, chosen once (:meth:`Flow.language <.engine.Flow.language>`).
        self.language: Language | None = None
        #: The operator the console's route guard let in: its handlers read it instead of asking again
        #: (the operator check and the step-up run once a request).
        self.operator: Member | None = None

    # ------------------------------------------------------------ basics

    @property
    def core(self) -> OtpPro:
        """The :class:`~otp_pro.OtpPro` instance."""
        return self.flow.core

    @property
    def session(self) -> MutableMapping[str, Any]:
        """The session's data (the adapter's mapping)."""
        return self._session.data

    def cycle(self) -> None:
        """Ask the adapter for a new session id (the data stays)."""
        self._session.cycle()

    def forget(self) -> None:
        """Drop the per-request lookups (after the session changed hands)."""
        self._member_loaded = self._status_loaded = self._standing_loaded = False
        self._member = self._status = self._standing = None

    def url(self, name: str, /, **params: Any) -> str:
        """The address of the flow's route ``name`` (path parameters filled, the others as a query string)."""
        return self.flow.url(name, root=self.request.root, **params)

    def form_field(self, name: str) -> str:
        """A form field of the request, cut to :data:`~.state.MAX_FIELD` characters ("" when missing)."""
        value = self.request.form.get(name, "")
        return value[:state.MAX_FIELD] if isinstance(value, str) else ""

    def client(self) -> Client:
        """The request's address and user agent, as the core records them in the audit trail (keywords)."""
        return {"ip": self.request.client_addr, "user_agent": self.request.user_agent}

    def device_label(self) -> str:
        """The label of a trusted device: the browser's user agent."""
        return (self.request.user_agent or "browser")[:120]

    def csrf_token(self) -> str:
        """The session's CSRF token (made on first use); every form sends it as ``csrf_token``."""
        return security.csrf_token(self.session)

    def flash(self, text: str, category: str = "info") -> None:
        """Show ``text`` on the next page (``info`` or ``error``)."""
        state.flash(self.session, text, category)

    def login_redirect(self) -> str:
        """The site's login page, with this request's path as ``next``."""
        # Quoted: a CR or LF in the path must not reach the Location header.
        return f"{self.flow.login_url}?{urlencode({'next': self.request.path}, quote_via=quote)}"

    # ---------------------------------------------------- member and status

    def member(self) -> Member | None:
        """The signed-in member of this request (password step passed), or None."""
        if not self._member_loaded:
            member_id = self.session.get(state.K_MEMBER)
            self._member = self.flow.load_member(member_id) if isinstance(member_id, str) and member_id else None
            self._member_loaded = True
        return self._member

    def set_member(self, member: Member) -> None:
        """Use ``member`` for this request (just signed in: no lookup)."""
        self._member, self._member_loaded = member, True
        self._status, self._status_loaded = None, False
        self._standing, self._standing_loaded = None, False

    def status(self) -> MemberStatus | None:
        """The signed-in member's :class:`~otp_pro.MemberStatus` (once per request)."""
        if not self._status_loaded:
            member = self.member()
            self._status = self.core.status(member) if member is not None else None
            self._status_loaded = True
        return self._status

    def reload_status(self) -> MemberStatus | None:
        """The status read again (a refusal may have started a lockout)."""
        self._status_loaded = self._standing_loaded = False
        return self.status()

    def standing(self) -> MemberStatus | Standing | None:
        """What the gate and a code check decide from (:meth:`OtpPro.standing`: one read statement, once per
        request), or the full status when this request has read it already; None when nobody is signed in."""
        if self._status_loaded:
            return self._status
        if not self._standing_loaded:
            member = self.member()
            self._standing = self.core.standing(member) if member is not None else None
            self._standing_loaded = True
        return self._standing

    def is_verified(self) -> bool:
        """Whether this login passed the second step (in this session)."""
        return state.is_verified(self.session)

    def reauth_ok(self) -> bool:
        """Whether this login confirmed password + code within the flow's ``reauth_seconds``."""
        return state.reauth_ok(self.session)

    def resend_in(self) -> int:
        """Seconds before another code may be asked for (0: now), from the last send of this session."""
        return state.resend_in(self.session, self.core.settings.resend_cooldown_seconds)

    def next_url(self) -> str:
        """Where this login goes once the second step is passed."""
        return state.next_url(self.session, self.flow.home_url)

    # ----------------------------------------------------- trusted devices

    def cookie_secure(self) -> bool:
        """Whether the trusted-device cookie is ``Secure`` (off only for plain-http development on loopback)."""
        return self.flow.secure_cookies or not is_loopback_host(self.request.host)

    def device_cookie_name(self) -> str:
        """The trusted-device cookie's name: ``__Host-`` before it when the cookie is ``Secure``."""
        name = self.flow.device_cookie
        return f"__Host-{name}" if self.cookie_secure() else name

    def device_cookie(self, token: str) -> Cookie:
        """The trusted-device cookie holding ``token``: ``Secure`` (see above), ``HttpOnly``, ``SameSite=Lax``."""
        days = self.core.settings.trusted_device_days
        return Cookie(self.device_cookie_name(), token, max_age=days * 86400, path="/",
                      secure=self.cookie_secure(), httponly=True, samesite="Lax")

    def is_trusted_device(self) -> bool:
        """Whether the request carries a trusted-device cookie of the signed-in member."""
        member = self.member()
        token = self.request.cookies.get(self.device_cookie_name())
        return member is not None and bool(token) and self.core.is_trusted(member, str(token))

    def facts(self) -> SessionFacts:
        """The gate's facts for this request.

        From :meth:`standing` (one read statement, every request: a reset elsewhere counts on the next one).
        """
        status = self.standing()
        if status is None:
            return SessionFacts()
        verified = self.is_verified()
        trusted = not verified and status.verification_needed and self.is_trusted_device()
        return SessionFacts.from_status(status, verified=verified, trusted_device=trusted)
