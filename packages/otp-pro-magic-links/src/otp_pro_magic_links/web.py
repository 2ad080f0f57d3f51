"""Framework-agnostic handlers for the link's page, plus a small WSGI app around them.

The flow, and why it has two steps:

* ``GET {path}?token=...`` (the link in the mail) **never consumes** the token
  and never touches the database: mail scanners (Outlook Safe Links and the
  like) fetch links before the member does. It answers :func:`confirm_page`,
  one button in a form that POSTs the token back in the body.
* ``POST {path}`` (that button) calls :func:`consume`, which calls
  ``otp.verify_token("magic_link", ...)``. On success it answers
  ``303 See Other`` to the integrator's success page, so the token leaves the
  address bar; on failure a page says why and offers a new link.

Every page is written in the member's language (:func:`otp_pro_magic_links.wording.page_language`: the
``member`` when the caller knows one, else the request's ``Accept-Language``, else the site's
``default_locale``) and its ``<html lang>`` says which. Every page is sent with
``Referrer-Policy: no-referrer``, ``Cache-Control: no-store`` and ``X-Robots-Tag:
noindex``, and a CSP that forbids framing (no click-jacking of the button) and
posting the form anywhere but this site.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from otp_pro import VerifyResult, i18n
from otp_pro.errors import PluginError
from otp_pro.i18n import N_

from .binding import COOKIE_NAME, read_binding
from .payload import PAYLOAD, TOKEN_PARAM, MagicLinkPayload
from .wording import DOMAIN, page_language

if TYPE_CHECKING:  # imported for annotations only: OtpPro needs SQLAlchemy, plugin discovery does not
    from otp_pro import Member, OtpPro

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,512}$")
#: The POST body holds one short form field; anything bigger is not from our page.
MAX_BODY = 4096

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
    ("Pragma", "no-cache"),
    ("X-Robots-Tag", "noindex, nofollow"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
)


@dataclass
class Response:
    """What a handler answers: hand ``status``, ``headers`` and ``body`` to any web framework.

    ``result`` is the core's :class:`~otp_pro.VerifyResult` after a POST (None for
    a GET): on success, sign ``result.member_id`` in, after checking it is the
    member whose password step this session passed.
    """

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    result: VerifyResult | None = field(default=None, repr=False)

    @property
    def status_line(self) -> str:
        """``"303 See Other"``, as WSGI's ``start_response`` wants it."""
        return f"{self.status} {HTTPStatus(self.status).phrase}"

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (case-insensitive), or None."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


#: reason -> (HTTP status, title, explanation): gettext messages, translated when the page is written.
#: An expired link's explanation starts with the links' lifetime (:func:`_explanation`).
PAGES: dict[str, tuple[int, str, str]] = {
    "malformed": (400, N_("This sign-in link is incomplete"),
                  N_("The link may have been cut in two by your mail program. Ask for a new link and open it "
                     "by clicking it rather than copying it.")),
    "unknown": (404, N_("This sign-in link is not valid"),
                N_("It may come from an old message or have been mistyped. Ask for a new link.")),
    "expired": (410, N_("This sign-in link has expired"), N_("Ask for a new link.")),
    "used": (410, N_("This sign-in link was already used"),
             N_("Each link works once. If it was not you who used it, change your password and tell us.")),
    "replaced": (410, N_("A newer sign-in link was sent"),
                 N_("Only the newest link works: open the most recent message, or ask for a new link.")),
    "wrong_browser": (403, N_("Open the link in the browser you are signing in with"),
                      N_("For your safety this link works only in the browser where you asked for it. Ask for a "
                         "new link from the device and browser you want to use.")),
    "locked": (429, N_("Too many attempts"),
               N_("Sign-in is paused for this account after too many failed attempts. Try again later.")),
    "rate_limited": (429, N_("Too many sign-in links tried"),
                     N_("Too many links that we never sent were tried from your network. Try again later.")),
    "cross_site": (403, N_("This request did not come from the sign-in page"),
                   N_("Open the link from your mail and press the button on the page it shows.")),
}
_DEFAULT_PAGE = (400, N_("This sign-in link cannot be used"), N_("Ask for a new link."))


def _payload(otp: OtpPro) -> MagicLinkPayload:
    payload = otp.payloads.get(PAYLOAD)
    if not isinstance(payload, MagicLinkPayload):
        raise PluginError("the magic_link payload is not loaded (is otp-pro-magic-links disabled?)",
                          plugin="otp_pro_magic_links")
    return payload


def parse(query: str | None) -> str | None:
    """The token in a query string (``token=...``), a path with one, or a whole link; None when absent or malformed.

    Exactly one ``token`` parameter of URL-safe base64 characters is accepted.
    """
    if not query:
        return None
    if "?" in query:
        query = query.split("?", 1)[1]
    query = query.split("#", 1)[0]
    values = parse_qs(query, keep_blank_values=True).get(TOKEN_PARAM, [])
    if len(values) != 1 or not _TOKEN.match(values[0]):
        return None
    return values[0]


