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

Every page is sent with ``Referrer-Policy: no-referrer``, ``Cache-Control:
no-store`` and ``X-Robots-Tag: noindex``, and a CSP that forbids framing (no
click-jacking of the button) and posting the form anywhere but this site.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from otp_pro import VerifyResult
from otp_pro.errors import PluginError

from .binding import COOKIE_NAME, read_binding
from .payload import PAYLOAD, TOKEN_PARAM, MagicLinkPayload

if TYPE_CHECKING:  # imported for annotations only: OtpPro needs SQLAlchemy, plugin discovery does not
    from otp_pro import OtpPro

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


#: reason -> (HTTP status, title, explanation). ``{minutes}`` is the link lifetime.
PAGES: dict[str, tuple[int, str, str]] = {
    "malformed": (400, "This sign-in link is incomplete",
                  ("The link may have been cut in two by your mail program. Ask for a new link and open it "
                   "by clicking it rather than copying it.")),
    "unknown": (404, "This sign-in link is not valid",
                "It may come from an old message or have been mistyped. Ask for a new link."),
    "expired": (410, "This sign-in link has expired",
                "Sign-in links work for {minutes} minutes. Ask for a new link."),
    "used": (410, "This sign-in link was already used",
             "Each link works once. If it was not you who used it, change your password and tell us."),
    "replaced": (410, "A newer sign-in link was sent",
                 "Only the newest link works: open the most recent message, or ask for a new link."),
    "wrong_browser": (403, "Open the link in the browser you are signing in with",
                      ("For your safety this link works only in the browser where you asked for it. Ask for a new "
                       "link from the device and browser you want to use.")),
    "locked": (429, "Too many attempts",
               "Sign-in is paused for this account after too many failed attempts. Try again later."),
    "rate_limited": (429, "Too many sign-in links tried",
                     "Too many links that we never sent were tried from your network. Try again later."),
    "cross_site": (403, "This request did not come from the sign-in page",
                   "Open the link from your mail and press the button on the page it shows."),
}
_DEFAULT_PAGE = (400, "This sign-in link cannot be used", "Ask for a new link.")


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
    document = (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
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


def confirm_page(otp: OtpPro, token: str | None, *, action: str | None = None, new_link_url: str = "/") -> Response:
    """Answer a GET of the link: a page with one button that POSTs ``token`` to ``action``.

    Never consumes the token and never reads the database, so a scanner's GET
    changes nothing and counts no failure. ``action`` defaults to the configured
    ``path`` (no query string: the token travels in the POST body, and the
    address bar no longer shows it after the POST). A missing or malformed
    token gets the "incomplete link" page.
    """
    payload = _payload(otp)
    site = otp.settings.site_name
    if token is None or not _TOKEN.match(token):
        return error_page(otp, "malformed", new_link_url=new_link_url)
    body = (
        f"<p>Press the button to finish signing in to {html.escape(site)}.</p>"
        f"<form method=\"post\" action=\"{html.escape(action or payload.path)}\">"
        f"<input type=\"hidden\" name=\"{TOKEN_PARAM}\" value=\"{html.escape(token)}\">"
        "<button type=\"submit\">Continue signing in</button></form>"
        "<p><small>If you did not ask to sign in, close this page: nothing happens until you press the button."
        "</small></p>"
    )
    return _page(200, f"Sign in to {site}", body, site)


def error_page(otp: OtpPro, reason: str, *, new_link_url: str = "/", result: VerifyResult | None = None) -> Response:
    """The page for a refused link: what happened (by ``reason``) and a way to ask for a new link."""
    payload = _payload(otp)
    status, title, text = PAGES.get(reason, _DEFAULT_PAGE)
    minutes = max(1, payload.ttl_seconds // 60)
    body = (
        f"<p>{html.escape(text.format(minutes=minutes))}</p>"
        f"<p><a href=\"{html.escape(new_link_url)}\">Ask for a new sign-in link</a></p>"
    )
    extra: list[tuple[str, str]] = []
    if reason == "locked" and result is not None and result.locked_until is not None:
        seconds = int((result.locked_until - otp.clock()).total_seconds())
        if 0 < seconds < 10**7:
            extra.append(("Retry-After", str(seconds)))
    elif reason == "rate_limited" and result is not None and result.retry_after:
        extra.append(("Retry-After", str(result.retry_after)))
    response = _page(status, title, body, otp.settings.site_name, extra)
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
) -> Response:
    """Answer the POST from the confirmation page: verify (and so consume) ``token``.

    ``binding`` is the browser's binding cookie value (:func:`read_binding`),
    needed when ``same_browser`` is on. ``origin`` and ``fetch_site`` are the
    request's ``Origin`` and ``Sec-Fetch-Site`` headers: a cross-site post is
    refused before the token is touched, so a forged form cannot burn a link
    or count a failure. Success answers ``303 See Other`` to ``success_location``
    with ``response.result`` set; a refusal answers the page for its reason.
    """
    payload = _payload(otp)
    if not _same_site(payload, origin, fetch_site):
        return error_page(otp, "cross_site", new_link_url=new_link_url)
    if token is None or not _TOKEN.match(token):
        return error_page(otp, "malformed", new_link_url=new_link_url)
    result = otp.verify_token(PAYLOAD, token, binding=binding, ip=ip, user_agent=user_agent)
    if not result.ok:
        return error_page(otp, result.reason or "unknown", new_link_url=new_link_url, result=result)
    headers = [("Location", success_location), ("Content-Type", "text/plain; charset=utf-8"), *SECURITY_HEADERS]
    return Response(303, headers, b"Signed in.\n", result=result)


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
    ``success_location``. Other paths answer 404; other methods 405.
    """
    route = path or _payload(otp).path

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        response = _handle(environ)
        start_response(response.status_line, response.headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [response.body]

    def _handle(environ: dict[str, Any]) -> Response:
        site = otp.settings.site_name
        if environ.get("PATH_INFO", "") != route:
            return _page(404, "Not found", "", site)
        method = environ.get("REQUEST_METHOD", "GET")
        if method in ("GET", "HEAD"):
            return confirm_page(otp, parse(environ.get("QUERY_STRING")), action=route, new_link_url=new_link_url)
        if method != "POST":
            return _page(405, "Method not allowed", "", site, [("Allow", "GET, HEAD, POST")])
        form = _read_form(environ)
        if form is None:
            return _page(413, "Request too large", "", site)
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