def _page(status: int, title: str, body_html: str, site_name: str, extra: Iterable[tuple[str, str]] = ()) -> Response:
    # ``title`` and ``body_html`` are written in the current language already: <html lang> names it.
    document = (
        "<!doctype html>\n"
        f"<html lang=\"{html.escape(i18n.current().tag)}\"><head><meta charset=\"utf-8\">"
        "<meta name=\"referrer\" content=\"no-referrer\">"
        "<meta name=\"robots\" content=\"noindex, nofollow\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(title)} - {html.escape(site_name)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;"
        "line-height:1.5}button{font-size:1.1rem;padding:.6rem 1.4rem;cursor:pointer}</style>"
        f"</head><body><main><h1>{html.escape(title)}</h1>{body_html}</main></body></html>\n"
    )
    headers = [("Content-Type", "text/html; charset=utf-8"), *SECURITY_HEADERS, *extra]
    return Response(status, headers, document.encode("utf-8"))


def confirm_page(otp: OtpPro, token: str | None, *, action: str | None = None, new_link_url: str = "/",
                 accept_language: str | None = None, member: Member | None = None) -> Response:
    """Answer a GET of the link: a page with one button that POSTs ``token`` to ``action``.

    Never consumes the token and never reads the database, so a scanner's GET
    changes nothing and counts no failure. ``action`` defaults to the configured
    ``path`` (no query string: the token travels in the POST body, and the
    address bar no longer shows it after the POST). A missing or malformed
    token gets the "incomplete link" page. ``accept_language`` (the request's
    header) and ``member`` (when the site knows who is signing in) choose the
    page's language.
    """
    payload = _payload(otp)
    site = otp.settings.site_name
    if token is None or not _TOKEN.match(token):
        return error_page(otp, "malformed", new_link_url=new_link_url, accept_language=accept_language,
                          member=member)
    with i18n.using(page_language(otp, accept_language, member)):
        _ = DOMAIN.gettext
        # Translated before the f-string: pybabel extract does not look inside one.
        press = _("Press the button to finish signing in to %(site)s.", site=site)
        button = _("Continue signing in")
        not_you = _("If you did not ask to sign in, close this page: nothing happens until you press the button.")
        body = (
            f"<p>{html.escape(press)}</p>"
            f"<form method=\"post\" action=\"{html.escape(action or payload.path)}\">"
            f"<input type=\"hidden\" name=\"{TOKEN_PARAM}\" value=\"{html.escape(token)}\">"
            f"<button type=\"submit\">{html.escape(button)}</button></form>"
            f"<p><small>{html.escape(not_you)}</small></p>"
        )
        return _page(200, _("Sign in to %(site)s", site=site), body, site)


def _explanation(reason: str, text: str, minutes: int) -> str:
    """``text`` in the current language; an expired link's page first says how long links last (a plural form)."""
    explained = DOMAIN.gettext(text)
    if reason == "expired":
        lifetime = DOMAIN.ngettext("Sign-in links work for %(num)d minute.", "Sign-in links work for %(num)d minutes.",
                                   minutes)
        return f"{lifetime} {explained}"
    return explained


def error_page(otp: OtpPro, reason: str, *, new_link_url: str = "/", result: VerifyResult | None = None,
               accept_language: str | None = None, member: Member | None = None) -> Response:
    """The page for a refused link: what happened (by ``reason``) and a way to ask for a new link.

    ``accept_language`` and ``member`` choose its language, as for :func:`confirm_page`.
    """
    payload = _payload(otp)
    status, title, text = PAGES.get(reason, _DEFAULT_PAGE)
    minutes = max(1, payload.ttl_seconds // 60)
    with i18n.using(page_language(otp, accept_language, member)):
        ask = DOMAIN.gettext("Ask for a new sign-in link")
        body = (
            f"<p>{html.escape(_explanation(reason, text, minutes))}</p>"
            f"<p><a href=\"{html.escape(new_link_url)}\">{html.escape(ask)}</a></p>"
        )
        extra: list[tuple[str, str]] = []
        if reason == "locked" and result is not None and result.locked_until is not None:
            seconds = int((result.locked_until - otp.clock()).total_seconds())
            if 0 < seconds < 10**7:
                extra.append(("Retry-After", str(seconds)))
        elif reason == "rate_limited" and result is not None and result.retry_after:
            extra.append(("Retry-After", str(result.retry_after)))
        response = _page(status, DOMAIN.gettext(title), body, otp.settings.site_name, extra)
    response.result = result
    return response


def _same_site(payload: MagicLinkPayload, origin: str | None, fetch_site: str | None) -> bool:
    # Browsers send Sec-Fetch-Site on every request; our own form gives "same-origin".
    if fetch_site and fetch_site.lower() != "same-origin":
        return False
    # Under Referrer-Policy: no-referrer a browser sends "Origin: null" for the form post.
    if origin and origin != "null" and payload.base_url:
        base = urlsplit(payload.base_url)
        return origin.rstrip("/").lower() == f"{base.scheme}://{base.netloc}".lower()
    return True


def consume(
    otp: OtpPro,
    token: str | None,
    *,
    binding: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    success_location: str = "/",
    new_link_url: str = "/",
    origin: str | None = None,
    fetch_site: str | None = None,
    accept_language: str | None = None,
    member: Member | None = None,
) -> Response:
    """Answer the POST from the confirmation page: verify (and so consume) ``token``.

    ``binding`` is the browser's binding cookie value (:func:`read_binding`),
    needed when ``same_browser`` is on. ``origin`` and ``fetch_site`` are the
    request's ``Origin`` and ``Sec-Fetch-Site`` headers: a cross-site post is
    refused before the token is touched, so a forged form cannot burn a link
    or count a failure. Success answers ``303 See Other`` to ``success_location``
    with ``response.result`` set; a refusal answers the page for its reason, in the
    language ``accept_language`` and ``member`` choose (as for :func:`confirm_page`).
    """
    payload = _payload(otp)
    if not _same_site(payload, origin, fetch_site):
        return error_page(otp, "cross_site", new_link_url=new_link_url, accept_language=accept_language,
                          member=member)
    if token is None or not _TOKEN.match(token):
        return error_page(otp, "malformed", new_link_url=new_link_url, accept_language=accept_language,
                          member=member)
    result = otp.verify_token(PAYLOAD, token, binding=binding, ip=ip, user_agent=user_agent)
    if not result.ok:
        return error_page(otp, result.reason or "unknown", new_link_url=new_link_url, result=result,
                          accept_language=accept_language, member=member)
    headers = [("Location", success_location), ("Content-Type", "text/plain; charset=utf-8"), *SECURITY_HEADERS]
    with i18n.using(page_language(otp, accept_language, member)):
        signed_in = DOMAIN.gettext("Signed in.")
    return Response(303, headers, f"{signed_in}\n".encode(), result=result)


# ------------------------------------------------------------------ WSGI

SuccessHook = Callable[[VerifyResult, Mapping[str, Any]], "str | Response | None"]


def _read_form(environ: Mapping[str, Any]) -> dict[str, list[str]] | None:
    content_type = str(environ.get("CONTENT_TYPE", "")).split(";", 1)[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return {}
    if length > MAX_BODY:
        return None
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    return parse_qs(raw.decode("latin-1"), keep_blank_values=True)


def make_wsgi_app(
    otp: OtpPro,
    *,
    on_success: SuccessHook | None = None,
    success_location: str = "/",
    new_link_url: str = "/",
    path: str | None = None,
    cookie_name: str = COOKIE_NAME,
) -> Callable[[dict[str, Any], Callable[..., Any]], list[bytes]]:
    """A WSGI app serving the link's page at ``path`` (default: the configured ``path``).

    ``on_success(result, environ)`` is called after a successful POST: sign the
    member in there (after checking ``result.member_id`` is the member this
    session's password step named) and return the address to send the browser
    to, a whole :class:`Response` (to set a session cookie), or None for
    ``success_location``. Other paths answer 404; other methods 405. Pages are
    written in the language of the request's ``Accept-Language`` (else the site's
    ``default_locale``); a site that knows the member calls the handlers with ``member=``.
    """
    route = path or _payload(otp).path

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        response = _handle(environ)
        start_response(response.status_line, response.headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [response.body]

    def _handle(environ: dict[str, Any]) -> Response:
        site = otp.settings.site_name
        accept_language = environ.get("HTTP_ACCEPT_LANGUAGE")
        with i18n.using(page_language(otp, accept_language)):
            _ = DOMAIN.gettext
            if environ.get("PATH_INFO", "") != route:
                return _page(404, _("Not found"), "", site)
            method = environ.get("REQUEST_METHOD", "GET")
            if method in ("GET", "HEAD"):
                return confirm_page(otp, parse(environ.get("QUERY_STRING")), action=route, new_link_url=new_link_url,
                                    accept_language=accept_language)
            if method != "POST":
                return _page(405, _("Method not allowed"), "", site, [("Allow", "GET, HEAD, POST")])
            form = _read_form(environ)
            if form is None:
                return _page(413, _("Request too large"), "", site)
        values = form.get(TOKEN_PARAM, [])
        response = consume(
            otp,
            values[0] if len(values) == 1 else None,
            binding=read_binding(environ.get("HTTP_COOKIE"), name=cookie_name),
            ip=environ.get("REMOTE_ADDR"),
            user_agent=environ.get("HTTP_USER_AGENT"),
            success_location=success_location,
            new_link_url=new_link_url,
            origin=environ.get("HTTP_ORIGIN"),
            fetch_site=environ.get("HTTP_SEC_FETCH_SITE"),
            accept_language=accept_language,
        )
        if response.status == 303 and on_success is not None and response.result is not None:
            answer = on_success(response.result, environ)
            if isinstance(answer, Response):
                answer.result = response.result
                return answer
            if isinstance(answer, str):
                response.headers = [(k, answer if k == "Location" else v) for k, v in response.headers]
        return response

    return app
